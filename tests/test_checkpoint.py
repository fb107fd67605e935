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


def test_rerun_continues_the_same_run_and_refuses_another_config(tmp_path):
    config = tiny_config("rnn")
    config.train.checkpoint_every = 2
    workdir = tmp_path / "run"
    copy_distance.run(config, str(workdir))
    folder = workdir / io.CHECKPOINTS / "rnn" / "seeds_0-0"
    assert sorted(p.name for p in folder.iterdir() if p.name.isdigit()) == ["2", "3"]
    first = (workdir / io.RESULTS).read_text()
    (trained,) = io.read_csv(workdir / "summary.csv")
    assert trained["start_step"] == 0 and trained["steps_per_s"] > 0 and trained["checkpoint_s"] > 0

    with pytest.raises(io.RunComplete):  # the same command again: finished, nothing to redo or erase
        copy_distance.run(config, str(workdir))
    assert (workdir / io.RESULTS).read_text() == first

    # Interrupted after its last checkpoint: the rerun restores the model instead of training it again.
    saved = io.read_json(workdir / io.CONFIG)
    io.write_json(workdir / io.CONFIG, dict(saved, complete=False))
    copy_distance.run(config, str(workdir))
    assert (workdir / io.RESULTS).read_text() == first
    (restored,) = io.read_csv(workdir / "summary.csv")
    assert restored["start_step"] == 3 and restored["accuracy"] == trained["accuracy"]
    assert restored["train_s"] == restored["compile_s"] == restored["steps_per_s"] == ""  # none invented

    config.train.learning_rate = 0.5
    with pytest.raises(ConfigError, match=r"^workdir: .* \(config\.train\.learning_rate: 0\.003 -> 0\.5\)"):
        copy_distance.run(config, str(workdir))
    copy_distance.run(config, str(workdir), overwrite=True)  # a new run: the old checkpoints are gone
    records = io.read_jsonl(workdir / io.METRICS)
    assert [r["step"] for r in records if r["kind"] == "train"] == [2, 3]  # trained afresh, not restored
    assert io.read_json(workdir / io.CONFIG)["config"]["train"]["learning_rate"] == 0.5


def test_checkpoint_every_is_validated():
    with pytest.raises(ConfigError, match="train.checkpoint_every"):
        train.TrainConfig(checkpoint_every=-1).validate()


def test_restore_skips_a_corrupt_or_foreign_checkpoint_and_keeps_per_step_metrics(tmp_path):
    """A checkpoint whose bytes no longer match its digest (finite, so no NaN check would see it) or
    whose config tag is another run's is skipped for the older good one; the per-step metrics saved with
    a checkpoint come back with it, so a resumed run's step record is whole."""
    module, _ = models.make_model("lstm", dict(hidden_size=8), vocab_size=TASK.vocab_size, length=TASK.length)
    key = jax.random.key(1)
    with Checkpoints(tmp_path / "ck", every=3, tag="run-a") as checkpoints:
        whole = train.train(module, _fresh_params(module), TASK, CONFIG, key, checkpoints=checkpoints)
    assert [len(whole.steps)] == [6]
    meta = tmp_path / "ck" / "6" / "meta" / "metadata"
    saved = io.read_json(meta)
    assert len(saved["steps"]) == 6 and saved["tag"] == "run-a"
    io.write_json(meta, dict(saved, digest="0" * 64))  # as if the state's bytes had changed on disk

    like = train.create_state(module, _fresh_params(module), CONFIG)
    with Checkpoints(tmp_path / "ck", every=3, tag="run-a") as checkpoints:
        restored = checkpoints.restore(like)
        assert int(restored.step) == 3  # step 6 fails its digest: the older checkpoint is used
        assert checkpoints.restored_steps == whole.steps[:3]
        resumed = train.train(module, _fresh_params(module), TASK, CONFIG, key, checkpoints=checkpoints)
    assert resumed.start_step == 3 and len(resumed.steps) == 6
    chex.assert_trees_all_close(resumed.state.params, whole.state.params, rtol=1e-6, atol=1e-7)
    with Checkpoints(tmp_path / "ck", every=3, tag="run-b") as checkpoints:
        assert checkpoints.restore(like) is None  # another config's checkpoints are never used
