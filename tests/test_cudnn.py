"""The cuDNN LSTM path: rvt's parameters packed for jax.experimental.rnn give its reference LSTM's numbers."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import rnn

from rvt import models
from rvt.models import cudnn


def test_packed_weights_reproduce_the_models_lstm_stack():
    module, config = models.make_model(
        "lstm", dict(hidden_size=6, num_layers=2, embed_dim=5, backend="cudnn"), vocab_size=7, length=9
    )
    params = models.init_params(module, jax.random.key(0), 9)
    # Random weights of size ~1 (the init's orthogonal blocks and zero biases would hide a transposed block).
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    params = jax.tree.unflatten(
        treedef, [0.5 * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    )
    x_BxTxD = jax.random.normal(jax.random.key(2), (3, 9, 5))
    carries, logits = module.apply({"params": params}, x_BxTxD, method="from_embeddings")  # the scan on CPU

    layers = [dict(ih=params[f"cells_{i}"]["ih"], hh=params[f"cells_{i}"]["hh"]) for i in range(2)]
    weights = cudnn.pack_lstm_weights(layers)
    assert weights.size == rnn.get_num_params_in_lstm(5, 6, 2, False)
    W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, 5, 6, 2, False)
    zeros = jnp.zeros((2, 3, 6))
    y, h_n, c_n = rnn.lstm_ref(
        x_BxTxD, zeros, zeros, W_ih, W_hh, b_ih, b_hh, jnp.full((3,), 9, jnp.int32), 5, 6, 2, 0.0, False
    )
    ref_logits = module.apply({"params": params}, y, method=lambda m, h: m.head(h))
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-5)
    for i, (c, h) in enumerate(carries):
        np.testing.assert_allclose(c, c_n[i], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(h, h_n[i], rtol=1e-5, atol=1e-5)


def test_cudnn_is_refused_for_other_cells():
    import pytest

    from rvt.errors import ConfigError

    with pytest.raises(ConfigError, match="^model.gru.backend: cudnn runs LSTM cells only"):
        models.make_model("gru", dict(backend="cudnn"), vocab_size=7, length=9)
