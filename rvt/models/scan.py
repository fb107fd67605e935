"""The first-order linear recurrence h_t = a_t * h_{t-1} + b_t, the serial core of LRU, minGRU/minLSTM and S6.

Elementwise in any trailing shape, time on axis 0, real or complex. Two backends compute the same numbers:

  "associative"  ``jax.lax.associative_scan`` with the composition of affine maps
                 (a1, b1) then (a2, b2)  ->  (a1 * a2, a2 * b1 + b2):
                 O(log T) depth, no loop (the training path on an accelerator), but more work:
                 XLA counts 13 FLOPs per state entry at T = 16, 28 at T = 256, 34 at T = 4096
                 (62 at T = 4096 for the log-space scan below)
  "sequential"   ``jax.lax.scan``: T dependent steps, 2 FLOPs per state entry, the minimum (what
                 step mode and the models' ``flops_per_token`` count)

Both take an initial state h0 (None: zeros). The associative backend folds it into the first input,
b_0 <- b_0 + a_0 * h0, which is exactly the first step of the recurrence, so no element is special.

:func:`log_linear_scan` is the same recurrence with positive coefficients given as logarithms, the form
in which minGRU and minLSTM are trained (Feng et al. 2024, after Heinsen 2023); see its docstring.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rvt.typing import Array

BACKENDS = ("associative", "sequential")
SETTINGS = (*BACKENDS, "auto")  # auto: sequential on CPU, associative on accelerators (scripts/bench.py)


def resolve(backend: str) -> str:
    """``auto`` -> the faster backend for this device: on XLA's CPU backend the sequential scan wins at
    every length measured (the associative one does ~10x the elementwise work and two cores leave its
    log-depth nothing to run in parallel); on GPUs and TPUs the associative scan's parallel depth pays."""
    if backend == "auto":
        return "sequential" if jax.default_backend() == "cpu" else "associative"
    return backend


def _check_backend(backend: str) -> str:
    backend = resolve(backend)
    if backend not in BACKENDS:
        raise ValueError(f"unknown scan backend {backend!r}; known: {SETTINGS}")
    return backend


def _compose(earlier: tuple[Array, Array], later: tuple[Array, Array]) -> tuple[Array, Array]:
    """h -> a2 * (a1 * h + b1) + b2: applying ``earlier`` then ``later`` is one affine map."""
    a1, b1 = earlier
    a2, b2 = later
    return a1 * a2, a2 * b1 + b2


def linear_scan(a_TxN: Array, b_TxN: Array, h0_N: Array | None = None, backend: str = "associative") -> Array:
    """Every h_t of h_t = a_t * h_{t-1} + b_t, h_{-1} = ``h0_N`` (zeros if None): returns h_TxN.

    ``N`` stands for any trailing shape; ``a_TxN`` may be anything that broadcasts to ``b_TxN``'s shape
    (a time-invariant decay [N] for the LRU) and ``h0_N`` to one time step of it.
    """
    backend = _check_backend(backend)
    dtype = jnp.result_type(a_TxN, b_TxN)
    a_TxN = jnp.broadcast_to(a_TxN, b_TxN.shape).astype(dtype)
    b_TxN = b_TxN.astype(dtype)
    if backend == "sequential":
        h_N = (
            jnp.zeros(b_TxN.shape[1:], dtype) if h0_N is None else jnp.broadcast_to(h0_N, b_TxN.shape[1:]).astype(dtype)
        )
        return sequential_scan(a_TxN, b_TxN, h_N)
    if h0_N is not None:
        b_TxN = b_TxN.at[0].add(a_TxN[0] * jnp.broadcast_to(h0_N, b_TxN.shape[1:]))
    return jax.lax.associative_scan(_compose, (a_TxN, b_TxN), axis=0)[1]


def _forward_scan(a_TxN: Array, b_TxN: Array, h0_N: Array) -> Array:
    def step(h_N, ab):
        h_N = ab[0] * h_N + ab[1]
        return h_N, h_N

    return jax.lax.scan(step, h0_N, (a_TxN, b_TxN))[1]


@jax.custom_vjp
def sequential_scan(a_TxN: Array, b_TxN: Array, h0_N: Array) -> Array:
    """h_t = a_t * h_{t-1} + b_t with ``lax.scan`` (all three arrays of one shape and dtype), with a
    hand-written backward pass: the cotangent of a linear recurrence is the same recurrence run in
    reverse (Mamba's selective-scan kernel computes it so),

        dh_t = g_t + a_{t+1} * dh_{t+1},   db_t = dh_t,   da_t = dh_t * h_{t-1},   dh0 = a_0 * dh_0,

    so the backward is one more loop of one multiply-add per step, and everything else is elementwise
    over [T, ...] outside any loop. Autodiff of the scan instead stacks per-step residuals and runs a
    loop body of several small ops per step, which XLA's CPU runtime pays for per op. Complex inputs
    follow JAX's convention (the transpose of multiplication by a is multiplication by a, unconjugated).
    """
    return _forward_scan(a_TxN, b_TxN, h0_N)


