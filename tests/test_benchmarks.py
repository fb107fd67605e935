"""Benchmark tasks against plain-Python references of their papers' rules, and each table end to end."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from experiments.configs import benchmarks as benchmarks_config
from rvt import io
from rvt.studies import benchmarks
from rvt.tasks import make_task
from rvt.tasks.formal import FIRST, QUERY, RULES
from tests.test_readme_tables import check_table


def _reference(rule: str, s: list[int]) -> list[int]:
    """The rule on one string, in plain Python (Deletang et al.'s definitions)."""
    if rule == "parity":
        return [sum(s) % 2]
    if rule == "even_pairs":
        pairs = sum(a != b for a, b in zip(s, s[1:], strict=False))  # "01" and "10" substrings
        return [int(pairs % 2 == 0)]
    if rule == "cycle_navigation":
        return [sum(v - 1 for v in s) % 5]
    if rule == "modular_arithmetic":
        text = "".join(str(v) if i % 2 == 0 else {5: "+", 6: "-", 7: "*"}[v] for i, v in enumerate(s))
        return [eval(text) % 5]  # noqa: S307 -- digits and + - * only; Python's precedence
    if rule == "reverse_string":
        return s[::-1]
    return s + s


@pytest.mark.parametrize("rule", RULES)
def test_chomsky_targets_follow_the_rule(rule):
    task = make_task("chomsky", rule=rule, min_length=1, max_length=9)
    batch = jax.tree.map(np.asarray, task.sample(jax.random.key(0), 128))
    lengths = set()
    for inputs, targets, mask in zip(batch.inputs, batch.targets, batch.mask, strict=True):
        n = int(np.argmax(inputs == QUERY))
        s = [int(v) - FIRST for v in inputs[:n]]
        lengths.add(n)
        assert all(v >= 0 for v in s) and (rule != "modular_arithmetic" or n % 2 == 1)
        assert [int(v) - FIRST for v in targets[mask > 0]] == _reference(rule, s)
        assert np.all(inputs[mask > 0] == QUERY) and np.all(inputs[n + int(mask.sum()) :] == 0)  # then padding
    assert len(lengths) >= 4  # lengths vary per example


def test_induction_heads_answer_is_the_token_after_the_trigger():
    task = make_task("induction_heads", length=24, alphabet=6)
    batch = jax.tree.map(np.asarray, task.sample(jax.random.key(1), 64))
    for inputs, targets, mask, distance in zip(batch.inputs, batch.targets, batch.mask, batch.distance, strict=True):
        (first, last) = np.flatnonzero(inputs == 7)
        assert last == 23 and mask.sum() == 1 and mask[23] == 1
        assert targets[23] == inputs[first + 1] and distance[23] == 23 - (first + 1)


def tiny(table: str):
    config = benchmarks_config.get_config()
    config.table = table
    config.seeds = 2
    config.train.update(steps=2, batch_size=4, log_every=1, eval_batches=1, eval_batch_size=8, checkpoint_every=0)
    small = dict(
        s6=dict(d_model=8, state_size=2),
        lstm=dict(hidden_size=8),
        rnn=dict(hidden_size=8),
        transformer=dict(d_model=8, num_heads=2, num_layers=1),
        mingru=dict(d_model=8),
        minlstm=dict(d_model=8),
    )
    for name in benchmarks.TABLES:  # each table's own presets, made tiny
        for model, settings in config[name].model.items():
            settings.update({k: v for k, v in small[model].items() if k != "num_layers" or name != "selective_copy"})
    config.selective_copy.update(models="s6,mingru", layers="1,2")
    config.selective_copy.task.update(context=8, num_data=2, alphabet=4)
    config.mqar.update(models="transformer,lstm", lengths="12", pairs="2", widths="8")
    config.induction_heads.update(models="transformer_rope,s6", test_ratios="2")
    config.induction_heads.task.length = 8
    config.chomsky.update(
        models="rnn,transformer", rules="parity,duplicate_string", train_max_length=3, test_max_length=5
    )
    return config


@pytest.mark.parametrize("table", benchmarks.TABLES)
def test_each_table_end_to_end(tmp_path, table):
    workdir = tmp_path / table
    benchmarks.run(tiny(table), str(workdir))
    rows = io.read_csv(workdir / io.RESULTS)
    assert list(rows[0])[:9] == [
        "benchmark",
        "model",
        "setting",
        "test",
        "accuracy",
        "seed",
        "paper",
        "paper_model",
        "paper_note",
    ]
    assert {r["seed"] for r in rows} == {0, 1} and all(0 <= r["accuracy"] <= 1 for r in rows)
    assert (workdir / "benchmark.png").stat().st_size > 0
    check_table("benchmarks", workdir)
    published = {(r["model"], r["setting"], r["test"]): r["paper"] for r in rows if r["paper"] != ""}
    expected = {
        "selective_copy": {
            ("s6", "layers=2", ""): 99.8,
            ("mingru", "layers=1", ""): 37.0,
            ("mingru", "layers=2", ""): 96.8,
        },
        "mqar": {},  # Zoology publishes no per-point numbers
        "induction_heads": {("transformer_rope", "", "x2"): 83.6, ("s6", "", "x2"): 100.0},
        "chomsky": {
            ("rnn", "parity", "ood"): 100.0,
            ("transformer", "parity", "ood"): 52.0,
            ("rnn", "duplicate_string", "ood"): 50.3,
            ("transformer", "duplicate_string", "ood"): 52.8,
        },
    }[table]
    assert published == expected


BAD_INPUTS = [
    (lambda c: c.train.update(batch_size=10**9), "train.batch_size:"),
    (lambda c: setattr(c, "table", "bogus"), "table:"),
    (lambda c: c.chomsky.update(rules="parity,bogus"), "chomsky.rule:"),
    (lambda c: setattr(c.chomsky, "train_by_model", dict(bogus=dict())), "chomsky.train_by_model.bogus:"),
    (
        lambda c: setattr(c.chomsky, "train_by_model", dict(rnn=dict(learning_rate=-1.0))),
        "chomsky.train_by_model.rnn.learning_rate:",
    ),
    (lambda c: (setattr(c, "table", "mqar"), c.mqar.update(pairs="2,4")), "mqar.pairs:"),
    (lambda c: (setattr(c, "table", "selective_copy"), c.selective_copy.update(layers="0")), "selective_copy.layers:"),
    (
        lambda c: (setattr(c, "table", "induction_heads"), c.induction_heads.task.update(length=2)),
        "induction_heads.task.length:",
    ),
]


def test_a_runs_identity_is_what_its_table_uses():
    config = tiny("chomsky")
    before = benchmarks.identity(config, benchmarks.plan(config)).to_dict()
    config.mqar.widths = "8,16"  # another table
    config.model.s6.d_model = 24  # a model this table does not train
    assert benchmarks.identity(config, benchmarks.plan(config)).to_dict() == before
    assert set(before["model"]) == {"rnn", "transformer"} and "mqar" not in before
    config.chomsky.model.rnn.hidden_size = 12  # what it uses
    assert benchmarks.identity(config, benchmarks.plan(config)).to_dict() != before


def test_a_table_sets_its_budget_and_a_models_learning_rate_and_the_command_line_wins(tmp_path):
    config = tiny("chomsky")
    config.train.steps = None  # unset: the table's budget applies
    config.chomsky.train.update(steps=3, learning_rate=0.005)
    config.chomsky.train_by_model = dict(rnn=dict(learning_rate=0.02))
    assert benchmarks.resolve_train(config, "rnn").learning_rate == 0.02
    assert benchmarks.resolve_train(config, "transformer").learning_rate == 0.005
    assert benchmarks.resolve_train(config, "transformer").steps == 3
    benchmarks.run(config, str(tmp_path))
    rates = {(r["model"], r["learning_rate"], r["steps"]) for r in io.read_csv(tmp_path / io.RESULTS)}
    assert rates == {("rnn", 0.02, 3), ("transformer", 0.005, 3)}
    config.train.update(steps=2, learning_rate=0.001)  # given on the command line: every model, every table
    assert {benchmarks.resolve_train(config, m).learning_rate for m in ("rnn", "transformer")} == {0.001}
    assert benchmarks.resolve_train(config, "rnn").steps == 2
