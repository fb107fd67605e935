"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

The GRU and LSTM with every gate and candidate computed from the input x_t alone, so the state update
is linear in h_{t-1} and a sequence runs as one scan (H = ``expand * d_model`` hidden units):

    minGRU   z_t = sigmoid(W_z x_t),  h~_t = g(W_h x_t),   h_t = (1 - z_t) h_{t-1} + z_t h~_t
    minLSTM  f_t = sigmoid(W_f x_t),  i_t = sigmoid(W_i x_t),  h~_t = g(W_h x_t),
             f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t),  h_t = f'_t h_{t-1} + i'_t h~_t

with g(x) = x + 1/2 for x >= 0, sigmoid(x) below: continuous, and positive, so h_t > 0 and the scan can
run on logarithms (the paper's form, rvt.models.scan.log_linear_scan). Every log is formed directly from
the pre-activation k -- log sigmoid(k) = -softplus(-k), log(1 - sigmoid(k)) = -softplus(k) -- never as the
log of a rounded sigmoid.

Block (the paper's): x + W_o minRNN(LayerNorm(x)), then x + MLP(LayerNorm(x)).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvt.models.base import ModelConfig, dense_flops
from rvt.models.linear import (
    LAYERNORM_FLOPS,
    MLP,
    SOFTPLUS_FLOPS,
    ResidualLM,
    check_backend,
    lm_flops,
    lm_params,
    mlp_flops,
    mlp_params,
)
from rvt.models.registry import register_model
from rvt.models.scan import log_linear_scan
from rvt.typing import Array

GATES = {"gru": 2, "lstm": 3}  # projections of x: (z, h~) and (f, i, h~)
LOG_G_FLOPS = 12  # both branches of the where, and the select
# FLOPs per hidden unit from the projections to (log a, log b): the softplus, log g, and the negations,
# differences and sums around them (exp, a transcendental, is not counted, as in XLA's count)
COEFFICIENT_FLOPS = {"gru": 2 * SOFTPLUS_FLOPS + LOG_G_FLOPS + 3, "lstm": 4 * SOFTPLUS_FLOPS + LOG_G_FLOPS + 8}


def g(x: Array) -> Array:
    return jnp.where(x >= 0, x + 0.5, jax.nn.sigmoid(x))


def log_g(x: Array) -> Array:
    # both branches are finite everywhere, so where() passes no NaN gradient from the unused one
    return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-x))


def log_coefficients(cell: str, k_TxBxGH: Array) -> tuple[Array, Array]:
    """(log a_t, log b_t) of h_t = a_t h_{t-1} + b_t from the projected input (gate blocks on the last axis)."""
    if cell == "gru":
        k_z, k_h = jnp.split(k_TxBxGH, 2, axis=-1)
        return -jax.nn.softplus(k_z), -jax.nn.softplus(-k_z) + log_g(k_h)  # log(1 - z), log z + log h~
    k_f, k_i, k_h = jnp.split(k_TxBxGH, 3, axis=-1)
    # log f' = log f - log(f + i) = -softplus(log i - log f), and log i - log f = softplus(-k_f) - softplus(-k_i)
    diff = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)
    return -jax.nn.softplus(diff), -jax.nn.softplus(-diff) + log_g(k_h)


class MinRNN(nn.Module):
    """The recurrence with its projections: x [B, T, D] (and h0 [B, H] or None) -> (h_T, W_o h [B, T, D])."""

    cell: str  # "gru" or "lstm"
    hidden_size: int
    d_model: int
    backend: str = "associative"

    def setup(self):
        self.in_proj = nn.Dense(GATES[self.cell] * self.hidden_size)  # gate blocks in the order above
        self.out_proj = nn.Dense(self.d_model)

    def __call__(self, x_BxTxD: Array, h0_BxH: Array | None = None) -> tuple[Array, Array]:
        k_TxBxGH = self.in_proj(jnp.swapaxes(x_BxTxD, 0, 1))
        h_TxBxH = log_linear_scan(*log_coefficients(self.cell, k_TxBxGH), h0_BxH, self.backend)
        h_BxTxH = jnp.swapaxes(h_TxBxH, 0, 1)
        self.sow("intermediates", "hidden", h_BxTxH)
        return h_TxBxH[-1], self.out_proj(h_BxTxH)