def _sequential_scan_fwd(a_TxN, b_TxN, h0_N):
    h_TxN = _forward_scan(a_TxN, b_TxN, h0_N)
    return h_TxN, (a_TxN, h_TxN, h0_N)


def _sequential_scan_bwd(residuals, g_TxN):
    a_TxN, h_TxN, h0_N = residuals
    a_next_TxN = jnp.concatenate([a_TxN[1:], jnp.zeros_like(a_TxN[:1])])  # a_{t+1}; nothing after T-1

    def step(dh_N, ag):
        dh_N = ag[0] * dh_N + ag[1]
        return dh_N, dh_N

    dh_TxN = jax.lax.scan(step, jnp.zeros_like(h0_N), (a_next_TxN, g_TxN), reverse=True)[1]
    h_prev_TxN = jnp.concatenate([h0_N[None], h_TxN[:-1]])
    return dh_TxN * h_prev_TxN, dh_TxN, a_TxN[0] * dh_TxN[0]


sequential_scan.defvjp(_sequential_scan_fwd, _sequential_scan_bwd)


def _logaddexp(x: Array, y: Array) -> Array:
    """log(exp(x) + exp(y)) for finite x, y: jnp.logaddexp without its infinity handling, about half
    the ops (this runs ~2T times per scan, and compiles into every level of the recursion)."""
    return jnp.maximum(x, y) + jnp.log1p(jnp.exp(-jnp.abs(x - y)))


def _compose_logs(earlier: tuple[Array, Array], later: tuple[Array, Array]) -> tuple[Array, Array]:
    """:func:`_compose` on logarithms: (log a1 + log a2, log(a2 * b1 + b2)); every log here is finite."""
    log_a1, log_b1 = earlier
    log_a2, log_b2 = later
    return log_a1 + log_a2, _logaddexp(log_a2 + log_b1, log_b2)


def log_linear_scan(
    log_a_TxN: Array, log_b_TxN: Array, h0_N: Array | None = None, backend: str = "associative"
) -> Array:
    """h_t = exp(log_a_t) * h_{t-1} + exp(log_b_t) with h_{-1} = ``h0_N`` >= 0 (zeros if None): h_TxN.

    Why logs: minGRU/minLSTM coefficients are sigmoids and products of them. Given as log-sigmoids
    (``-softplus``), a forget gate of 1 - 1e-9 or an input gate of 1e-30 keeps its value, where the
    sigmoid itself rounds to 1 or 0 in float32; and the associative backend never forms a product
    a_1 * ... * a_t, which underflows after a few hundred steps, only its log.

    The associative backend composes the affine maps in log space (:func:`_compose_logs`). The paper's
    form (Heinsen 2023) computes the same thing in two library calls,

        log h_t = a*_t + logcumsumexp_{s<=t}(log_b_s - a*_s),   a*_t = sum_{s<=t} log_a_s,

    but a*_t grows like t, and the sum then cancels two large numbers: relative error about
    |a*_t| * 6e-8, 1e-4 after 12 steps of a gate with log a = -200 (tests/test_linear.py). Composing
    pairs adds each log_b only to the decay since its own step, so the error stays at a few ulps.
    An initial state enters linearly, h_t += exp(sum_{s<=t} log_a_s) * h0, so no log of a zero state
    is ever taken.

    The sequential backend steps in plain space: every term is positive, so each step is a sum of two
    positive numbers, as accurate as float32 allows, with no cancellation.
    """
    backend = _check_backend(backend)
    log_a_TxN = jnp.broadcast_to(log_a_TxN, log_b_TxN.shape)
    if backend == "sequential":
        return linear_scan(jnp.exp(log_a_TxN), jnp.exp(log_b_TxN), h0_N, "sequential")
    decay_TxN, log_h_TxN = jax.lax.associative_scan(_compose_logs, (log_a_TxN, log_b_TxN), axis=0)
    h_TxN = jnp.exp(log_h_TxN)
    if h0_N is not None:
        h_TxN = h_TxN + jnp.exp(decay_TxN) * jnp.broadcast_to(h0_N, log_b_TxN.shape[1:])[None]
    return h_TxN
