"""Online study: the drifting stream, carried state equals one long sequence, prequential scoring, recovery."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import online as online_config
from rvt import io, metrics, models, train
from rvt.errors import ConfigError
from rvt.studies import online
from rvt.tasks.stream import DriftingCopyStream
from tests.test_readme_tables import check_table

KEY = jax.random.key(3)


def test_stream_targets_follow_the_rule_across_segment_boundaries():
    task = DriftingCopyStream(alphabet=5, segment_length=4, segments_per_rule=2, lags=(1, 3), permute=True)
    segment = jax.jit(lambda i: task.segment(KEY, i, 2))
    batches = [segment(i) for i in range(6)]
    stream = np.concatenate([np.asarray(b.inputs) for b in batches], axis=1)
    rule = jax.jit(lambda i: (task.lag(i), task.permutation(jax.random.split(KEY)[1], i)))
    for i, b in enumerate(batches):
        lag, perm = map(np.asarray, rule(i))
        assert lag == (1, 3)[(i // 2) % 2]
        for t in range(4):
            source = 4 * i + t - lag
            assert float(b.mask[0, t]) == float(source >= 0)
            if source >= 0:
                np.testing.assert_array_equal(b.targets[:, t], perm[stream[:, source]])
    perms = [tuple(np.asarray(rule(i)[1])) for i in (0, 1, 2)]
    assert perms[0] == perms[1] != perms[2] and sorted(perms[2]) == list(range(5))
    assert task.change_points(7) == [2, 4, 6]


def test_stream_validation_names_the_setting():
    with pytest.raises(ConfigError, match="^task.lags:"):
        DriftingCopyStream(segment_length=4, lags=(2, 5))
    with pytest.raises(ConfigError, match="^task.alphabet:"):
        DriftingCopyStream(alphabet=1)


def _config():
    config = online_config.get_config()
    config.num_segments, config.num_streams, config.window = 12, 2, 8
    config.stream.update(segment_length=4, segments_per_rule=5, lags=(1, 2))
    config.model.lstm.hidden_size = 8
    config.model.transformer.update(d_model=8, num_heads=2)
    return config


@pytest.fixture(scope="module")
def resolved():
    config = _config()
    task, plans = online.resolve(config)
    return config, task, {name: (m, models.init_params(m, KEY, config.window)) for name, m in plans}


def test_carried_state_makes_segments_one_long_sequence(resolved):
    _, task, plans = resolved
    module, params = plans["lstm"]
    first, second = task.segment(KEY, 0, 3), task.segment(KEY, 1, 3)
    stream = jax.jit(lambda p, memory, tokens: module.apply({"params": p}, memory, tokens, method="stream"))
    carry = module.apply({"params": params}, 3, 8, method="init_stream")
    carry, _ = stream(params, carry, first.inputs)
    _, logits = stream(params, carry, second.inputs)
    both = jnp.concatenate([first.inputs, second.inputs], axis=1)
    whole = jax.jit(module.apply)({"params": params}, both)
    np.testing.assert_allclose(logits, whole[:, 4:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_segments_are_scored_before_they_are_learnt_and_memory_rolls(resolved, name):
    config, task, plans = resolved
    module, params = plans[name]
    segment = task.segment(KEY, 3, config.num_streams)
    memory = module.apply({"params": params}, config.num_streams, config.window, method="init_stream")
    if name == "transformer":
        memory = dict(tokens=jnp.arange(16, dtype=jnp.int32).reshape(2, 8) % 5, filled=jnp.array(4, jnp.int32))
    before = train.stream_forward(module.apply, params, memory, segment)[1]
    settings = train.TrainConfig(steps=10, batch_size=2, learning_rate=0.5, warmup_steps=0, schedule="constant")
    state = train.create_state(module, jax.tree.map(jnp.copy, params), settings, memory=memory)
    step_fn = train.make_train_step(lambda key, step: segment, None, train.stream_forward)
    state, scores = step_fn(state)
    assert float(scores["accuracy"]) == pytest.approx(float(metrics.accuracy(before, segment)))
    assert not np.allclose(jax.tree.leaves(state.params)[0], jax.tree.leaves(params)[0])  # it did learn
    if name == "transformer":
        np.testing.assert_array_equal(state.memory["tokens"][:, 4:], segment.inputs)  # window 8 = 4 context + 4 new
        assert int(state.memory["filled"]) == 4


def test_recovery_counts_every_regime_against_the_learners_own_level():
    """Target: 0.9 x the best 2-segment mean anywhere (1.0). Regime 0 reaches it at once; regime 1 after 3
    segments; regime 2 never (so it is counted, not skipped); regime 3 starts from chance and is learnt
    after 4 -- counted although the rule before it was never learnt."""
    task = DriftingCopyStream(alphabet=8, segment_length=4, segments_per_rule=10, lags=(1, 2))
    accuracy = [1.0] * 10 + [0.1] * 3 + [1.0] * 7 + [0.1] * 10 + [0.1] * 4 + [1.0] * 6
    rows = [dict(model="m", seed=0, accuracy=a) for a in accuracy]
    out = online.recovery_rows(rows, task, smooth=2, fraction=0.9)
    assert [r["start_step"] for r in out] == [0, 10, 20, 30]
    assert [r["recovery_segments"] for r in out] == [0, 3, "", 4]
    assert [r["recovered"] for r in out] == [True, True, False, True]
    assert all(r["target_accuracy"] == pytest.approx(0.9) for r in out)


def test_end_to_end_writes_every_file(tmp_path):
    workdir = tmp_path / "run"
    online.run(_config(), str(workdir))
    check_table("online", workdir)  # the README's table generator works on this run
    for name in (
        "config.json",
        "metrics.jsonl",
        "results.csv",
        "recovery.csv",
        "summary.csv",
        "accuracy_over_stream.png",
        "recovery.png",
    ):
        assert (workdir / name).stat().st_size > 0, name
    rows = io.read_csv(workdir / "results.csv")
    assert list(rows[0]) == list(online.RESULT_COLUMNS)
    for model, seed in [(m, s) for m in ("lstm", "transformer") for s in (0, 1)]:  # a stream per seed
        sel = [r for r in rows if (r["model"], r["seed"]) == (model, seed)]
        assert [r["stream_step"] for r in sel] == list(range(12))
        assert [r["tokens_seen"] for r in sel] == [4 * (i + 1) for i in range(12)]
        assert all(0 <= r["accuracy"] <= 1 for r in sel)
    summary = {r["model"]: r for r in io.read_csv(workdir / "summary.csv") if r["seed"] == 0}
    assert summary["lstm"]["memory_bytes"] == 2 * 2 * 8 * 4  # 2 streams x (c, h) x 8 floats
    assert summary["transformer"]["memory_bytes"] == 2 * 8 * 4 + 4  # 2 streams x window 8 int32 tokens + fill count
    assert all(r["flops_per_token"] > 0 for r in summary.values())
    assert len(io.read_csv(workdir / "recovery.csv")) == 3 * 2 * 2  # three regimes, two models, two seeds


# Bad settings: each must fail with one ConfigError naming it, writing nothing (tests/test_bad_input.py).
BAD_INPUTS = [
    (lambda c: setattr(c, "num_streams", 10**9), "num_streams: lstm would need"),
    (lambda c: setattr(c, "learning_rate", float("inf")), "learning_rate:"),
    (lambda c: setattr(c, "models", "lstm,nope"), "models:"),
    (lambda c: c.stream.update(lags=(9,)), "stream.lags:"),
    (lambda c: setattr(c, "window", 2), "window:"),
    (lambda c: setattr(c, "num_segments", 5), "num_segments:"),
    (lambda c: setattr(c, "learning_rate", 0.0), "learning_rate:"),
    (lambda c: setattr(c, "recovery_fraction", 1.5), "recovery_fraction:"),
    (lambda c: c.model.lstm.update(hidden_size=0), "model.lstm.hidden_size:"),
]


def test_interventions_at_rule_changes(tmp_path):
    """reinit_qkv replaces exactly the attention's qkv weights; reset_optimizer exactly Adam's state; a
    run with both names its rows model+intervention and still scores every segment."""
    config = _config()
    config.models = "transformer"
    config.seeds = 1
    task, [(name, module)] = online.resolve(config)
    params = models.init_params(module, KEY, config.window)
    state = train.create_state(module, jax.tree.map(lambda x: x + 0.5, params), online.train_config(config))
    state = state.replace(opt_state=jax.tree.map(lambda x: x + 1 if x.dtype == jnp.float32 else x, state.opt_state))
    fresh = online.intervene(state, "reinit_qkv", module, jax.random.key(9), config.window)
    for path, old in jax.tree_util.tree_leaves_with_path(state.params):
        new = functools.reduce(lambda tree, k: tree[k.key], path, fresh.params)
        assert np.array_equal(old, new) != ("qkv" in jax.tree_util.keystr(path)), jax.tree_util.keystr(path)
    chex.assert_trees_all_equal(fresh.opt_state, state.opt_state)
    reset = online.intervene(state, "reset_optimizer", module, jax.random.key(9), config.window)
    chex.assert_trees_all_equal(reset.params, state.params)
    chex.assert_trees_all_equal(reset.opt_state, state.tx.init(state.params))

    config.on_change = "none,reset_optimizer,reinit_qkv"
    online.run(config, str(tmp_path / "run"))
    rows = io.read_csv(tmp_path / "run" / io.RESULTS)
    for label in ("transformer", "transformer+reset_optimizer", "transformer+reinit_qkv"):
        assert [r["stream_step"] for r in rows if r["model"] == label] == list(range(12))
    summary = io.read_csv(tmp_path / "run" / "summary.csv")
    assert [r["intervention"] for r in summary] == ["none", "reset_optimizer", "reinit_qkv"]
