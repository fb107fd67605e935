"""Every registered model: shapes, causality, step mode, masks, positions, pinned sizes, config errors.

Compiling is what costs time on CPU (~1 s per transformer function), so: parameters are random
values in the shapes ``init_params`` gives (``jax.eval_shape``: traced, never compiled; biases and
LayerNorm scales random too, so no zero init hides a bug; tests/test_cells.py checks the init
itself), full-sequence forwards run eagerly (eager JAX caches each primitive by shape, and the
variants share shapes), and the jitted paths are the ones under test: the step and the Jacobian.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rvt.models
from rvt.errors import ConfigError
from rvt.models.transformer import rope, sinusoidal

B, T, V = 2, 8, 7
SMALL = {
    "rnn": dict(hidden_size=8, num_layers=2),
    "lstm": dict(hidden_size=8, num_layers=2),
    "gru": dict(hidden_size=8, num_layers=2),
    "transformer": dict(d_model=16, num_layers=2, num_heads=2),
}
# (model, extra settings): every model, the transformer with every positional encoding and a window.
VARIANTS = [
    ("rnn", ()),
    ("lstm", ()),
    ("gru", ()),
    ("transformer", ()),
    ("transformer", (("positional", "learned"),)),
    ("transformer", (("positional", "rope"),)),
    ("transformer", (("positional", "none"),)),
    ("transformer", (("window", 3),)),
]
VARIANT_IDS = [name + "".join(f"-{k}={v}" for k, v in extra) for name, extra in VARIANTS]


def random_params(module, seed: int = 0):
    shapes = jax.eval_shape(lambda key: rvt.models.init_params(module, key, T), jax.random.key(0))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: (0.3 * rng.standard_normal(s.shape)).astype(np.float32), shapes)


@functools.cache
def build(name: str, extra: tuple = ()):
    """(module, params) for a small model of ``name`` with ``extra`` settings."""
    settings = {**SMALL.get(name, {}), **dict(extra)}
    module, _ = rvt.models.make_model(name, settings, vocab_size=V, length=T)
    return module, random_params(module)


def random_tokens(seed: int, shape=(B, T)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, shape).astype(np.int32)


@pytest.mark.parametrize("name", sorted(SMALL))  # the linear recurrences: tests/test_linear.py
def test_tokens_to_logits_shape(name):
    module, params = build(name)
    logits = module.apply({"params": params}, random_tokens(0))
    assert logits.shape == (B, T, V)
    assert logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("name, extra", VARIANTS, ids=VARIANT_IDS)
def test_causal_and_receptive_field(name, extra):
    """d logits[t] / d embedding[s] is exactly zero for s > t and nonzero within the model's reach."""
    module, params = build(name, extra)
    x_1xTxD = module.apply({"params": params}, random_tokens(1, (1, T)), method="embed")

    def logits_of(x):
        return module.apply({"params": params}, x, method="from_embeddings")[1]

    jac = np.asarray(jax.jit(jax.jacrev(logits_of))(x_1xTxD))  # [1, T, V, 1, T, D]
    influence_TxS = np.abs(jac[0, :, :, 0]).max(axis=(1, 3))
    window = dict(extra).get("window", 0)
    # with a window, each layer reaches window - 1 positions further back
    reach = SMALL[name]["num_layers"] * (window - 1) if window else T
    t, s = np.indices((T, T))
    visible = (s <= t) & (s >= t - reach)
    assert np.all(influence_TxS[s > t] == 0.0)
    assert np.all(influence_TxS[~visible] == 0.0)
    assert np.all(influence_TxS[visible] > 0.0)


@pytest.mark.parametrize("name, extra", VARIANTS, ids=VARIANT_IDS)
def test_step_mode_matches_full_sequence(name, extra):
    module, params = build(name, extra)
    tokens = random_tokens(2)
    full_BxTxV = np.asarray(module.apply({"params": params}, tokens))
    step = rvt.models.make_step(module)  # the public step API, state donated
    state = rvt.models.init_state(module, params, B)
    for t in range(T):
        state, logits_BxV = step(params, state, tokens[:, t])
        np.testing.assert_allclose(logits_BxV, full_BxTxV[:, t], atol=1e-5, err_msg=f"t={t}")
    assert step._cache_size() == 1  # one compiled step serves every position


