"""Streaming study: one compiled step for every position, bounded window state, the jump, end to end.

(That stepping reproduces full-sequence logits is tested with the models; not repeated here.)
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import streaming as streaming_config
from rvt import io, models, profiling
from rvt.models import stepping
from rvt.studies import streaming
from tests.conftest import count_compiles
from tests.test_readme_tables import check_table

TINY = dict(d_model=8, num_layers=2, num_heads=2)


def _module(max_len, window=0):
    module, _ = models.make_model(
        "transformer", dict(TINY, max_len=max_len, window=window), vocab_size=5, length=max_len
    )
    return module


@pytest.fixture(scope="module")
def params():
    return models.init_params(_module(16), jax.random.key(0), 1)  # the same shapes for every max_len, window


@pytest.mark.parametrize("window", [0, 3])
def test_step_compiles_once_as_the_position_advances(params, window):
    module = _module(16, window)
    traces = []

    def step(p, state, token):
        traces.append(1)  # runs only while tracing
        return module.apply({"params": p}, state, token, method="step")

    jitted = jax.jit(step, donate_argnums=1)
    state = models.init_state(module, params)
    tokens = [jnp.array([t % 5], jnp.int32) for t in range(7)]
    positions = []
    with count_compiles() as compiles:
        for token in tokens:  # past the window: the ring buffer wraps
            state, logits = jitted(params, state, token)
            positions.append(int(state["pos"]))
    assert positions == list(range(1, 8))
    assert np.all(np.isfinite(np.asarray(logits)))
    assert len(traces) == 1 and compiles() == 1


def test_window_state_bytes_are_constant_in_max_len_and_the_cache_grows():
    def state_bytes(max_len, window):
        module = _module(max_len, window)  # initial_state reads no parameter: shapes are enough
        return profiling.tree_bytes(jax.eval_shape(lambda: module.apply({"params": {}}, 1, method="initial_state")))

    assert state_bytes(16, 4) == state_bytes(1024, 4) == state_bytes(4096, 4)
    cache_16, cache_1024 = state_bytes(16, 0), state_bytes(1024, 0)
    # Per slot and layer: keys and values (d_model floats each) and one int32 position.
    assert cache_1024 - cache_16 == (1024 - 16) * TINY["num_layers"] * (2 * TINY["d_model"] * 4 + 4)


@pytest.mark.parametrize("window", [0, 3])
def test_jump_cache_marks_the_same_slots_as_stepping(params, window):
    module = _module(8, window)
    step = models.make_step(module)
    state = models.init_state(module, params)
    for t in range(6):
        jumped = stepping.jump_cache(models.init_state(module, params), t + 1, jax.random.key(t))
        assert int(jumped["pos"]) == int(state["pos"]) == t
        for got, want in zip(jumped["layers"], state["layers"], strict=True):
            np.testing.assert_array_equal(got["pos"], want["pos"])
        state, _ = step(params, state, jnp.array([1], jnp.int32))


def test_grid_is_geometric_and_ends_at_the_maximum():
    assert streaming.grid(16, 2) == [1, 2, 4, 8, 16]
    assert streaming.grid(100, 4) == [1, 4, 16, 64, 100]


def tiny_config():
    config = streaming_config.get_config()
    config.model.lstm.hidden_size = 8
    config.model.transformer.update(d_model=8, num_heads=2)
    config.update(max_position=4, grid_factor=4, window=2, repeats=3, naive_max_position=4, naive_repeats=2)
    return config


def test_end_to_end_writes_every_file(tmp_path):
    workdir = tmp_path / "run"
    streaming.run(tiny_config(), str(workdir))
    check_table("streaming", workdir)  # the README's table generator works on this run
    for name in (
        "config.json",
        "metrics.jsonl",
        "results.csv",
        "summary.csv",
        "latency_vs_position.png",
        "bytes_vs_position.png",
    ):
        assert (workdir / name).stat().st_size > 0, name
    assert json.loads((workdir / "config.json").read_text())["resolved"]["positions"] == [1, 4]
    rows = io.read_csv(workdir / "results.csv")
    assert list(rows[0]) == list(streaming.RESULT_COLUMNS)
    assert {(r["mode"], r["position"]) for r in rows} == {(m, p) for m in streaming.MODES for p in (1, 4)}
    by = {(r["mode"], r["position"]): r for r in rows}
    assert by["state", 1]["model"] == "lstm" and by["state", 1]["state_bytes"] == by["state", 4]["state_bytes"]
    assert by["kv_cache", 1]["state_bytes"] == by["kv_cache", 4]["state_bytes"]  # preallocated
    assert by["kv_cache", 1]["state_bytes_used"] < by["kv_cache", 4]["state_bytes_used"]
    assert by["kv_bucket", 1]["state_bytes"] < by["kv_bucket", 4]["state_bytes"]
    assert by["naive", 4]["state_bytes"] == 16  # the int32 prefix
    assert all(r["latency_median_s"] > 0 for r in rows)
    # Each latency is a median over the configured number of timed steps (naive: naive_repeats).
    assert {(r["mode"] == "naive", r["repeats"]) for r in rows} == {(False, 3), (True, 2)}


# Bad settings: each must fail with one ConfigError naming it, writing nothing (tests/test_bad_input.py).
BAD_INPUTS = [
    (lambda c: setattr(c, "max_position", 10**12), "max_position:"),
    (lambda c: setattr(c, "modes", "state,bogus"), "modes:"),
    (lambda c: setattr(c, "max_position", 0), "max_position:"),
    (lambda c: setattr(c, "grid_factor", 1), "grid_factor:"),
    (lambda c: setattr(c, "window", 0), "window:"),
    (lambda c: setattr(c, "vocab_size", 3), "vocab_size:"),
    (lambda c: setattr(c, "rnn", "bogus"), "rnn:"),
    (lambda c: c.model.transformer.update(positional="learned"), "model.transformer.positional:"),
    (lambda c: c.model.lstm.update(hidden_size=0), "model.lstm.hidden_size:"),
]


def test_used_state_bytes_counts_filled_slots_only():
    """A KV cache of 8 slots after 2 tokens: 2/8 of every per-slot array (keys, values, their positions),
    plus what is not per slot (the position counter); a carry counts whole."""
    from rvt.models import stepping

    layer = dict(k=jnp.zeros((1, 8, 2, 4)), v=jnp.zeros((1, 8, 2, 4)), pos=jnp.zeros((8,), jnp.int32))
    state = dict(layers=[layer, layer], pos=jnp.zeros((), jnp.int32))
    per_layer = 2 * 8 * 2 * 4 * 4 + 8 * 4
    assert stepping.used_state_bytes(state, 2) == 2 * per_layer * 2 // 8 + 4
    assert stepping.used_state_bytes(state, 50) == 2 * per_layer + 4  # full
    assert stepping.used_state_bytes((jnp.zeros((1, 16)),), 3) == 64
