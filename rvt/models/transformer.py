"""A causal (decoder-only) pre-LN Transformer with three positional encodings and a KV cache.

``from_embeddings(x, state)`` is the one attention path: with no state, every position of the chunk
attends causally within it; with a state (a KV cache from ``initial_state``), the chunk's queries also
attend to the cached keys, and its keys and values are written into the cache. ``step`` is that path on a
chunk of one token, so one compiled step serves every position. With ``window > 0`` attention sees only
the last ``window`` positions and the cache is a ring buffer of that size: constant memory per token,
like an RNN, at the price of a bounded context.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from rvt.errors import check
from rvt.models.attention import ATTENTION
from rvt.models.base import ModelConfig, dense_flops
from rvt.typing import Array

POSITIONAL = ("sinusoidal", "learned", "rope", "none")


def sinusoidal(positions_T: Array, width: int) -> Array:
    """Vaswani et al. 2017: sin on even, cos on odd features, wavelengths 2*pi .. 10000*2*pi."""
    freqs = jnp.exp(-jnp.log(10_000.0) * jnp.arange(0, width, 2) / width)
    angles_TxF = positions_T[:, None].astype(jnp.float32) * freqs[None, :]
    enc = jnp.zeros((positions_T.shape[0], width), jnp.float32)
    return enc.at[:, 0::2].set(jnp.sin(angles_TxF)).at[:, 1::2].set(jnp.cos(angles_TxF[:, : width // 2]))


def rope(x_BxTxHxK: Array, positions_T: Array) -> Array:
    """Rotary embedding (Su et al. 2021), half-split layout: rotate pairs (x_i, x_{i+K/2})."""
    half = x_BxTxHxK.shape[-1] // 2
    freqs = 1.0 / (10_000.0 ** (jnp.arange(half) / half))
    angles_TxF = positions_T[:, None].astype(jnp.float32) * freqs[None, :]
    cos, sin = jnp.cos(angles_TxF)[None, :, None, :], jnp.sin(angles_TxF)[None, :, None, :]
    x1, x2 = x_BxTxHxK[..., :half], x_BxTxHxK[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def _visible(query_pos_T: Array, key_pos_S: Array, window: int) -> Array:
    """[T, S] True where a key (position >= 0, not after the query, within ``window``) is visible."""
    q, k = query_pos_T[:, None], key_pos_S[None, :]
    visible = (k >= 0) & (k <= q)
    return visible & (k > q - window) if window > 0 else visible


def _write(cache: dict, k_BxTxHxK: Array, v_BxTxHxK: Array, positions_T: Array) -> dict:
    """Write a chunk's keys and values into the ring buffer (only the last ``slots`` of a longer chunk)."""
    slots = cache["k"].shape[1]
    k_BxTxHxK, v_BxTxHxK, positions_T = k_BxTxHxK[:, -slots:], v_BxTxHxK[:, -slots:], positions_T[-slots:]
    index_T = positions_T % slots
    return dict(
        k=cache["k"].at[:, index_T].set(k_BxTxHxK),
        v=cache["v"].at[:, index_T].set(v_BxTxHxK),
        pos=cache["pos"].at[index_T].set(positions_T),
    )


class SelfAttention(nn.Module):
    """Multi-head self-attention: one fused QKV projection, ``ATTENTION[attention]`` per head."""

    num_heads: int
    head_dim: int
    d_model: int
    attention: str = "vmapped"
    use_rope: bool = False
    window: int = 0
    causal: bool = True  # False: every position sees every other (an encoder)

    def setup(self):
        self.qkv = nn.DenseGeneral((3, self.num_heads, self.head_dim), name="qkv")
        self.out = nn.DenseGeneral(self.d_model, axis=(-2, -1), name="out")

    def __call__(self, x_BxTxD: Array, positions_T: Array, valid_BxT: Array | None = None, cache: dict | None = None):
        """Attend from every position of the chunk; returns (the updated cache or None, output)."""
        qkv = self.qkv(x_BxTxD)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.use_rope:
            q, k = rope(q, positions_T), rope(k, positions_T)
        mask_TxS = _visible(positions_T, positions_T, self.window) if self.causal else (positions_T[:, None] >= 0)
        mask_BxTxS = jnp.broadcast_to(mask_TxS, (x_BxTxD.shape[0], *mask_TxS.shape))
        if valid_BxT is not None:
            mask_BxTxS = mask_BxTxS & valid_BxT[:, None, :]
        keys, values = k, v
        if cache is not None:  # the cached keys first, then the chunk's own
            cached_TxC = _visible(positions_T, cache["pos"], self.window)
            mask_BxTxS = jnp.concatenate(
                [jnp.broadcast_to(cached_TxC, (x_BxTxD.shape[0], *cached_TxC.shape)), mask_BxTxS], -1
            )
            keys = jnp.concatenate([cache["k"], k], axis=1)
            values = jnp.concatenate([cache["v"], v], axis=1)
            cache = _write(cache, k, v, positions_T)
        return cache, self.out(ATTENTION[self.attention](q, keys, values, mask_BxTxS))


