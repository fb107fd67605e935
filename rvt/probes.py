"""Probes of long-range credit assignment: gradient against distance, forget-gate products, spectra.

* :func:`gradient_vs_distance` -- ``|| d loss_{T-1} / d x_{T-1-k} ||`` for every k in one vjp through the
  model's ``from_embeddings`` (any registered model: recurrent or Transformer).
* :func:`cell_trajectory` -- a recurrent layer's scan rerun in plain JAX with the cell's own params,
  recording what the model hides (hidden states, LSTM gates); tested equal to the model's own forward.
* :func:`forget_products` and :func:`cell_path_gradient` -- for an LSTM, ``prod f`` along the path and
  ``d c_{T-1} / d c_{T-1-k}`` along the cell path with the gates held fixed (one vjp): the same numbers.
* :func:`spectral_norm`, :func:`tanh_jacobian_log_norms`, :func:`fit_log_slope` -- the tanh RNN's
  Pascanu et al. (2013) bound: ``log ||dh_T/dh_{T-k}|| / k <= mean log ||diag(tanh') W|| <= log sigma_max``.

Everything reads the first layer's cell (``params['cells_0']``), whose input is the embedding. The probes
taking a module are jitted with the module static (flax modules hash by their settings).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rvt.models.cells import Cell, ElmanCell, LSTMCell
from rvt.models.recurrent import RecurrentLM
from rvt.typing import Array, Params


def _logits(module, params: Params, x_BxTxD: Array) -> Array:
    out = module.apply({"params": params}, x_BxTxD, method="from_embeddings")
    # RecurrentLM returns (carries, logits); TransformerLM returns logits.
    return out[1] if isinstance(module, RecurrentLM) else out


@functools.partial(jax.jit, static_argnums=0)
def gradient_vs_distance(module, params: Params, inputs_BxT: Array, targets_B: Array) -> Array:
    """Mean over the batch of ``|| d CE(logits_{T-1}, target) / d x_{T-1-k} ||_2``, indexed by k = 0..T-1.

    One vjp of the summed last-position losses: examples do not interact in any model here, so the
    gradient of the sum holds every example's own gradient.
    """
    x_BxTxD = module.apply({"params": params}, inputs_BxT, method="embed")

    def last_loss(x):
        logits_BxV = _logits(module, params, x)[:, -1]
        return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits_BxV, targets_B))

    grads_BxTxD = jax.grad(last_loss)(x_BxTxD)
    norms_BxT = jnp.linalg.norm(grads_BxTxD, axis=-1)
    return jnp.mean(norms_BxT, axis=0)[::-1]  # position T-1-k -> index k


def first_cell(module) -> tuple[Cell, str]:
    """The first layer's cell and its params key; probes of cells need a RecurrentLM."""
    if not isinstance(module, RecurrentLM):
        raise TypeError(f"cell probes need a RecurrentLM, got {type(module).__name__}")
    return module.cells[0], "cells_0"


@functools.partial(jax.jit, static_argnums=(0, 3))
def cell_trajectory(module, params: Params, inputs_BxT: Array, record=None) -> dict[str, Array]:
    """Rerun the first layer over the sequence; returns ``record(cell, carry_prev, xp)`` per step, [T, ...].

    ``record`` is called inside the cell's scope (``cell.apply(..., method=...)``), so it can call
    ``cell.gates``. The default records the carry after each step. Carries start at zero, as in the model.
    """
    cell, key = first_cell(module)
    cell_vars = {"params": params[key]}
    x_BxTxD = module.apply({"params": params}, inputs_BxT, method="embed")
    xp_TxBxGH = cell.apply(cell_vars, jnp.swapaxes(x_BxTxD, 0, 1), method="project")
    record = record or (lambda c, carry, xp: dict(carry=c.step(carry, xp)[0]))

    def step_and_record(c, carry, xp):
        return c.step(carry, xp)[0], record(c, carry, xp)

    def step(carry, xp_BxGH):
        return cell.apply(cell_vars, carry, xp_BxGH, method=step_and_record)

    _, recorded = jax.lax.scan(step, cell.initial_carry(inputs_BxT.shape[0]), xp_TxBxGH)
    return recorded


@functools.partial(jax.jit, static_argnums=0)
def lstm_gates(module, params: Params, inputs_BxT: Array) -> dict[str, Array]:
    """The first LSTM layer's gates ``i, f, g, o`` and cell state ``c`` at every step, each [T, B, H]."""
    cell, _ = first_cell(module)
    if not isinstance(cell, LSTMCell):
        raise TypeError(f"lstm_gates needs an LSTMCell, got {type(cell).__name__}")

    def record(c, carry, xp):
        gates = c.gates(carry, xp)
        c_new = gates["f"] * carry[0] + gates["i"] * gates["g"]
        return dict(gates, c=c_new)

    return cell_trajectory(module, params, inputs_BxT, record)


