"""copy_memory: the memoryless baseline is the loss of a blank-then-uniform model; the sweep end to end."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import copy_memory as copy_memory_config
from rvt import io, metrics
from rvt.studies import copy_memory
from rvt.tasks import make_task
from tests.test_readme_tables import check_table


@pytest.mark.parametrize("delay, num_symbols, alphabet", [(100, 10, 8), (7, 3, 5), (1000, 10, 8)])
def test_memoryless_baseline_is_the_loss_of_blanks_then_uniform(delay, num_symbols, alphabet):
    task = make_task("copy_memory", delay=delay, num_symbols=num_symbols, alphabet=alphabet)
    batch = jax.jit(task.sample, static_argnums=1)(jax.random.key(0), 64)
    # The model that remembers nothing: certain of a blank until the recall starts, then uniform over
    # the alphabet. It needs no input but the position, which a clock (or the marker) gives.
    recall_T = jnp.arange(task.length) >= delay + num_symbols
    blank_V = jnp.full((task.vocab_size,), -1e9).at[0].set(0.0)
    uniform_V = jnp.full((task.vocab_size,), -1e9).at[1 : alphabet + 1].set(0.0)
    logits_TxV = jnp.where(recall_T[:, None], uniform_V, blank_V)
    logits_BxTxV = jnp.broadcast_to(logits_TxV, (*batch.shape, task.vocab_size))
    loss = float(jax.jit(metrics.masked_cross_entropy)(logits_BxTxV, batch))
    assert loss == pytest.approx(task.memoryless_baseline(), rel=1e-5)
    assert task.memoryless_baseline() == pytest.approx(num_symbols * math.log(alphabet) / (delay + 2 * num_symbols))


def test_baseline_matches_the_published_numbers():
    published = {100: 0.173, 200: 0.0945, 300: 0.0650, 500: 0.0400, 1000: 0.0204}  # REFERENCE.md
    for delay, value in published.items():
        assert make_task("copy_memory", delay=delay).memoryless_baseline() == pytest.approx(value, abs=6e-4)


def tiny_config(models="rnn,transformer"):
    config = copy_memory_config.get_config()
    config.models = models
    config.delays = "2,5"
    config.task.update(num_symbols=2, alphabet=3)
    config.model.rnn.hidden_size = 8
    config.model.lstm.hidden_size = 8
    config.model.transformer.update(d_model=8, num_heads=2)
    config.train.update(steps=3, batch_size=4, log_every=2, eval_batches=1, eval_batch_size=16)
    return config


def test_end_to_end_writes_every_file(tmp_path, capsys):
    workdir = tmp_path / "run"
    copy_memory.run(tiny_config("rnn,lstm"), str(workdir))
    check_table("copy_memory", workdir)  # the README's table generator works on this run
    for name in ("config.json", "metrics.jsonl", "results.csv", "loss_vs_delay.png"):
        assert (workdir / name).stat().st_size > 0, name
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["experiment"] == "copy_memory" and saved["resolved"]["delays"] == [2, 5]
    rows = io.read_csv(workdir / "results.csv")
    assert list(rows[0])[:8] == ["model", "delay", "loss", "baseline", "accuracy", "steps", "learning_rate", "seed"]
    expect = sorted((m, d, s) for m in ("rnn", "lstm") for d in (2, 5) for s in (0, 1))  # a row per seed
    assert sorted((r["model"], r["delay"], r["seed"]) for r in rows) == expect
    for r in rows:
        assert r["baseline"] == pytest.approx(2 * np.log(3) / (r["delay"] + 4))
        assert r["loss_ratio"] == pytest.approx(r["loss"] / r["baseline"])
        assert 0.0 <= r["accuracy"] <= 1.0 and r["steps"] == 3
    records = io.read_jsonl(workdir / "metrics.jsonl")
    assert {(r["kind"], r["delay"]) for r in records} == {(k, d) for k in ("train", "eval") for d in (2, 5)}
    assert "loss / memoryless baseline" in capsys.readouterr().out


# Bad settings: each must fail with one ConfigError naming it, writing nothing (tests/test_bad_input.py).
BAD_INPUTS = [
    (
        lambda c: (setattr(c, "models", "lstm"), c.model.lstm.update(forget_bias=float("nan"))),
        "model.lstm.forget_bias:",
    ),
    (lambda c: setattr(c, "delays", "5,1000000000"), "train.batch_size:"),
    (lambda c: setattr(c, "delays", "5,0"), "delays:"),
    (lambda c: setattr(c, "delays", "5,x"), "delays:"),
    (lambda c: setattr(c, "delays", ""), "delays:"),
    (lambda c: setattr(c, "delays", "5,5"), "delays:"),
    (lambda c: setattr(c, "models", "bogus"), "models:"),
    (lambda c: c.task.update(alphabet=1), "task.alphabet:"),
    (lambda c: c.task.update(num_symbols=0), "task.num_symbols:"),
    (lambda c: c.train.update(learning_rate=-1.0), "train.learning_rate:"),
    (lambda c: c.model.transformer.update(max_len=6), "model.transformer.max_len:"),
]