class Block(nn.Module):
    """Pre-LN block: x + attn(LN(x)), then x + MLP(LN(x)) with a GELU MLP of width mlp_ratio * D."""

    num_heads: int
    d_model: int
    mlp_ratio: int = 4
    attention: str = "vmapped"
    use_rope: bool = False
    window: int = 0
    causal: bool = True

    def setup(self):
        self.ln_attn = nn.LayerNorm()
        self.attn = SelfAttention(
            self.num_heads,
            self.d_model // self.num_heads,
            self.d_model,
            self.attention,
            self.use_rope,
            self.window,
            self.causal,
        )
        self.ln_mlp = nn.LayerNorm()
        self.mlp_in = nn.Dense(self.mlp_ratio * self.d_model)
        self.mlp_out = nn.Dense(self.d_model)

    def mlp(self, x):
        return self.mlp_out(nn.gelu(self.mlp_in(self.ln_mlp(x))))

    def __call__(self, x_BxTxD, positions_T, valid_BxT=None, cache=None):
        cache, a_BxTxD = self.attn(self.ln_attn(x_BxTxD), positions_T, valid_BxT, cache)
        x_BxTxD = x_BxTxD + a_BxTxD
        return cache, x_BxTxD + self.mlp(x_BxTxD)


class TransformerLM(nn.Module):
    """Tokens [B, T] -> logits [B, T, V]: embed (+ positions), ``num_layers`` blocks, LN, linear head."""

    vocab_size: int
    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: int = 4
    positional: str = "sinusoidal"
    attention: str = "vmapped"
    max_len: int = 4096
    window: int = 0  # 0: full causal attention; > 0: each position sees the last `window` positions

    def setup(self):
        self.embedding = nn.Embed(self.vocab_size, self.d_model)
        if self.positional == "learned":
            self.pos_embedding = nn.Embed(self.max_len, self.d_model)
        self.blocks = [
            Block(self.num_heads, self.d_model, self.mlp_ratio, self.attention, self.positional == "rope", self.window)
            for _ in range(self.num_layers)
        ]
        self.ln_final = nn.LayerNorm()
        self.head = nn.Dense(self.vocab_size)

    def embed(self, tokens_BxT: Array, positions_T: Array | None = None) -> Array:
        if positions_T is None:
            positions_T = jnp.arange(tokens_BxT.shape[-1])
        x = self.embedding(tokens_BxT)
        if self.positional == "sinusoidal":
            x = x + sinusoidal(positions_T, self.d_model)[None]
        elif self.positional == "learned":
            x = x + self.pos_embedding(positions_T)[None]
        return x

    def from_embeddings(self, x_BxTxD: Array, state: dict | None = None, valid_BxT: Array | None = None):
        """Blocks and head on embedded inputs: ``(state, logits)``. ``state`` None: the chunk starts the
        sequence at position 0 and no cache is kept (None is returned); a KV cache: the chunk continues
        it. ``valid_BxT`` masks padding keys (False = padding)."""
        start = jnp.zeros((), jnp.int32) if state is None else state["pos"]
        positions_T = start + jnp.arange(x_BxTxD.shape[1])
        caches = (None,) * self.num_layers if state is None else state["layers"]
        new = []
        for block, cache in zip(self.blocks, caches, strict=True):
            cache, x_BxTxD = block(x_BxTxD, positions_T, valid_BxT, cache)
            new.append(cache)
        state = None if state is None else dict(layers=tuple(new), pos=start + x_BxTxD.shape[1])
        return state, self.head(self.ln_final(x_BxTxD))

    def __call__(self, tokens_BxT: Array, valid_BxT: Array | None = None) -> Array:
        return self.from_embeddings(self.embed(tokens_BxT), None, valid_BxT)[1]

    def initial_state(self, batch_size: int) -> dict:
        """The KV cache: per layer [B, S, H, K] keys and values, S = window or max_len."""
        slots = self.window if self.window > 0 else self.max_len
        head_dim = self.d_model // self.num_heads
        shape = (batch_size, slots, self.num_heads, head_dim)
        layer = lambda: dict(
            k=jnp.zeros(shape, jnp.float32), v=jnp.zeros(shape, jnp.float32), pos=jnp.full((slots,), -1, jnp.int32)
        )
        return dict(layers=tuple(layer() for _ in range(self.num_layers)), pos=jnp.zeros((), jnp.int32))

    def step(self, state: dict, token_B: Array) -> tuple[dict, Array]:
        x_Bx1xD = self.embed(token_B[:, None], state["pos"][None])
        state, logits_Bx1xV = self.from_embeddings(x_Bx1xD, state)
        return state, logits_Bx1xV[:, 0]

    def init_stream(self, batch_size: int, window: int) -> dict:
        """Online learning keeps the last ``window - L`` tokens and re-encodes them with each segment of
        L (gradients reach the whole window); unfilled slots at the stream's start are padding."""
        return dict(tokens=jnp.zeros((batch_size, window), jnp.int32), filled=jnp.zeros((), jnp.int32))

    def stream(self, memory: dict, tokens_BxL: Array) -> tuple[dict, Array]:
        length = tokens_BxL.shape[1]
        context_BxC = memory["tokens"][:, length:]
        tokens_BxW = jnp.concatenate([context_BxC, tokens_BxL], axis=1)
        width = tokens_BxW.shape[1]
        valid_BxW = jnp.broadcast_to(jnp.arange(width) >= context_BxC.shape[1] - memory["filled"], tokens_BxW.shape)
        logits_BxWxV = self(tokens_BxW, valid_BxW)
        kept = dict(tokens=tokens_BxW, filled=jnp.minimum(memory["filled"] + length, context_BxC.shape[1]))
        return kept, logits_BxWxV[:, width - length :]

    def recurrence_bound(self):
        return None