def forget_products(f_TxBxH: Array) -> Array:
    """``prod_{s=T-k}^{T-1} f_s`` -- the gate product over the last k steps -- for k = 0..T-1: [T, B, H].

    Index k = 0 is the empty product 1: c_{T-1} depends on itself with weight one.
    """
    reversed_TxBxH = f_TxBxH[::-1]
    ones = jnp.ones_like(reversed_TxBxH[:1])
    return jnp.concatenate([ones, jnp.cumprod(reversed_TxBxH, axis=0)[:-1]], axis=0)


@jax.jit
def cell_path_gradient(gates: dict[str, Array]) -> Array:
    """``d c_{T-1}[h] / d c_{T-1-k}[h]`` with every gate held fixed, for k = 0..T-1: [T, B, H], by one vjp.

    Adds a perturbation e_s to every c_s of the recurrence c_s = f_s c_{s-1} + i_s g_s + e_s and
    differentiates sum(c_{T-1}) with respect to all of them; with fixed gates the Jacobian is diagonal
    in h, so this is the diagonal. It is computed by autodiff, not from the formula, so comparing it with
    :func:`forget_products` tests the claim that the cell-path gradient *is* the product of forget gates.
    """
    f, i, g = (jax.lax.stop_gradient(gates[k]) for k in ("f", "i", "g"))

    def final_cell(e_TxBxH):
        def step(c, inputs):
            f_s, u_s, e_s = inputs
            c = f_s * c + u_s + e_s
            return c, None

        c_last, _ = jax.lax.scan(step, jnp.zeros_like(f[0]), (f, i * g, e_TxBxH))
        return jnp.sum(c_last)

    # e_s is added after step s's update, so d c_{T-1} / d e_s = d c_{T-1} / d c_s.
    grads_TxBxH = jax.grad(final_cell)(jnp.zeros_like(f))
    return grads_TxBxH[::-1]


def spectral_norm(matrix: Array) -> float:
    """Largest singular value."""
    return float(np.linalg.norm(np.asarray(matrix, np.float64), ord=2))


def recurrent_kernel(params: Params) -> Array:
    """The first layer's recurrent matrix W_hh [H, G*H] (flax Dense: h' = h @ W)."""
    return params["cells_0"]["hh"]["kernel"]


@functools.partial(jax.jit, static_argnums=(0, 3))
def tanh_jacobian_log_norms(module, params: Params, inputs_BxT: Array, iterations: int = 200) -> Array:
    """``log || d h_t / d h_{t-1} ||_2 = log || diag(1 - h_t^2) W^T ||_2`` per step and example: [T, B].

    Averaged over t this is the per-step rate the actual trajectory allows, between the fitted slope of
    the gradient and log sigma_max (|tanh'| <= 1 is what makes the latter a bound). The norm comes from
    power iteration on J^T J = W diag(d^2) W^T -- matmuls only, where a batched SVD of T*B matrices is
    slow on CPU -- and converges to the norm from below.
    """
    cell, _ = first_cell(module)
    if not isinstance(cell, ElmanCell):
        raise TypeError(f"tanh_jacobian_log_norms needs an ElmanCell, got {type(cell).__name__}")
    h_TxBxH = cell_trajectory(module, params, inputs_BxT)["carry"]
    d2_TxBxH = (1.0 - h_TxBxH**2) ** 2
    kernel_HxH = recurrent_kernel(params)

    def power_step(_, v_TxBxH):
        v_TxBxH = ((v_TxBxH @ kernel_HxH) * d2_TxBxH) @ kernel_HxH.T
        return v_TxBxH / jnp.linalg.norm(v_TxBxH, axis=-1, keepdims=True)

    v0 = jax.random.normal(jax.random.key(0), h_TxBxH.shape)
    v_TxBxH = jax.lax.fori_loop(0, iterations, power_step, v0 / jnp.linalg.norm(v0, axis=-1, keepdims=True))
    jv_TxBxH = (v_TxBxH @ kernel_HxH) * jnp.sqrt(d2_TxBxH)  # J v, written in the row-vector convention
    return jnp.log(jnp.linalg.norm(jv_TxBxH, axis=-1))


def fit_log_slope(norms_K, first: int = 1, floor: float = 1e-30) -> tuple[float, int, int]:
    """Least-squares slope of ln(norm) against distance k over the decaying range: (slope, lo, hi).

    The range starts at ``first`` (k = 0 skips the recurrence, so it sits off the line) and ends before
    the first norm under ``floor`` or non-finite (float32 underflow is noise, not decay). ``hi`` is
    inclusive. A slope of ln(lambda) means the norm shrinks by lambda per step.
    """
    norms = np.asarray(norms_K, np.float64)
    bad = np.flatnonzero(~np.isfinite(norms[first:]) | (norms[first:] <= floor))
    hi = first + (int(bad[0]) if bad.size else norms.size - first) - 1
    if hi - first < 1:
        return float("nan"), first, hi
    k = np.arange(first, hi + 1)
    slope, _ = np.polyfit(k, np.log(norms[first : hi + 1]), 1)
    return float(slope), first, hi
