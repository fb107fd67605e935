"""The train step: jit once, deterministic, correct metrics; and every model actually learns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rvt import metrics, models, train
from rvt.tasks import make_task
from rvt.typing import NO_DISTANCE
from tests.conftest import count_compiles


def _setup(name, settings, task, config):
    module, _ = models.make_model(name, settings, vocab_size=task.vocab_size, length=task.length)
    params = models.init_params(module, jax.random.key(0), task.length)
    return train.create_state(module, params, config)


def test_train_step_compiles_once_and_is_deterministic():
    task = make_task("variable_copy", min_distance=2, max_distance=6, num_symbols=2)
    config = train.TrainConfig(steps=5, batch_size=4)
    module, _ = models.make_model("lstm", dict(hidden_size=8), vocab_size=task.vocab_size, length=task.length)
    step_fn = train.make_train_step(train.task_sampler(task, 4), jax.random.key(1))
    runs = []
    # Two fresh states with the same module and optimizer: the second must not compile the step again.
    states = [train.create_state(module, models.init_params(module, jax.random.key(0), task.length), config)]
    states.append(train.create_state(module, models.init_params(module, jax.random.key(0), task.length), config))
    with count_compiles() as compiles:
        for state in states:
            for _ in range(5):
                state, step_metrics = step_fn(state)
            runs.append(jax.device_get((state.params, step_metrics)))
    assert compiles() == 1, "train step recompiled"
    jax.tree.map(np.testing.assert_array_equal, runs[0], runs[1])
    assert int(state.step) == 5
    assert set(step_metrics) == {"loss", "accuracy", "grad_norm", "param_norm"}
    assert float(step_metrics["grad_norm"]) > 0 and float(step_metrics["param_norm"]) > 0


def test_evaluation_compiles_once_per_model_and_task():
    task = make_task("variable_copy", min_distance=1, max_distance=4)
    config = train.TrainConfig(steps=4, batch_size=2, eval_batches=2, eval_batch_size=8)
    state = _setup("transformer", dict(d_model=8, num_heads=2, num_layers=1), task, config)
    train.evaluate(state, task, config, jax.random.key(0))
    with count_compiles() as compiles:
        for i in range(3):
            train.evaluate(state, task, config, jax.random.key(i))
    assert compiles() == 0


def test_eval_sums_match_numpy():
    task = make_task("variable_copy", min_distance=2, max_distance=7, num_symbols=2)
    batch = task.sample(jax.random.key(3), 16)
    logits = jax.random.normal(jax.random.key(4), (*batch.shape, task.vocab_size))
    # Make some predictions right so the tables are not all zero.
    logits = (
        logits
        + 3.0
        * jax.nn.one_hot(batch.targets, task.vocab_size)
        * (jax.random.uniform(jax.random.key(5), batch.shape) > 0.5)[..., None]
    )
    sums = jax.device_get(metrics.eval_sums(logits, batch, task.max_distance + 1))
    pred, tgt = np.argmax(np.asarray(logits), -1), np.asarray(batch.targets)
    mask, dist = np.asarray(batch.mask), np.asarray(batch.distance)
    hit = (pred == tgt) & (mask > 0)
    assert sums["correct"] == hit.sum() and sums["count"] == mask.sum()
    for d in range(task.max_distance + 1):
        sel = (dist == d) & (mask > 0)
        assert sums["distance_count"][d] == sel.sum()
        assert sums["distance_correct"][d] == hit[sel].sum()
    assert sums["distance_count"].sum() == ((dist != NO_DISTANCE) & (mask > 0)).sum()
    seq_ok = np.all(hit | (mask == 0), axis=-1)
    assert sums["seq_correct"] == seq_ok.sum()
    rows = metrics.distance_rows(sums)
    assert all(row["count"] > 0 and 0 <= row["accuracy"] <= 1 for row in rows)


def test_bucket_weights_by_count():
    rows = metrics.bucket([1, 2, 5], [1.0, 0.0, 0.5], [3, 1, 2], [0, 3, 10])
    assert rows == [dict(lo=0, hi=3, accuracy=0.75, count=4), dict(lo=3, hi=10, accuracy=0.5, count=2)]


LEARNERS = {
    "rnn": dict(hidden_size=64),
    "lstm": dict(hidden_size=32),
    "gru": dict(hidden_size=32),
    "transformer": dict(d_model=32, num_layers=1, num_heads=2),
}


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_every_model_learns_short_copy(name):
    """Two symbols of 8, recalled 2..8 positions later: chance is 1/8, the bar is 0.9."""
    task = make_task("variable_copy", min_distance=2, max_distance=8, num_symbols=2, vocab_size=11)
    config = train.TrainConfig(
        steps=400,
        batch_size=32,
        learning_rate=1e-2,
        warmup_steps=20,
        log_every=400,
        eval_batches=2,
        eval_batch_size=256,
    )
    module, _ = models.make_model(name, LEARNERS[name], vocab_size=task.vocab_size, length=task.length)
    params = models.init_params(module, jax.random.key(0), task.length)
    before = metrics.summarize(
        train.evaluate(train.create_state(module, params, config), task, config, jax.random.key(9))
    )
    result = train.train(module, params, task, config, jax.random.key(1))
    after = metrics.summarize(train.evaluate(result.state, task, config, jax.random.key(9)))
    assert before["accuracy"] < 0.3, before
    assert after["accuracy"] >= 0.9, after
    assert result.history[-1]["loss"] < 0.5 * jnp.log(task.alphabet)


def test_train_config_rejects_bad_values():
    from rvt.errors import ConfigError

    for field, value in [("steps", 0), ("batch_size", -1), ("learning_rate", 0.0), ("log_every", 0)]:
        with pytest.raises(ConfigError, match=rf"^train\.{field}:"):
            train.TrainConfig(**{field: value}).validate()