@dataclasses.dataclass(frozen=True)
class TransformerConfig(ModelConfig):
    """A causal pre-LN decoder; ``max_len`` 0 means the task's sequence length."""

    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: int = 4
    positional: str = "sinusoidal"  # one of POSITIONAL
    attention: str = "vmapped"  # "vmapped" (attend lifted by vmap) or "fused"
    max_len: int = 0
    window: int = 0  # sliding-window attention size; 0 = full causal

    def build(self, vocab_size: int, length: int) -> nn.Module:
        fields = dataclasses.asdict(self)
        fields["max_len"] = self.max_len or length
        return TransformerLM(vocab_size=vocab_size, **fields)

    def num_params(self, vocab_size: int, max_len: int = 0) -> int:
        d, f = self.d_model, self.mlp_ratio * self.d_model
        block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d)
        positions = (self.max_len or max_len) * d if self.positional == "learned" else 0
        return vocab_size * d + positions + self.num_layers * block + 2 * d + d * vocab_size + vocab_size

    def flops_per_token(self, vocab_size: int, context: int) -> float:
        """Dense layers, plus scores and weighted values over every key the dense kernel computes:
        ``context`` keys per query (a causal mask saves nothing there), ``window`` with a window."""
        d, f = self.d_model, self.mlp_ratio * self.d_model
        keys = context
        attention = 2 * 2.0 * keys * d + 5.0 * keys * self.num_heads  # q.k and p.v; softmax and mask
        block = dense_flops(d, 3 * d) + dense_flops(d, d) + dense_flops(d, f) + dense_flops(f, d) + attention
        return self.num_layers * block + dense_flops(d, vocab_size)

    def check_length(self, name: str, length: int) -> None:
        check(
            not self.max_len or self.max_len >= length,
            f"model.{name}.max_len",
            f"{self.max_len} is shorter than the task's sequence length {length}",
        )

    def validate(self, name: str) -> None:
        super().validate(name)
        check(self.positional in POSITIONAL, f"model.{name}.positional", f"must be one of {POSITIONAL}")
        check(self.attention in ATTENTION, f"model.{name}.attention", f"must be one of {tuple(ATTENTION)}")
        check(
            self.d_model % self.num_heads == 0,
            f"model.{name}.num_heads",
            f"{self.num_heads} does not divide d_model {self.d_model}",
        )
        check(
            self.positional != "rope" or (self.d_model // self.num_heads) % 2 == 0,
            f"model.{name}.positional",
            f"rope needs an even head width, got {self.d_model // self.num_heads}",
        )
