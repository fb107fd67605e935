"""Linear-recurrence language models: LRU, minGRU, minLSTM and S6 (Mamba), on the scans of rvt.models.scan.

Each kind is a stack of pre-norm residual blocks between an embedding and a normalised linear head
(:class:`ResidualLM`, here). A block's sequence mixer is a recurrence that is *linear in its state*
h_t = a_t * h_{t-1} + b_t (a_t, b_t depend on the input only), so a whole sequence runs as one parallel
scan and a step is one multiply-add: no nonlinearity ever sits between h_{t-1} and h_t.

    lru      Orvieto et al. 2023  complex diagonal, time-invariant decay        rvt/models/lru.py
    mingru   Feng et al. 2024     input-gated, positive, trained in log space   rvt/models/minrnn.py
    minlstm  Feng et al. 2024     normalised forget/input gates, log space      rvt/models/minrnn.py
    s6       Gu and Dao 2023      selective SSM (Mamba block), state [H, P]     rvt/models/s6.py

A block is a flax module with ``__call__(x_BxTxD, state | None) -> (state, y_BxTxD)`` (the residual
included; the returned state is the state after the last position) and ``initial_state(batch_size)``.
Step mode is the chunk path on a chunk of one token, so it equals the full sequence by construction of
the scan's initial state, not by a second implementation (tests/test_linear.py checks both against a
NumPy loop of the papers' equations).

Importing this module registers the four models (each kind's module registers itself).
"""

from __future__ import annotations

import flax.linen as nn

from rvt.errors import check
from rvt.models.base import dense_flops
from rvt.models.scan import SETTINGS as BACKEND_SETTINGS
from rvt.typing import Array

# Rough elementwise FLOPs per element of the cost model (XLA counts one per elementwise op and element,
# transcendentals (exp, log, tanh) apart from FLOPs; these follow the same convention).
LAYERNORM_FLOPS = 8  # mean, centre, square, mean, scale by rsqrt, gain, bias
RMSNORM_FLOPS = 5  # square, mean, scale by rsqrt, gain
GELU_FLOPS = 8  # the tanh approximation, flax's default
SOFTPLUS_FLOPS = 6  # max(x, 0) + log1p(exp(-|x|)) and its guards


class MLP(nn.Module):
    """Two dense layers with a GELU between: [.., D] -> [.., F] -> [.., D]."""

    width: int
    out: int

    def setup(self):
        self.up = nn.Dense(self.width)
        self.down = nn.Dense(self.out)

    def __call__(self, x: Array) -> Array:
        return self.down(nn.gelu(self.up(x)))


def mlp_params(d: int, f: int) -> int:
    return d * f + f + f * d + d


def mlp_flops(d: int, f: int) -> float:
    return dense_flops(d, f) + dense_flops(f, d) + (GELU_FLOPS + 2) * f + d  # + biases


class ResidualLM(nn.Module):
    """Tokens [B, T] -> logits [B, T, V]: embed, ``blocks`` (each adds its output to its input), norm, head.

    The state of step mode and of chunked runs is the tuple of the blocks' states; it has a fixed size,
    so ``stream`` carries it across segments like :class:`rvt.models.RecurrentLM` (truncated BPTT).
    """

    vocab_size: int
    d_model: int
    blocks: tuple[nn.Module, ...]
    final_norm: str = "layer"  # "layer" (LayerNorm) or "rms" (RMSNorm)

    def setup(self):
        self.embedding = nn.Embed(self.vocab_size, self.d_model)
        self.norm = nn.RMSNorm() if self.final_norm == "rms" else nn.LayerNorm()
        self.head = nn.Dense(self.vocab_size)

    def embed(self, tokens_BxT: Array) -> Array:
        return self.embedding(tokens_BxT)

    def from_embeddings(self, x_BxTxD: Array, state: tuple | None = None) -> tuple[tuple, Array]:
        states = (None,) * len(self.blocks) if state is None else state
        new = []
        for block, block_state in zip(self.blocks, states, strict=True):
            block_state, x_BxTxD = block(x_BxTxD, block_state)
            new.append(block_state)
        return tuple(new), self.head(self.norm(x_BxTxD))

    def __call__(self, tokens_BxT: Array) -> Array:
        return self.from_embeddings(self.embed(tokens_BxT))[1]

    def initial_state(self, batch_size: int) -> tuple:
        return tuple(block.initial_state(batch_size) for block in self.blocks)

    def step(self, state: tuple, token_B: Array) -> tuple[tuple, Array]:
        state, logits_Bx1xV = self.from_embeddings(self.embed(token_B[:, None]), state)
        return state, logits_Bx1xV[:, 0]

    def init_stream(self, batch_size: int, window: int) -> tuple:
        """Online learning carries the state across segments: ``window`` is unused."""
        del window
        return self.initial_state(batch_size)

    def stream(self, memory: tuple, tokens_BxL: Array) -> tuple[tuple, Array]:
        return self.from_embeddings(self.embed(tokens_BxL), memory)

    def recurrence_bound(self):
        return None  # a diagonal linear recurrence has no single recurrent matrix to bound


def lm_params(vocab_size: int, d: int, norm_params: int) -> int:
    """Embedding, final norm and head: what every kind adds around its blocks."""
    return vocab_size * d + norm_params + d * vocab_size + vocab_size


def lm_flops(vocab_size: int, d: int, norm_flops: int) -> float:
    return norm_flops * d + dense_flops(d, vocab_size) + vocab_size


def check_backend(name: str, backend: str) -> None:
    check(backend in BACKEND_SETTINGS, f"model.{name}.backend", f"must be one of {BACKEND_SETTINGS}, got {backend!r}")


def check_real(name: str, field: str, value) -> None:
    check(
        isinstance(value, int | float) and not isinstance(value, bool),
        f"model.{name}.{field}",
        f"must be a number, got {value!r}",
    )


# The kinds import the scaffolding above, so they are imported (and register themselves) only now.
from rvt.models import lru, minrnn, s6  # noqa: E402, F401
