"""Cells against plain-NumPy steps written from their docstrings, their init, and the full RecurrentLM.

The NumPy references run in float64 on the float32 parameters pulled out of the flax params dict, so
they share nothing with the flax code but the parameter layout the docstrings promise. Parameters are
perturbed with noise before comparing, so zero-initialised biases cannot hide a wrong bias layout.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rvt.models
from rvt.models import ElmanCell, GRUCell, LSTMCell

B, D, H, T, V = 3, 5, 4, 6, 7
RTOL, ATOL = 1e-5, 1e-6


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def elman_step(p, h, x):
    h = np.tanh(x @ p["ih"]["kernel"] + p["ih"]["bias"] + h @ p["hh"]["kernel"])
    return h, h


def lstm_step(p, carry, x):
    c, h = carry
    z = x @ p["ih"]["kernel"] + p["ih"]["bias"] + h @ p["hh"]["kernel"]
    n = h.shape[-1]
    i, f, g, o = (z[:, k * n : (k + 1) * n] for k in range(4))
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return (c, h), h


def gru_step(p, h, x):
    xp = x @ p["ih"]["kernel"] + p["ih"]["bias"]
    hp = h @ p["hh"]["kernel"] + p["hh"]["bias"]
    n = h.shape[-1]
    xr, xz, xn = (xp[:, k * n : (k + 1) * n] for k in range(3))
    hr, hz, hn = (hp[:, k * n : (k + 1) * n] for k in range(3))
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    cand = np.tanh(xn + r * hn)
    h = (1.0 - z) * cand + z * h
    return h, h


# (cell, NumPy step, number of gate blocks, carry is an (c, h) pair)
CELLS = {
    "elman": (ElmanCell(hidden_size=H), elman_step, 1, False),
    "lstm": (LSTMCell(hidden_size=H), lstm_step, 4, True),
    "lstm_fb": (LSTMCell(hidden_size=H, forget_bias=-0.5), lstm_step, 4, True),
    "gru": (GRUCell(hidden_size=H), gru_step, 3, False),
}
NP_STEP = {"rnn": elman_step, "lstm": lstm_step, "gru": gru_step}


def _normal(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _perturb(params, seed, scale=0.3):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: x + scale * rng.standard_normal(x.shape).astype(np.float32), params)


def _random_carry(is_pair, seed):
    c, h = _normal(seed, (2, B, H))
    return (c, h) if is_pair else h


def _init(cell, is_pair, seed=0):
    x = np.zeros((B, D), np.float32)
    return cell.init(jax.random.key(seed), _random_carry(is_pair, 1), x)["params"]  # eager: cached ops


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_step_matches_numpy(name):
    cell, np_step, _, is_pair = CELLS[name]
    params = _perturb(_init(cell, is_pair), seed=2)
    carry = _random_carry(is_pair, 3)
    x = _normal(4, (B, D))

    carry_out, y = jax.jit(lambda p, c, x: cell.apply({"params": p}, c, x))(params, carry, x)
    ref_carry, ref_y = np_step(_np(params), _np(carry), _np(x))

    np.testing.assert_allclose(y, ref_y, rtol=RTOL, atol=ATOL)
    for got, want in zip(jax.tree.leaves(carry_out), jax.tree.leaves(ref_carry), strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_init(name):
    cell, _, num_gates, is_pair = CELLS[name]
    params = _np(_init(cell, is_pair))
    kernel = params["hh"]["kernel"]
    assert kernel.shape == (H, num_gates * H)
    blocks = [kernel[:, g * H : (g + 1) * H] for g in range(num_gates)]
    for q in blocks:
        np.testing.assert_allclose(q.T @ q, np.eye(H), atol=1e-5)
    for a in range(num_gates):  # independent draws, not one block repeated
        for b in range(a):
            assert not np.allclose(blocks[a], blocks[b])

    bias = params["ih"]["bias"]
    expected = np.zeros(num_gates * H)
    if isinstance(cell, LSTMCell):
        expected[H : 2 * H] = cell.forget_bias  # gate order [i, f, g, o]
    np.testing.assert_array_equal(bias, expected)
    assert ("bias" in params["hh"]) == isinstance(cell, GRUCell)
    if isinstance(cell, GRUCell):
        np.testing.assert_array_equal(params["hh"]["bias"], np.zeros(3 * H))


@pytest.mark.parametrize("name", list(CELLS))
def test_hoisted_projection_matches_per_step(name):
    cell, _, num_gates, is_pair = CELLS[name]
    params = _perturb(_init(cell, is_pair), seed=5)
    x_BxTxD = _normal(6, (B, T, D))
    project = jax.jit(lambda p, x: cell.apply({"params": p}, x, method="project"))

    whole = project(params, x_BxTxD)
    assert whole.shape == (B, T, num_gates * H)
    per_step = np.stack([project(params, x_BxTxD[:, t]) for t in range(T)], axis=1)
    np.testing.assert_allclose(whole, per_step, rtol=RTOL, atol=ATOL)
    p = _np(params)["ih"]
    np.testing.assert_allclose(whole, _np(x_BxTxD) @ p["kernel"] + p["bias"], rtol=RTOL, atol=ATOL)


def _numpy_lm(params, tokens_BxT, np_step, num_layers, is_pair):
    p = _np(params)
    h_BxTxD = p["embedding"]["embedding"][tokens_BxT]
    for i in range(num_layers):
        cell = p[f"cells_{i}"]
        width = cell["hh"]["kernel"].shape[0]
        zeros = np.zeros((tokens_BxT.shape[0], width))
        carry = (zeros, zeros) if is_pair else zeros
        outputs = []
        for t in range(tokens_BxT.shape[1]):
            carry, y = np_step(cell, carry, h_BxTxD[:, t])
            outputs.append(y)
        h_BxTxD = np.stack(outputs, axis=1)
    return h_BxTxD @ p["head"]["kernel"] + p["head"]["bias"]


# RecurrentLM.__call__ takes one of two routes: with fewer tokens than vocabulary entries it embeds and
# runs from_embeddings; otherwise it projects the embedding table once and gathers rows. Batch 1
# (6 tokens < V) takes the first, batch 3 (18 tokens) the second; both must equal the NumPy loop.
@pytest.mark.parametrize("batch", [1, B])
@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_recurrent_lm_matches_numpy_loop(name, batch):
    module, _ = rvt.models.make_model(name, dict(hidden_size=H, num_layers=2, embed_dim=D), vocab_size=V, length=T)
    params = _perturb(rvt.models.init_params(module, jax.random.key(7), T), seed=8)
    tokens = np.random.default_rng(9).integers(0, V, (batch, T)).astype(np.int32)

    logits = jax.jit(lambda p, x: module.apply({"params": p}, x))(params, tokens)
    ref = _numpy_lm(params, tokens, NP_STEP[name], num_layers=2, is_pair=name == "lstm")
    assert logits.shape == (batch, T, V)
    np.testing.assert_allclose(logits, ref, rtol=RTOL, atol=ATOL)


def test_lstm_custom_vjp_matches_autodiff():
    """lstm_scan's hand-written backward pass (dW_hh after the loop) equals autodiff of the plain scan, for
    every input and both parts of the final carry; the model's train path (lstm_scan) equals its probe
    path (nn.scan over step, taken when intermediates are recorded) in loss and every parameter gradient."""
    from rvt.models.cells import lstm_scan

    keys = jax.random.split(jax.random.key(3), 7)
    w = 0.5 * jax.random.normal(keys[0], (H, 4 * H))
    xp = jax.random.normal(keys[1], (T, B, 4 * H))
    c0, h0 = jax.random.normal(keys[2], (B, H)), jax.random.normal(keys[3], (B, H))
    dy, dc, dh = (jax.random.normal(k, s) for k, s in zip(keys[4:], [(T, B, H), (B, H), (B, H)], strict=True))

    def plain(w, xp, c0, h0):
        def step(carry, x):
            c, h = carry
            i, f, g, o = np.split(np.arange(4 * H), 4)
            z = x + h @ w
            c = jax.nn.sigmoid(z[:, f]) * c + jax.nn.sigmoid(z[:, i]) * jax.numpy.tanh(z[:, g])
            h = jax.nn.sigmoid(z[:, o]) * jax.numpy.tanh(c)
            return (c, h), h

        return jax.lax.scan(step, (c0, h0), xp)

    def loss(fn):
        def value(*args):
            (c, h), ys = fn(*args)
            return (ys * dy).sum() + (c * dc).sum() + (h * dh).sum()

        return jax.grad(value, argnums=(0, 1, 2, 3))

    for ours, ref in zip(loss(lstm_scan)(w, xp, c0, h0), loss(plain)(w, xp, c0, h0), strict=True):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)

    model, _ = rvt.models.make_model("lstm", dict(hidden_size=H, embed_dim=D), vocab_size=V, length=T)
    tokens = jax.random.randint(keys[5], (B, T), 0, V)
    params = model.init(jax.random.key(0), tokens)["params"]

    def model_loss(params, record):
        if record:  # recording intermediates takes the per-step path
            logits, _ = model.apply({"params": params}, tokens, mutable=["intermediates"])
        else:
            logits = model.apply({"params": params}, tokens)
        return (logits * jax.random.normal(keys[6], logits.shape)).sum()

    fused, stepped = (jax.value_and_grad(model_loss)(params, record) for record in (False, True))
    np.testing.assert_allclose(fused[0], stepped[0], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(fused[1]), jax.tree.leaves(stepped[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
