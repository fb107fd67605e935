"""Attention against a naive NumPy loop, the fused kernel against the vmapped one, and the masks.

Every jitted call compiles once per shape (~0.2 s on CPU), so the property test draws its shapes
[B, T, S, H, K] from a small fixed set and lets Hypothesis vary the data and the masks.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rvt.models.attention import (
    attend,
    causal_mask,
    fused_attention,
    vmapped_attention,
    window_mask,
)

TOL = dict(rtol=1e-5, atol=1e-5)
# (B, T, S, H, K): square, one query, one key, more keys than queries.
SHAPES = [(2, 6, 6, 3, 4), (1, 1, 5, 2, 8), (3, 4, 1, 1, 2), (2, 3, 5, 2, 4)]
vmapped = jax.jit(vmapped_attention)
fused = jax.jit(fused_attention)


def naive_attention(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, mask_BxTxS):
    """For each (b, h, t): softmax over the allowed keys s; no allowed key -> mean of the values."""
    q, k, v = (np.asarray(a, np.float64) for a in (q_BxTxHxK, k_BxSxHxK, v_BxSxHxK))
    batch, num_queries, heads, width = q.shape
    out = np.zeros((batch, num_queries, heads, v.shape[-1]))
    for b in range(batch):
        for h in range(heads):
            for t in range(num_queries):
                allowed = np.flatnonzero(mask_BxTxS[b, t])
                if allowed.size == 0:
                    out[b, t, h] = v[b, :, h].mean(axis=0)
                    continue
                scores = np.array([q[b, t, h] @ k[b, s, h] for s in allowed]) / np.sqrt(width)
                weights = np.exp(scores - scores.max())
                weights /= weights.sum()
                out[b, t, h] = sum(w * v[b, s, h] for w, s in zip(weights, allowed, strict=True))
    return out


def random_qkv(seed, batch, num_queries, num_keys, heads, width):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((batch, num_queries, heads, width)).astype(np.float32)
    k, v = rng.standard_normal((2, batch, num_keys, heads, width)).astype(np.float32)
    return q, k, v


def padding_mask(seed, batch, num_queries, num_keys):
    """A random [B, T, S] mask with at least one allowed key in every row."""
    rng = np.random.default_rng(seed)
    mask = rng.random((batch, num_queries, num_keys)) < 0.5
    forced = rng.integers(0, num_keys, (batch, num_queries))
    np.put_along_axis(mask, forced[..., None], True, axis=-1)
    return mask


def test_attend_one_head_matches_naive():
    q, k, v = random_qkv(0, 1, 5, 5, 1, 4)
    mask = np.asarray(causal_mask(5, 5))
    got = jax.jit(attend)(q[0, :, 0], k[0, :, 0], v[0, :, 0], mask)
    np.testing.assert_allclose(got, naive_attention(q, k, v, mask[None])[0, :, 0], **TOL)


def test_vmapped_and_fused_match_naive_causal():
    q, k, v = random_qkv(1, *SHAPES[0])
    mask = np.broadcast_to(np.asarray(causal_mask(6, 6)), (2, 6, 6))
    want = naive_attention(q, k, v, mask)
    np.testing.assert_allclose(vmapped(q, k, v, mask), want, **TOL)
    np.testing.assert_allclose(fused(q, k, v, mask), want, **TOL)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES))
def test_random_padding_mask_matches_naive(seed, shape):
    q, k, v = random_qkv(seed, *shape)
    mask = padding_mask(seed, *shape[:3])
    want = naive_attention(q, k, v, mask)
    got = vmapped(q, k, v, mask)
    np.testing.assert_allclose(got, want, **TOL)
    np.testing.assert_allclose(fused(q, k, v, mask), got, **TOL)


def test_fully_masked_row_gives_mean_of_values():
    q, k, v = random_qkv(2, *SHAPES[3])
    mask = padding_mask(3, *SHAPES[3][:3])
    mask[0, 1] = False
    mask[1, 2] = False
    for fn in (vmapped, fused):
        out = np.asarray(fn(q, k, v, mask))
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out[0, 1], v[0].mean(axis=0), **TOL)
        np.testing.assert_allclose(out[1, 2], v[1].mean(axis=0), **TOL)
        np.testing.assert_allclose(out, naive_attention(q, k, v, mask), **TOL)


@pytest.mark.parametrize(
    "args, table",
    [
        ((3, 3), ["100", "110", "111"]),
        ((2, 4, 2), ["1110", "1111"]),  # queries at positions 2 and 3
        ((1, 3, 0), ["100"]),
    ],
)
def test_causal_mask_table(args, table):
    got = np.asarray(causal_mask(*args))
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, [[c == "1" for c in row] for row in table])


@pytest.mark.parametrize(
    "args, table",
    [
        ((4, 4, 2), ["1000", "1100", "0110", "0011"]),
        ((5, 5, 1), ["10000", "01000", "00100", "00010", "00001"]),
        ((4, 4, 9), ["1000", "1100", "1110", "1111"]),  # wider than the sequence: causal
        ((2, 5, 2, 3), ["00110", "00011"]),  # queries at positions 3 and 4
    ],
)
def test_window_mask_table(args, table):
    got = np.asarray(window_mask(*args))
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, [[c == "1" for c in row] for row in table])