def test_fused_attention_matches_vmapped():
    fused, _ = rvt.models.make_model(
        "transformer", {**SMALL["transformer"], "attention": "fused"}, vocab_size=V, length=T
    )
    module, params = build("transformer")
    fused_shapes = jax.eval_shape(lambda key: rvt.models.init_params(fused, key, T), jax.random.key(0))
    assert jax.tree.structure(fused_shapes) == jax.tree.structure(params)
    assert jax.tree.map(jnp.shape, fused_shapes) == jax.tree.map(jnp.shape, params)

    tokens = random_tokens(3)
    valid = np.random.default_rng(3).random((B, T)) < 0.7
    for args in [(tokens,), (tokens, valid)]:
        want = module.apply({"params": params}, *args)
        got = fused.apply({"params": params}, *args)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_padding_keys_are_invisible():
    module, params = build("transformer")
    apply = functools.partial(module.apply, {"params": params})
    rng = np.random.default_rng(4)
    tokens = random_tokens(4)
    valid = rng.random((B, T)) < 0.5
    valid[:, 0], valid[:, 3] = True, False  # every row has both kinds, with valid keys after padding
    changed = np.where(valid, tokens, (tokens + rng.integers(1, V, tokens.shape)) % V).astype(np.int32)

    before, after = np.asarray(apply(tokens, valid)), np.asarray(apply(changed, valid))
    np.testing.assert_allclose(after[valid], before[valid], atol=1e-6)
    assert not np.allclose(after[~valid], before[~valid])  # the change itself is visible
    unmasked = np.asarray(apply(changed, np.ones_like(valid)))  # without the mask it leaks
    assert not np.allclose(unmasked[valid], before[valid], atol=1e-4)


def test_sliding_window_equals_full_attention_with_window_mask():
    window = 3
    settings = dict(d_model=16, num_layers=1, num_heads=2)
    windowed, _ = rvt.models.make_model("transformer", {**settings, "window": window}, vocab_size=V, length=T)
    full, _ = rvt.models.make_model("transformer", settings, vocab_size=V, length=T)
    params = random_params(windowed, seed=5)
    apply_windowed = functools.partial(windowed.apply, {"params": params})
    apply_full = functools.partial(full.apply, {"params": params})

    tokens = random_tokens(5)
    got = np.asarray(apply_windowed(tokens))
    for t in range(T):  # one layer: row t of a window mask is the key-padding mask s > t - window
        valid = np.broadcast_to(np.arange(T) > t - window, (B, T))
        np.testing.assert_allclose(got[:, t], apply_full(tokens, valid)[:, t], atol=1e-6)
    assert not np.allclose(got[:, -1], apply_full(tokens, np.ones((B, T), bool))[:, -1])

    t = T - 1
    for offset, visible in [(window, False), (window - 1, True)]:
        edited = tokens.copy()
        edited[:, t - offset] = (edited[:, t - offset] + 1) % V
        same = np.allclose(apply_windowed(edited)[:, t], got[:, t], atol=0.0, rtol=0.0)
        assert same != visible, f"token at t - {offset}"


@pytest.mark.parametrize("width", [8, 7])
def test_sinusoidal_matches_formula(width):
    p, i = np.arange(11)[:, None], np.arange(width)[None, :]
    angle = p / 10_000.0 ** ((i - i % 2) / width)  # features 2i and 2i + 1 share a frequency
    want = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    np.testing.assert_allclose(sinusoidal(jnp.arange(11), width), want, atol=1e-5)


def test_models_add_their_positions_to_the_embedding():
    tokens = random_tokens(6)
    none, params = build("transformer", (("positional", "none"),))
    sin, _ = build("transformer")  # sinusoidal: no parameters of its own, same tree
    learned, learned_params = build("transformer", (("positional", "learned"),))
    plain = np.asarray(none.apply({"params": params}, tokens, method="embed"))
    np.testing.assert_allclose(plain, np.asarray(params["embedding"]["embedding"])[tokens])
    with_sin = sin.apply({"params": params}, tokens, method="embed")
    np.testing.assert_allclose(with_sin - plain, np.broadcast_to(sinusoidal(jnp.arange(T), 16), plain.shape), atol=1e-6)
    with_learned = learned.apply({"params": learned_params}, tokens, method="embed")
    table = np.asarray(learned_params["embedding"]["embedding"])[tokens]
    pos = np.asarray(learned_params["pos_embedding"]["embedding"])[:T]
    np.testing.assert_allclose(with_learned, table + pos[None], atol=1e-6)


