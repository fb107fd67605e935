"""The linear-recurrence models (lru, mingru, minlstm, s6) and their scans, against the model contract.

Each model is checked against itself across its two scan backends, step mode, chunking and streaming,
against a NumPy loop of its paper's equations (float64, params read from the tree), against XLA's FLOP
count, and for causality by an exact-zero Jacobian. Params are random values in the shapes init gives
(``jax.eval_shape``: traced, never compiled; no zero bias hides a bug); only the learning test and the
init tests run the real initialisers. Sizes are tiny: the file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rvt.models
import rvt.models.linear  # noqa: F401  registers lru, mingru, minlstm, s6
from rvt.errors import ConfigError
from rvt.models import lru, s6
from rvt.models.scan import BACKENDS
from rvt.models.scan import linear_scan as _linear_scan
from rvt.models.scan import log_linear_scan as _log_linear_scan

# jitted: eagerly, every op of the associative scan's recursion would compile on its own
linear_scan = jax.jit(_linear_scan, static_argnames="backend")
log_linear_scan = jax.jit(_log_linear_scan, static_argnames="backend")

B, T, V = 2, 8, 7
# The real initialisers draw with this key: XLA compiles a threefry draw in ~0.3 s on CPU, an rbg one faster.
RBG_KEY = jax.random.key(0, impl="rbg")
# One layer where two would double every compilation; the lru's two cover the stack (ResidualLM is shared).
NAMES = ("lru", "mingru", "minlstm", "s6")
SMALL = {
    "lru": dict(d_model=8, state_size=6, num_layers=2),
    "mingru": dict(d_model=8, num_layers=1, expand=2, mlp_ratio=2),
    "minlstm": dict(d_model=8, num_layers=1, expand=2, mlp_ratio=2),
    "s6": dict(d_model=8, num_layers=1, state_size=4, expand=2, conv_width=3),
}
# Read from a run of the code; each config's closed-form num_params is the independent check.
PINNED = {"lru": 32_602, "mingru": 30_282, "minlstm": 34_506, "s6": 32_392}


@functools.cache
def build(name: str, backend: str = "associative", length: int = T):
    """(module, config, params): random params, except the LRU's decays, drawn by its ring init so the
    state remembers for many steps (|Lambda| in [0.9, 0.999]) and the backends differ in rounding."""
    module, config = rvt.models.make_model(name, {**SMALL[name], "backend": backend}, vocab_size=V, length=length)
    shapes = jax.eval_shape(
        lambda key: module.init(key, jnp.zeros((1, length), jnp.int32))["params"], jax.random.key(0)
    )
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: (0.3 * rng.standard_normal(s.shape)).astype(np.float32), shapes)
    if name == "lru":
        for i in range(config.num_layers):
            layer = params[f"blocks_{i}"]["lru"]
            layer["nu_log"] = lru.nu_log_init(0.9, 0.999)(jax.random.key(i), layer["nu_log"].shape)
    return module, config, params


def embeddings(name: str, seed: int = 0, shape=(B, T)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((*shape, SMALL[name]["d_model"])).astype(np.float32)


def tokens(seed: int, shape=(B, T)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, shape).astype(np.int32)


@functools.cache
def forward(name: str, backend: str = "associative"):
    """Jitted from_embeddings with the sown intermediates: (params, x, state) -> ((state, logits), sown).
    Every test that runs a sequence goes through it (jit caches one compilation per shape); eagerly, each
    op of the associative scan's recursion would compile on its own."""
    module = build(name, backend)[0]
    apply = lambda p, x, state=None: module.apply(
        {"params": p}, x, state, method="from_embeddings", mutable=["intermediates"]
    )
    return jax.jit(apply)


@functools.cache
def compiled_step(name: str):
    """The step (a one-token chunk through from_embeddings), compiled once."""
    module, _, params = build(name)
    state = module.apply({"params": params}, B, method="initial_state")
    step = lambda p, state, token_B: module.apply({"params": p}, state, token_B, method="step")
    return jax.jit(step).lower(params, state, tokens(0)[:, 0]).compile()


def embed(params, tokens_BxT: np.ndarray) -> np.ndarray:
    return np.asarray(params["embedding"]["embedding"])[tokens_BxT]


