"""A causal (decoder-only) pre-LN Transformer with three positional encodings and a KV-cache step.

Full-sequence mode computes every position at once; step mode (``initial_state`` / ``step``) feeds one
token at a time against a preallocated cache, so one compiled step serves every position. With
``window > 0`` attention sees only the last ``window`` positions and the cache is a ring buffer of that
size: constant memory per token, like an RNN, at the price of a bounded context.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvt.models.attention import ATTENTION, causal_mask, window_mask
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


class SelfAttention(nn.Module):
    """Multi-head self-attention: one fused QKV projection, ``ATTENTION[attention]`` per head."""

    num_heads: int
    head_dim: int
    d_model: int
    attention: str = "vmapped"
    use_rope: bool = False

    def setup(self):
        self.qkv = nn.DenseGeneral((3, self.num_heads, self.head_dim), name="qkv")
        self.out = nn.DenseGeneral(self.d_model, axis=(-2, -1), name="out")

    def project(self, x_BxTxD: Array, positions_T: Array) -> tuple[Array, Array, Array]:
        qkv = self.qkv(x_BxTxD)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.use_rope:
            q, k = rope(q, positions_T), rope(k, positions_T)
        return q, k, v

    def __call__(self, x_BxTxD: Array, positions_T: Array, mask_BxTxS: Array) -> Array:
        q, k, v = self.project(x_BxTxD, positions_T)
        return self.out(ATTENTION[self.attention](q, k, v, mask_BxTxS))

    def step(self, cache: dict, x_BxD: Array, pos: Array, window: int) -> tuple[dict, Array]:
        """Attend from one new token at absolute position ``pos`` to the cache, after writing it."""
        q, k, v = self.project(x_BxD[:, None, :], pos[None])
        slot = pos % cache["k"].shape[1]  # ring buffer; with no window the cache holds max_len
        cache = dict(
            k=jax.lax.dynamic_update_slice_in_dim(cache["k"], k, slot, axis=1),
            v=jax.lax.dynamic_update_slice_in_dim(cache["v"], v, slot, axis=1),
            pos=cache["pos"].at[slot].set(pos),
        )
        key_pos_S = cache["pos"]
        visible_S = (key_pos_S >= 0) & (key_pos_S <= pos)
        if window > 0:
            visible_S &= key_pos_S > pos - window
        mask_Bx1xS = jnp.broadcast_to(visible_S[None, None, :], (x_BxD.shape[0], 1, key_pos_S.shape[0]))
        return cache, self.out(ATTENTION[self.attention](q, cache["k"], cache["v"], mask_Bx1xS))[:, 0]


class Block(nn.Module):
    """Pre-LN block: x + attn(LN(x)), then x + MLP(LN(x)) with a GELU MLP of width mlp_ratio * D."""

    num_heads: int
    d_model: int
    mlp_ratio: int = 4
    attention: str = "vmapped"
    use_rope: bool = False

    def setup(self):
        self.ln_attn = nn.LayerNorm()
        self.attn = SelfAttention(
            self.num_heads, self.d_model // self.num_heads, self.d_model, self.attention, self.use_rope
        )
        self.ln_mlp = nn.LayerNorm()
        self.mlp_in = nn.Dense(self.mlp_ratio * self.d_model)
        self.mlp_out = nn.Dense(self.d_model)

    def mlp(self, x):
        return self.mlp_out(nn.gelu(self.mlp_in(self.ln_mlp(x))))

    def __call__(self, x_BxTxD, positions_T, mask_BxTxS):
        x_BxTxD = x_BxTxD + self.attn(self.ln_attn(x_BxTxD), positions_T, mask_BxTxS)
        return x_BxTxD + self.mlp(x_BxTxD)

    def step(self, cache, x_BxD, pos, window):
        cache, a_BxD = self.attn.step(cache, self.ln_attn(x_BxD), pos, window)
        x_BxD = x_BxD + a_BxD
        return cache, x_BxD + self.mlp(x_BxD)


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
            Block(self.num_heads, self.d_model, self.mlp_ratio, self.attention, self.positional == "rope")
            for _ in range(self.num_layers)
        ]
        self.ln_final = nn.LayerNorm()
        self.head = nn.Dense(self.vocab_size)

    def embed(self, tokens_BxT: Array, positions_T: Array | None = None) -> Array:
        if positions_T is None:
            positions_T = jnp.arange(tokens_BxT.shape[-1])
        x = self.embedding(tokens_BxT)
        if self.positional == "sinusoidal":
            x = x + sinusoidal(positions_T, self.d_model)
        elif self.positional == "learned":
            x = x + self.pos_embedding(positions_T)
        return x

    def from_embeddings(self, x_BxTxD: Array, valid_BxT: Array | None = None) -> Array:
        """Blocks and head on embedded inputs; ``valid_BxT`` masks padding keys (False = padding)."""
        num_steps = x_BxTxD.shape[1]
        positions_T = jnp.arange(num_steps)
        if self.window > 0:
            mask_TxT = window_mask(num_steps, num_steps, self.window)
        else:
            mask_TxT = causal_mask(num_steps, num_steps)
        mask_BxTxS = jnp.broadcast_to(mask_TxT, (x_BxTxD.shape[0], num_steps, num_steps))
        if valid_BxT is not None:
            mask_BxTxS = mask_BxTxS & valid_BxT[:, None, :]
        for block in self.blocks:
            x_BxTxD = block(x_BxTxD, positions_T, mask_BxTxS)
        return self.head(self.ln_final(x_BxTxD))

    def __call__(self, tokens_BxT: Array, valid_BxT: Array | None = None) -> Array:
        return self.from_embeddings(self.embed(tokens_BxT), valid_BxT)

    def initial_state(self, batch_size: int) -> dict:
        """The KV cache: per layer [B, S, H, K] keys and values, S = window or max_len."""
        slots = self.window if self.window > 0 else self.max_len
        head_dim = self.d_model // self.num_heads
        shape = (batch_size, slots, self.num_heads, head_dim)
        layer = dict(
            k=jnp.zeros(shape, jnp.float32),
            v=jnp.zeros(shape, jnp.float32),
            pos=jnp.full((slots,), -1, jnp.int32),
        )
        return dict(layers=tuple(layer for _ in range(self.num_layers)), pos=jnp.zeros((), jnp.int32))

    def step(self, state: dict, token_B: Array) -> tuple[dict, Array]:
        pos = state["pos"]
        x_BxD = self.embed(token_B[:, None], pos[None])[:, 0]
        caches = []
        for block, cache in zip(self.blocks, state["layers"], strict=True):
            cache, x_BxD = block.step(cache, x_BxD, pos, self.window)
            caches.append(cache)
        return dict(layers=tuple(caches), pos=pos + 1), self.head(self.ln_final(x_BxD))
