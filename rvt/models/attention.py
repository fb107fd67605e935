"""Scaled dot-product attention, written for one head of one example and lifted with ``jax.vmap``.

``attend`` is the whole mechanism in four lines; ``vmapped_attention`` lifts it over heads and then
over the batch, which is exactly how a transformer computes every position of every head at once.
``fused_attention`` calls ``jax.nn.dot_product_attention`` (XLA's fused kernel, cuDNN flash attention
on GPU) with the same arguments; the tests hold the two equal.

Masks are boolean, True where a query may attend to a key. Rows with no allowed key produce the mean
of the values (uniform weights) rather than NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from rvt.typing import Array

AttentionFn = Callable[[Array, Array, Array, Array], Array]


def attend(q_TxK: Array, k_SxK: Array, v_SxK: Array, mask_TxS: Array) -> Array:
    """One head, one example: softmax(q k^T / sqrt(K), masked) v."""
    scores_TxS = q_TxK @ k_SxK.T / jnp.sqrt(q_TxK.shape[-1]).astype(q_TxK.dtype)
    scores_TxS = jnp.where(mask_TxS, scores_TxS, jnp.finfo(scores_TxS.dtype).min)
    return jax.nn.softmax(scores_TxS, axis=-1) @ v_SxK


def vmapped_attention(q_BxTxHxK: Array, k_BxSxHxK: Array, v_BxSxHxK: Array, mask_BxTxS: Array):
    """``attend`` lifted: vmap over heads (axis 2, mask shared), then over the batch."""
    over_heads = jax.vmap(attend, in_axes=(1, 1, 1, None), out_axes=1)
    return jax.vmap(over_heads)(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, mask_BxTxS)


def fused_attention(q_BxTxHxK: Array, k_BxSxHxK: Array, v_BxSxHxK: Array, mask_BxTxS: Array):
    """The same computation through ``jax.nn.dot_product_attention``."""
    return jax.nn.dot_product_attention(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, mask=mask_BxTxS[:, None, :, :])


ATTENTION: dict[str, AttentionFn] = {"vmapped": vmapped_attention, "fused": fused_attention}


def causal_mask(num_queries: int, num_keys: int, offset: int | Array = 0) -> Array:
    """[T, S] True where key position <= query position; query t sits at position ``offset + t``."""
    q_T = jnp.arange(num_queries)[:, None] + offset
    k_S = jnp.arange(num_keys)[None, :]
    return k_S <= q_T


def window_mask(num_queries: int, num_keys: int, window: int, offset: int | Array = 0) -> Array:
    """Causal and within ``window`` positions back (the query's own position included)."""
    q_T = jnp.arange(num_queries)[:, None] + offset
    k_S = jnp.arange(num_keys)[None, :]
    return (k_S <= q_T) & (k_S > q_T - window)