# ---------------------------------------------------------------------------------------------- scans


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64])
def test_linear_scan_backends_match_a_loop(dtype):
    rng = np.random.default_rng(0)
    draw = lambda *s: rng.uniform(0.5, 1.0, s) * (np.exp(1j * rng.uniform(0, 6.28, s)) if dtype == jnp.complex64 else 1)
    a, b, h0 = draw(9, 2, 3), rng.standard_normal((9, 2, 3)), draw(2, 3)
    h, expect = h0, []
    for t in range(9):
        h = a[t] * h + b[t]
        expect.append(h)
    for backend in BACKENDS:
        got = linear_scan(jnp.asarray(a, dtype), jnp.asarray(b, dtype), jnp.asarray(h0, dtype), backend)
        np.testing.assert_allclose(got, np.stack(expect), rtol=1e-5, atol=1e-6)


def test_log_linear_scan_matches_plain_and_survives_extreme_gates():
    rng = np.random.default_rng(1)
    log_a, log_b, h0 = -rng.exponential(1.0, (12, 3)), rng.standard_normal((12, 3)), rng.uniform(0, 2, 3)
    log_a[:, 0] = -1e-9  # a forget gate that float32 rounds to 1
    log_a[:, 1] = -200.0  # one that rounds to 0 (exp underflows), and products that would
    plain = linear_scan(jnp.exp(log_a), jnp.exp(log_b), h0, "sequential")
    for backend in BACKENDS:
        np.testing.assert_allclose(log_linear_scan(log_a, log_b, h0, backend), plain, rtol=2e-6)
        np.testing.assert_allclose(log_linear_scan(log_a, log_b, None, backend)[:, 1], np.exp(log_b[:, 1]), rtol=2e-6)


# --------------------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("name", NAMES)
def test_backends_agree_and_shapes(name):
    module, _, params = build(name)
    x = embeddings(name)
    (state_a, logits_a), _ = forward(name, "associative")(params, x)
    (state_s, logits_s), _ = forward(name, "sequential")(params, x)
    assert logits_a.shape == (B, T, V) and logits_a.dtype == jnp.float32 and np.all(np.isfinite(logits_a))
    np.testing.assert_allclose(logits_a, logits_s, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5), state_a, state_s)
    # the returned state has the tree, shapes and dtypes of initial_state (step mode donates it)
    initial = module.apply({"params": params}, B, method="initial_state")
    assert jax.tree.structure(state_a) == jax.tree.structure(initial)
    same = jax.tree.map(lambda u, v: (u.shape, u.dtype) == (v.shape, v.dtype), state_a, initial)
    assert all(jax.tree.leaves(same)), (jax.tree.map(jnp.shape, state_a), jax.tree.map(jnp.shape, initial))
    assert module.apply({"params": params}, method="recurrence_bound") is None


@pytest.mark.parametrize("name", NAMES)
def test_step_mode_matches_full_sequence(name):
    module, _, params = build(name)
    toks = tokens(2)
    (_, full), _ = forward(name)(params, embed(params, toks))
    # __call__ is embed then from_embeddings; its shapes, traced, not compiled
    called = jax.eval_shape(module.apply, {"params": params}, toks)
    assert (called.shape, called.dtype) == ((B, T, V), jnp.float32)
    step = compiled_step(name)
    state = rvt.models.init_state(module, params, B)
    for t in range(T):
        state, logits_BxV = step(params, state, toks[:, t])
        assert logits_BxV.shape == (B, V)
        np.testing.assert_allclose(logits_BxV, full[:, t], rtol=1e-5, atol=1e-5, err_msg=f"position {t}")


