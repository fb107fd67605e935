"""The LSTM through NVIDIA's cuDNN kernel (``jax.experimental.rnn``), with rvt's own parameters.

cuDNN wants one flat weight vector per stack: for every layer W_ih [4H, D] and W_hh [4H, H] (gate rows in
PyTorch's order i, f, g, o -- rvt's order too), then for every layer b_ih and b_hh [4H]. rvt's LSTMCell
keeps ``ih`` (kernel [D, 4H], bias [4H]) and ``hh`` (kernel [H, 4H], no bias), so packing is transposes and
a zero b_hh: the same parameters train on either path, and a checkpoint moves between them.
:func:`pack_lstm_weights` is tested against ``jax.experimental.rnn.lstm_ref`` on CPU; the kernel itself
runs only on a GPU (``RecurrentLM`` uses it there when ``backend="cudnn"``, the scan elsewhere).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental import rnn

from rvt.typing import Array


def pack_lstm_weights(layers: list[dict]) -> Array:
    """Flat cuDNN weights from each layer's ``{"ih": {"kernel", "bias"}, "hh": {"kernel"}}`` params."""
    matrices = [m for p in layers for m in (p["ih"]["kernel"].T, p["hh"]["kernel"].T)]
    biases = [b for p in layers for b in (p["ih"]["bias"], jnp.zeros_like(p["ih"]["bias"]))]
    return jnp.concatenate([m.reshape(-1) for m in matrices] + biases)


def available() -> bool:
    """cuDNN's LSTM exists on NVIDIA GPUs only."""
    return jax.default_backend() == "gpu"


def lstm(x_BxTxD: Array, carries: tuple, layers: list[dict]) -> tuple[tuple, Array]:
    """A stack of LSTM layers over [B, T, D] in one cuDNN call: ``(carries, y_BxTxH)``, carries ``(c, h)``
    per layer as rvt's LSTMCell keeps them."""
    hidden = layers[0]["hh"]["kernel"].shape[0]
    c_LxBxH = jnp.stack([c for c, _ in carries])
    h_LxBxH = jnp.stack([h for _, h in carries])
    lengths_B = jnp.full((x_BxTxD.shape[0],), x_BxTxD.shape[1], jnp.int32)
    y_BxTxH, h_n, c_n = rnn.lstm(
        x_BxTxD,
        h_LxBxH,
        c_LxBxH,
        pack_lstm_weights(layers),
        lengths_B,
        input_size=x_BxTxD.shape[-1],
        hidden_size=hidden,
        num_layers=len(layers),
        dropout=0.0,
        bidirectional=False,
    )
    return tuple((c_n[i], h_n[i]) for i in range(len(layers))), y_BxTxH
