"""Checkpoint and resume: an interrupted run, resumed, takes exactly the uninterrupted run's steps."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import pytest

from rvt import io, models, train
from rvt.checkpoint import Checkpoints
from rvt.errors import ConfigError
from rvt.studies import copy_distance
from rvt.tasks.copy import VariableCopy
from tests.test_experiment import tiny_config

TASK = VariableCopy(min_distance=1, max_distance=4, num_symbols=1, vocab_size=6)
CONFIG = train.TrainConfig(steps=6, batch_size=4, warmup_steps=1, log_every=1)


class Crash(Exception):
    pass


def _fresh_params(module):
    # A new copy per run: the train step donates the state, parameters included.
    return jax.tree.map(jnp.copy, models.init_params(module, jax.random.key(0), TASK.length))


def test_resumed_training_equals_uninterrupted(tmp_path):
    module, _ = models.make_model("lstm", dict(hidden_size=8), vocab_size=TASK.vocab_size, length=TASK.length)
    key = jax.random.key(1)
    whole = train.train(module, _fresh_params(module), TASK, CONFIG, key)

    def crash_after_step_4(record):
        if record["step"] == 4:
            raise Crash

    with Checkpoints(tmp_path / "ck", every=3) as checkpoints, pytest.raises(Crash):
        train.train(module, _fresh_params(module), TASK, CONFIG, key, crash_after_step_4, checkpoints=checkpoints)
    with Checkpoints(tmp_path / "ck", every=3) as checkpoints:
        assert checkpoints.latest_step() == 3  # step 4 was never saved
        resumed = train.train(module, _fresh_params(module), TASK, CONFIG, key, checkpoints=checkpoints)
        assert checkpoints.latest_step() == 6

    assert [r["step"] for r in resumed.history] == [4, 5, 6]
    assert int(resumed.state.step) == 6 and resumed.start_step == 3
    assert resumed.steps_per_s > 0 and resumed.checkpoint_s > 0  # steps 5 and 6 timed; saves apart
    chex.assert_trees_all_close(resumed.state.params, whole.state.params, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_close(resumed.state.opt_state, whole.state.opt_state, rtol=1e-6, atol=1e-7)
    assert resumed.history[-1]["loss"] == pytest.approx(whole.history[-1]["loss"], rel=1e-5)

    # A finished run is restored, not trained again.
    with Checkpoints(tmp_path / "ck", every=3) as checkpoints:
        again = train.train(module, _fresh_params(module), TASK, CONFIG, key, checkpoints=checkpoints)
    assert again.history == [] and int(again.state.step) == 6
    chex.assert_trees_all_close(again.state.params, whole.state.params, rtol=1e-6, atol=1e-7)


def test_experiment_resumes_and_refuses_another_config(tmp_path):
    config = tiny_config("rnn")
    config.train.checkpoint_every = 2
    workdir = tmp_path / "run"
    copy_distance.run(config, str(workdir))
    assert sorted(p.name for p in (workdir / io.CHECKPOINTS / "rnn").iterdir() if p.name.isdigit()) == ["2", "3"]
    first = (workdir / io.RESULTS).read_text()

    (trained,) = io.read_csv(workdir / "summary.csv")
    assert trained["start_step"] == 0 and trained["steps_per_s"] > 0 and trained["checkpoint_s"] > 0

    copy_distance.run(config, str(workdir), resume=True)  # everything restored from step 3
    assert (workdir / io.RESULTS).read_text() == first
    (restored,) = io.read_csv(workdir / "summary.csv")
    assert restored["start_step"] == 3  # restored complete: no timings to report, none invented
    assert restored["train_s"] == restored["compile_s"] == restored["steps_per_s"] == ""
    assert restored["accuracy"] == trained["accuracy"]
    records = io.read_jsonl(workdir / io.METRICS)
    assert [r["step"] for r in records if r["kind"] == "train"] == [2, 3]  # appended to, not retrained

    config.train.learning_rate = 0.5
    with pytest.raises(ConfigError, match=r"^resume: .* \(config\.train\.learning_rate: 0\.003 -> 0\.5\)"):
        copy_distance.run(config, str(workdir), resume=True)
    with pytest.raises(ConfigError, match="^overwrite: cannot be combined"):
        copy_distance.run(config, str(workdir), overwrite=True, resume=True)
    copy_distance.run(config, str(workdir), overwrite=True)  # a new run: the old checkpoints are gone
    records = io.read_jsonl(workdir / io.METRICS)
    assert [r["step"] for r in records if r["kind"] == "train"] == [2, 3]  # trained afresh, not restored
    assert io.read_json(workdir / io.CONFIG)["config"]["train"]["learning_rate"] == 0.5


def test_checkpoint_every_is_validated():
    with pytest.raises(ConfigError, match="train.checkpoint_every"):
        train.TrainConfig(checkpoint_every=-1).validate()