class MinRNNBlock(nn.Module):
    cell: str
    d_model: int
    hidden_size: int
    mlp_width: int
    backend: str = "associative"

    def setup(self):
        self.norm_rnn = nn.LayerNorm()
        self.rnn = MinRNN(self.cell, self.hidden_size, self.d_model, self.backend)
        self.norm_mlp = nn.LayerNorm()
        self.mlp = MLP(self.mlp_width, self.d_model)

    def __call__(self, x_BxTxD: Array, state: Array | None = None) -> tuple[Array, Array]:
        state, y_BxTxD = self.rnn(self.norm_rnn(x_BxTxD), state)
        x_BxTxD = x_BxTxD + y_BxTxD
        return state, x_BxTxD + self.mlp(self.norm_mlp(x_BxTxD))

    def initial_state(self, batch_size: int) -> Array:
        return jnp.zeros((batch_size, self.hidden_size), jnp.float32)


@dataclasses.dataclass(frozen=True)
class MinRNNConfig(ModelConfig):
    """``num_layers`` blocks of width ``d_model``, recurrences of ``expand * d_model`` units, MLPs of
    ``mlp_ratio * d_model``."""

    d_model: int = 32
    num_layers: int = 2
    expand: int = 2
    mlp_ratio: int = 4
    backend: str = "auto"  # one of rvt.models.scan.SETTINGS (auto: sequential on CPU, associative elsewhere)
    cell: ClassVar[str] = ""

    def build(self, vocab_size: int, length: int) -> nn.Module:
        del length
        d = self.d_model
        blocks = tuple(
            MinRNNBlock(self.cell, d, self.expand * d, self.mlp_ratio * d, self.backend) for _ in range(self.num_layers)
        )
        return ResidualLM(vocab_size=vocab_size, d_model=d, blocks=blocks, final_norm="layer")

    def num_params(self, vocab_size: int) -> int:
        d, h, f, gates = self.d_model, self.expand * self.d_model, self.mlp_ratio * self.d_model, GATES[self.cell]
        rnn = d * gates * h + gates * h + h * d + d
        block = 2 * d + rnn + 2 * d + mlp_params(d, f)
        return self.num_layers * block + lm_params(vocab_size, d, 2 * d)

    def flops_per_token(self, vocab_size: int, context: int) -> float:
        """Per block: the projections (and biases), the log-coefficients, the scan's multiply-add, two
        norms, the MLP and the residual adds."""
        del context
        d, h, f, gates = self.d_model, self.expand * self.d_model, self.mlp_ratio * self.d_model, GATES[self.cell]
        coefficients = COEFFICIENT_FLOPS[self.cell] * h
        rnn = dense_flops(d, gates * h) + gates * h + coefficients + 2 * h + dense_flops(h, d) + d
        block = 2 * LAYERNORM_FLOPS * d + rnn + mlp_flops(d, f) + 2 * d
        return self.num_layers * block + lm_flops(vocab_size, d, LAYERNORM_FLOPS)

    def validate(self, name: str) -> None:
        super().validate(name)
        check_backend(name, self.backend)


@dataclasses.dataclass(frozen=True)
class MinGRUConfig(MinRNNConfig):
    cell: ClassVar[str] = "gru"


@dataclasses.dataclass(frozen=True)
class MinLSTMConfig(MinRNNConfig):
    cell: ClassVar[str] = "lstm"


register_model("mingru", MinGRUConfig, preset=dict(d_model=32, num_layers=2, expand=2, mlp_ratio=4))
register_model("minlstm", MinLSTMConfig, preset=dict(d_model=32, num_layers=2, expand=2, mlp_ratio=4))