def test_rope_preserves_norms_and_depends_on_offset_only():
    rng = np.random.default_rng(7)
    num_positions, width = 20, 8
    x = rng.standard_normal((1, num_positions, 2, width)).astype(np.float32)
    rotated = np.asarray(rope(x, jnp.arange(num_positions)))
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(rope(x, jnp.zeros(num_positions, jnp.int32)), x, atol=1e-6)

    # the same q and k at every position: q.k must depend on the offset s - p alone
    q_K, k_K = rng.standard_normal((2, width)).astype(np.float32)
    tile = functools.partial(np.broadcast_to, shape=(1, num_positions, 1, width))
    q_P = np.asarray(rope(tile(q_K), jnp.arange(num_positions)))[0, :, 0]
    k_P = np.asarray(rope(tile(k_K), jnp.arange(num_positions)))[0, :, 0]
    scores_PxP = q_P @ k_P.T
    for p in range(num_positions - 3):
        for d in range(-p, num_positions - p - 3):
            np.testing.assert_allclose(scores_PxP[p, p + d], scores_PxP[p + 3, p + 3 + d], atol=1e-4)
    assert not np.allclose(scores_PxP[0, 0], scores_PxP[0, 1:], atol=1e-2)  # it does rotate


def _closed_form_params(name: str, settings: dict, vocab: int) -> int:
    if name == "transformer":
        d, layers, mlp = settings["d_model"], settings.get("num_layers", 2), 4
        block = (
            2 * 2 * d  # two LayerNorms
            + d * 3 * d
            + 3 * d  # fused qkv
            + d * d
            + d  # attention out
            + d * mlp * d
            + mlp * d
            + mlp * d * d
            + d
        )  # MLP
        return vocab * d + layers * block + 2 * d + d * vocab + vocab
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[name]
    h = e = settings["hidden_size"]
    hh_bias = gates * h if name == "gru" else 0
    cell = gates * (e * h + h) + gates * h * h + hh_bias
    return vocab * e + cell + h * vocab + vocab


# Read from a run of the code; the closed forms above are the independent check.
PINNED = {"rnn": 35_466, "lstm": 34_314, "gru": 34_790, "transformer": 29_338}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_preset_parameter_counts(name):
    settings = rvt.models.PRESETS[name]
    module, _ = rvt.models.make_model(name, settings, vocab_size=10, length=201)
    shapes = jax.eval_shape(lambda key: rvt.models.init_params(module, key, 201), jax.random.key(0))
    count = rvt.models.count_params(shapes)
    assert count == _closed_form_params(name, settings, vocab=10)
    assert count == PINNED[name]


def test_presets_are_parameter_matched():
    assert set(PINNED) <= set(rvt.models.PRESETS)  # the linear recurrences pin theirs in test_linear.py
    assert max(PINNED.values()) <= 1.25 * min(PINNED.values())


@pytest.mark.parametrize(
    "name, settings, prefix",
    [
        ("nope", {}, "models:"),
        ("lstm", {"hiden_size": 8}, "model.lstm.hiden_size:"),
        ("rnn", {"hidden_size": 0}, "model.rnn.hidden_size:"),
        ("lstm", {"hidden_size": 0}, "model.lstm.hidden_size:"),
        ("gru", {"hidden_size": True}, "model.gru.hidden_size:"),
        ("gru", {"num_layers": -1}, "model.gru.num_layers:"),
        ("transformer", {"d_model": 16, "num_heads": 3}, "model.transformer.num_heads:"),
        ("transformer", {"d_model": 0}, "model.transformer.d_model:"),
        ("transformer", {"positional": "alibi"}, "model.transformer.positional:"),
        ("transformer", {"max_len": 4}, "model.transformer.max_len:"),
        ("transformer", {"d_model": 18, "num_heads": 6, "positional": "rope"}, "model.transformer.positional:"),
    ],
)
def test_config_errors_name_the_setting(name, settings, prefix):
    with pytest.raises(ConfigError) as error:
        rvt.models.make_model(name, settings, vocab_size=V, length=T)
    assert str(error.value).startswith(prefix), str(error.value)
