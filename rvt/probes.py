"""Probes of long-range credit assignment: gradient against distance, gates, step Jacobians.

Every probe works through the model contract (:mod:`rvt.models.base`), on any registered model:

* :func:`gradient_vs_distance` -- ``|| d loss_{T-1} / d x_{T-1-k} ||`` for every k in one vjp through the
  model's ``from_embeddings``.
* :func:`intermediates` / :func:`sown` -- what the model sowed on its forward pass (flax ``sow``): hidden
  states, the carries and inputs of each step, an LSTM's gates. Nothing is recomputed by hand.
* :func:`forget_products` and :func:`cell_path_gradient` -- from sown forget gates, ``prod f`` along the
  path and ``d c_{T-1} / d c_{T-1-k}`` along the cell path with the gates held fixed (one vjp).
* :func:`step_jacobian_log_norms`, :func:`recurrence_bound`, :func:`fit_log_slope` -- Pascanu et al.
  (2013): ``log ||dh_T/dh_{T-k}|| / k <= mean log ||dh_t/dh_{t-1}|| <= log sigma_max`` (tanh RNN).

The probes taking a module are jitted with the module static (flax modules hash by their settings).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rvt.typing import Array, Params


@functools.partial(jax.jit, static_argnums=0)
def gradient_vs_distance(module, params: Params, inputs_BxT: Array, targets_B: Array) -> Array:
    """Mean over the batch of ``|| d CE(logits_{T-1}, target) / d x_{T-1-k} ||_2``, indexed by k = 0..T-1.

    One vjp of the summed last-position losses: examples do not interact in any model here, so the
    gradient of the sum holds every example's own gradient.
    """
    x_BxTxD = module.apply({"params": params}, inputs_BxT, method="embed")

    def last_loss(x):
        logits_BxV = module.apply({"params": params}, x, method="from_embeddings")[1][:, -1]
        return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits_BxV, targets_B))

    grads_BxTxD = jax.grad(last_loss)(x_BxTxD)
    norms_BxT = jnp.linalg.norm(grads_BxTxD, axis=-1)
    return jnp.mean(norms_BxT, axis=0)[::-1]  # position T-1-k -> index k


@functools.partial(jax.jit, static_argnums=0)
def intermediates(module, params: Params, inputs_BxT: Array) -> dict:
    """Everything the model sows on a forward pass over ``inputs_BxT`` (flax ``sow``), as a nested dict."""
    _, state = module.apply({"params": params}, inputs_BxT, mutable=["intermediates"])
    return state.get("intermediates", {})


def sown(tree: dict, name: str):
    """The first value sown under ``name`` (depth-first: the first layer before later ones); None if the
    model sows nothing by that name. flax keeps sown values in a tuple; this returns its first entry."""
    if not isinstance(tree, dict):
        return None
    if name in tree:
        return tree[name][0]
    for key in sorted(tree):
        found = sown(tree[key], name)
        if found is not None:
            return found
    return None


@functools.partial(jax.jit, static_argnums=(0, 3))
def step_jacobian_log_norms(module, params: Params, inputs_BxT: Array, iterations: int = 200):
    """``log || d carry_t / d carry_{t-1} ||_2`` of the first recurrent layer per step and example: [T, B].

    Reads the carries and projected inputs the layer sowed on the forward pass and differentiates the
    model's own recurrence (``recur``) at them: any cell, nothing recomputed by hand. The norm comes from
    power iteration on J^T J (a jvp and a vjp per iteration; every row of the batch is its own block),
    which converges from below. Models that sow no carry (attention) return None. Averaged over t this is
    the per-step rate the trajectory allows, between the fitted gradient slope and the Pascanu et al.
    (2013) bound ``log sigma_max(W_hh)`` of a tanh RNN (:func:`recurrence_bound`).
    """
    tree = intermediates(module, params, inputs_BxT)
    carry, xp = sown(tree, "carry"), sown(tree, "xp")
    if carry is None or xp is None:
        return None
    steps, batch = xp.shape[:2]
    flat = lambda tree_: jax.tree.map(lambda x: x.reshape(steps * batch, *x.shape[2:]), tree_)
    carry_N, xp_N = flat(carry), flat(xp)
    recur = lambda c: module.apply({"params": params}, c, xp_N, method="recur")
    _, vjp = jax.vjp(recur, carry_N)

    def row_norms(tree_):
        return jnp.sqrt(sum(jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=-1) for x in jax.tree.leaves(tree_)))

    def normalise(tree_):
        norms = row_norms(tree_)
        return jax.tree.map(lambda x: x / norms.reshape(-1, *([1] * (x.ndim - 1))), tree_)

    def power_step(_, v):
        return normalise(vjp(jax.jvp(recur, (carry_N,), (v,))[1])[0])

    leaves, treedef = jax.tree.flatten(carry_N)
    keys = jax.random.split(jax.random.key(0), len(leaves))
    v0 = normalise(
        jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)])
    )
    v = jax.lax.fori_loop(0, iterations, power_step, v0)
    return jnp.log(row_norms(jax.jvp(recur, (carry_N,), (v,))[1])).reshape(steps, batch)


def recurrence_bound(module, params: Params) -> float | None:
    """The model's own upper bound on ||dh_t/dh_{t-1}|| (tanh RNN: sigma_max(W_hh)); None where none."""
    bound = module.apply({"params": params}, method="recurrence_bound")
    return None if bound is None else float(bound)


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