@pytest.mark.parametrize("name", NAMES)
def test_chunks_through_stream_equal_whole(name):
    """Two segments through ``stream`` (from_embeddings with the state passed on, from init_stream's
    zero state) give the logits of the whole sequence, and end in the state the whole run returns.
    Equal halves: the first segment's state has the shapes of the zero state, so one compilation."""
    module, _, params = build(name)
    toks = tokens(4)
    (state_whole, whole), _ = forward(name)(params, embed(params, toks))
    stream = jax.jit(lambda p, memory, toks: module.apply({"params": p}, memory, toks, method="stream"))
    memory = module.apply({"params": params}, B, 99, method="init_stream")
    memory, first = stream(params, memory, toks[:, : T // 2])
    memory, second = stream(params, memory, toks[:, T // 2 :])
    np.testing.assert_allclose(np.concatenate([first, second], 1), whole, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6), memory, state_whole)


@pytest.mark.parametrize("name", NAMES)
def test_causal(name):
    """d logits[t] / d x[s] is exactly zero for s > t (and not for s <= t)."""
    module, _, params = build(name)
    length = 5  # odd: the associative scan's odd-length branch; short: the Jacobian compiles in 1-2 s
    jac = jax.jit(jax.jacrev(lambda x: module.apply({"params": params}, x, method="from_embeddings")[1][0]))
    norms_TxS = np.abs(np.asarray(jac(embeddings(name, 5, (1, length))))).sum(axis=(1, 2, 4))  # of [T, V, 1, S, D]
    later = np.triu(np.ones((length, length), bool), k=1)
    assert np.all(norms_TxS[later] == 0.0)
    assert np.all(norms_TxS[~later] > 0.0)


# -------------------------------------------------------------------- NumPy loops of the papers' equations


def np_params(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def np_layernorm(x, p, eps=1e-6):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def np_rmsnorm(x, p, eps=1e-6):
    return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * p["scale"]


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def np_lru(p, x):
    """Orvieto et al. eq. (x_k = Lambda x_{k-1} + gamma * B u_k) on u = LayerNorm(x): the states x_k."""
    u = np_layernorm(x, p["norm"])
    p = p["lru"]
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    gamma = np.exp(p["gamma_log"])  # trainable: sqrt(1 - |Lambda|^2) only at init (tested below)
    state, states = np.zeros((x.shape[0], lam.size), complex), []
    for t in range(x.shape[1]):
        state = lam * state + gamma * (u[:, t] @ (p["B_re"] + 1j * p["B_im"]))
        states.append(state)
    return np.stack(states, 1)


def np_minrnn(cell, p, x):
    u = np_layernorm(x, p["norm_rnn"])
    p = p["rnn"]["in_proj"]
    k = u @ p["kernel"] + p["bias"]
    g = lambda v: np.where(v >= 0, v + 0.5, sigmoid(v))
    h, hs = 0.0, []
    for t in range(x.shape[1]):
        if cell == "gru":
            k_z, k_h = np.split(k[:, t], 2, -1)
            z = sigmoid(k_z)
            h = (1 - z) * h + z * g(k_h)
        else:
            k_f, k_i, k_h = np.split(k[:, t], 3, -1)
            f, i = sigmoid(k_f), sigmoid(k_i)
            h = f / (f + i) * h + i / (f + i) * g(k_h)
        hs.append(h)
    return np.stack(hs, 1)


def np_s6(p, x, width, size, rank):
    """Mamba's selective_scan_ref after its in_proj and conv: the states h_t [B, H, P]."""
    u = np_rmsnorm(x, p["norm"])
    p = p["mixer"]
    xs, _ = np.split(u @ p["in_proj"]["kernel"], 2, -1)
    padded = np.concatenate([np.zeros((x.shape[0], width - 1, xs.shape[-1])), xs], 1)
    conv = np.stack([sum(p["conv_kernel"][k] * padded[:, t + k] for k in range(width)) for t in range(x.shape[1])], 1)
    conv = conv + p["conv_bias"]
    xs = conv * sigmoid(conv)
    dbc = xs @ p["x_proj"]["kernel"]
    dt = np.logaddexp(0, dbc[..., :rank] @ p["dt_proj"]["kernel"] + p["dt_proj"]["bias"])
    b = dbc[..., rank : rank + size]
    a = -np.exp(p["A_log"])
    h, hs = np.zeros((x.shape[0], *a.shape)), []
    for t in range(x.shape[1]):
        h = np.exp(dt[:, t, :, None] * a) * h + (dt[:, t] * xs[:, t])[:, :, None] * b[:, t, None, :]
        hs.append(h)
    return np.stack(hs, 1)


@pytest.mark.parametrize("name", NAMES)
def test_hidden_matches_numpy_loop_of_the_paper(name):
    module, config, params = build(name)
    x = embeddings(name, 6)
    _, sown = forward(name)(params, x)
    p, x64 = np_params(params["blocks_0"]), x.astype(np.float64)
    if name == "lru":
        got, expect = sown["intermediates"]["blocks_0"]["lru"]["hidden"][0], np_lru(p, x64)
    elif name == "s6":
        got = sown["intermediates"]["blocks_0"]["mixer"]["hidden"][0]
        expect = np_s6(p, x64, config.conv_width, config.state_size, config.dt_rank or -(-config.d_model // 16))
    else:
        got, expect = sown["intermediates"]["blocks_0"]["rnn"]["hidden"][0], np_minrnn(name[3:], p, x64)
    assert got.shape == expect.shape
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------ cost


@pytest.mark.parametrize("name", NAMES)
def test_num_params_closed_form_and_pinned_presets(name):
    _, config, params = build(name)
    assert rvt.models.count_params(params) == config.num_params(V)
    module, config = rvt.models.make_model(name, rvt.models.PRESETS[name], vocab_size=10, length=201)
    shapes = jax.eval_shape(lambda key: module.init(key, jnp.zeros((1, 201), jnp.int32))["params"], jax.random.key(0))
    assert rvt.models.count_params(shapes) == config.num_params(10) == PINNED[name]
    assert 30_000 <= PINNED[name] <= 35_500  # the band of rnn/lstm/gru/transformer (29,338 .. 35,466)


@pytest.mark.parametrize("name", NAMES)
def test_flops_per_token_matches_xla(name):
    """XLA's count for the sequential backend's forward, corrected for its loop: XLA counts a while
    loop's body once, and the body is one multiply-add per state entry (h = a * h + b; a complex one
    counts 2 there too), so T - 1 more bodies are added. The associative backend does more elementwise
    work (rvt/models/scan.py), which flops_per_token, the cost of the recurrence itself, leaves out."""
    _, config, params = build(name, "sequential")
    x = embeddings(name)
    compiled = forward(name, "sequential").lower(params, x).compile()  # cached by the backend test
    _, sown = compiled(params, x)
    entries = sum(h.size // T for h in jax.tree.leaves(sown))  # state entries per step, all layers
    xla = (compiled.cost_analysis()["flops"] + (T - 1) * 2 * entries) / (B * T)
    assert abs(config.flops_per_token(V, T) / xla - 1) < 0.2, (config.flops_per_token(V, T), xla)


def test_state_bytes():
    _, config, _ = build("s6")
    h, p, w = 2 * 8, 4, 3
    assert config.state_bytes(T, B) == config.num_layers * B * (h * p + (w - 1) * h) * 4
    assert build("lru")[1].state_bytes(T, B) == 2 * B * 6 * 8  # complex64
    assert build("mingru")[1].state_bytes(T, B) == 1 * B * 16 * 4


# ------------------------------------------------------------------------------------- init and config


def test_inits_put_decays_and_time_steps_in_their_ranges():
    @jax.jit  # one compilation instead of one per op
    def draw(key):
        keys = jax.random.split(key, 3)
        return (
            lru.LRU(4, 4096).init(keys[0], method="lam")["params"],  # setup's params, without a scan
            lru.theta_log_init(6.283)(keys[1], (4096,)),
            jax.nn.softplus(s6.dt_bias_init(keys[2], (4096,))),
        )

    init, theta_log, dt = jax.tree.map(np.asarray, draw(RBG_KEY))
    radius = np.exp(-np.exp(init["nu_log"].astype(np.float64)))
    assert radius.min() >= 0.9 - 1e-6 and radius.max() <= 0.999 + 1e-6 and radius.max() > 0.99
    theta = np.exp(theta_log)
    assert theta.min() >= 0 and theta.max() <= 6.283 and theta.max() > 6.0
    assert dt.min() >= 1e-3 * (1 - 1e-4) and dt.max() <= 1e-1 * (1 + 1e-4)
    np.testing.assert_allclose(np.exp(init["gamma_log"]), np.sqrt(1 - radius**2), rtol=1e-5)


@pytest.mark.parametrize(
    "name, settings, prefix",
    [
        ("lru", {"backend": "fft"}, "model.lru.backend:"),
        ("lru", {"r_min": 0.99, "r_max": 0.9}, "model.lru.r_min:"),
        ("lru", {"r_min": 0.0}, "model.lru.r_min:"),
        ("lru", {"r_max": 1.0}, "model.lru.r_max:"),
        ("lru", {"max_phase": -1.0}, "model.lru.max_phase:"),
        ("lru", {"r_min": "0.9"}, "model.lru.r_min:"),
        ("lru", {"state_size": 0}, "model.lru.state_size:"),
        ("mingru", {"expand": 0}, "model.mingru.expand:"),
        ("minlstm", {"backend": "cuda"}, "model.minlstm.backend:"),
        ("s6", {"conv_width": 0}, "model.s6.conv_width:"),
        ("s6", {"dt_rank": -1}, "model.s6.dt_rank:"),
        ("s6", {"state_sise": 4}, "model.s6.state_sise:"),
    ],
)
def test_config_errors_name_the_setting(name, settings, prefix):
    with pytest.raises(ConfigError) as error:
        rvt.models.make_config(name, settings)
    assert str(error.value).startswith(prefix), str(error.value)


def test_configs_are_frozen_and_listed():
    config = rvt.models.make_config("s6", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.d_model = 3
    assert set(rvt.models.model_settings("lru")) == {
        "d_model",
        "state_size",
        "num_layers",
        "r_min",
        "r_max",
        "max_phase",
        "backend",
    }


# --------------------------------------------------------------------------------------------- learning


def test_lru_learns_to_copy_three_back():
    """Predict the token 3 positions back (vocab 6): > 0.9 accuracy after 60 Adam steps, < 0.4 before.
    Every batch is fresh, so the accuracy a step measures before its update is a held-out one."""
    lag, steps, vocab, length, batch = 3, 60, 6, 16, 32
    # the sequential backend: its gradient compiles in 2/3 of the associative one's time (tested equal above)
    settings = dict(d_model=16, state_size=16, num_layers=1, backend="sequential")
    module, _ = rvt.models.make_model("lru", settings, vocab_size=vocab, length=length)
    params = rvt.models.init_params(module, RBG_KEY, 1)  # the real init (shapes do not depend on T)
    opt = optax.adam(1e-2)

    def loss_and_accuracy(params, x_BxT):
        logits = module.apply({"params": params}, x_BxT)[:, lag:]
        targets = x_BxT[:, :-lag]
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean(), (
            logits.argmax(-1) == targets
        ).mean()

    @jax.jit  # one step compiled once (a scan over the steps compiles about twice as long)
    def update(params, opt_state, x_BxT):
        (_, accuracy), grads = jax.value_and_grad(loss_and_accuracy, has_aux=True)(params, x_BxT)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, accuracy

    rng, opt_state, accuracies = np.random.default_rng(0), opt.init(params), []
    for _ in range(steps):
        params, opt_state, accuracy = update(params, opt_state, rng.integers(0, vocab, (batch, length), np.int32))
        accuracies.append(float(accuracy))
    assert accuracies[0] < 0.4 and np.mean(accuracies[-5:]) > 0.9, accuracies


# ------------------------------------------------------------------------------- hand-written backwards


def _autodiff_linear_scan(a_TxN, b_TxN, h0_N):
    def step(h_N, ab):
        h_N = ab[0] * h_N + ab[1]
        return h_N, h_N

    return jax.lax.scan(step, h0_N, (a_TxN, b_TxN))[1]


def test_sequential_scan_backward_equals_autodiff_of_the_loop():
    from rvt.models.scan import sequential_scan

    keys = jax.random.split(jax.random.key(3), 4)
    a, b = jax.random.uniform(keys[0], (9, 2, 5), minval=-1.2, maxval=1.2), jax.random.normal(keys[1], (9, 2, 5))
    h0, g = jax.random.normal(keys[2], (2, 5)), jax.random.normal(keys[3], (9, 2, 5))
    got, vjp = jax.vjp(sequential_scan, a, b, h0)
    expect, vjp_ref = jax.vjp(_autodiff_linear_scan, a, b, h0)
    np.testing.assert_allclose(got, expect, rtol=1e-6)
    for mine, ref in zip(vjp(g), vjp_ref(g), strict=True):
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-6)
