"""The learning-rate grid: every rate trains, validation batches choose, the test batches are never read."""

from __future__ import annotations

import jax
import pytest

from rvt import io, train
from rvt.errors import ConfigError
from rvt.studies import benchmarks, common
from tests.test_benchmarks import tiny


def _same_key(a, b) -> bool:
    return bool((jax.random.key_data(a) == jax.random.key_data(b)).all())


def test_grid_is_chosen_on_validation_and_never_reads_the_test_batches(tmp_path, monkeypatch):
    config = tiny("induction_heads")
    config.induction_heads.update(models="transformer_rope", test_ratios="1")
    config.train.update(steps=60, batch_size=16, eval_batch_size=64, learning_rates="1e-9,3e-2", warmup_steps=0)
    validation, test = common.held_out_keys(config.seed)
    test_batches = [jax.random.fold_in(test, i) for i in range(config.train.eval_batches)]
    calls = []  # (during selection?, key) of every held-out evaluation, in order
    evaluate = train.evaluate

    def watched(state, task, cfg, key, *args, **kwargs):
        calls.append(key)
        return evaluate(state, task, cfg, key, *args, **kwargs)

    monkeypatch.setattr(train, "evaluate", watched)
    benchmarks.run(config, str(tmp_path))
    grid = io.read_csv(tmp_path / common.LEARNING_RATES)
    assert sorted({r["learning_rate"] for r in grid}) == [1e-9, 3e-2] and len(grid) == 4  # 2 rates x 2 seeds
    chosen = {r["learning_rate"] for r in grid if r["chosen"]}
    assert chosen == {3e-2}  # a rate of 1e-9 learns nothing; validation sees it
    score = {r["learning_rate"]: r["validation_accuracy"] for r in grid}
    assert score[3e-2] > score[1e-9]
    rows = io.read_csv(tmp_path / io.RESULTS)
    assert {r["learning_rate"] for r in rows} == {3e-2}
    # the grid's four evaluations (2 rates x 2 seeds, one call per chunk) come first, all on validation
    # batches; the test key appears only after the choice, and no validation batch is a test batch
    assert len(calls) == 4 + 2 and all(_same_key(k, validation) for k in calls[:4])
    assert all(_same_key(k, test) for k in calls[4:])
    for i in range(config.train.eval_batches):
        assert not any(_same_key(jax.random.fold_in(validation, i), t) for t in test_batches)


def test_grid_settings_are_checked_before_anything_is_written(tmp_path):
    config = tiny("chomsky")
    config.train.learning_rates = "1e-3,-1"
    with pytest.raises(ConfigError, match="train.learning_rates"):
        benchmarks.run(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    config.train.learning_rates = "1e-3,1e-3"
    with pytest.raises(ConfigError, match="listed twice"):
        benchmarks.run(config, str(tmp_path / "run"))
