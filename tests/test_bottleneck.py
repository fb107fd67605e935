"""bottleneck end to end at tiny size: the run's files and columns, the plot script, and bad input."""

import json
import os
import subprocess
import sys

import pytest

from experiments.configs import bottleneck as bottleneck_config
from rvt import io, plotting
from rvt.studies import bottleneck
from tests.test_readme_tables import check_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config():
    config = bottleneck_config.get_config()
    config.models = "final_state,attention"
    config.src_lens = "3"
    config.hidden_sizes = "4"
    config.train.update(steps=3, batch_size=4, warmup_steps=1, log_every=2, eval_batches=2, eval_batch_size=8)
    return config


def test_end_to_end_writes_every_file(tmp_path):
    workdir = tmp_path / "run"
    bottleneck.run(tiny_config(), str(workdir))
    check_table("bottleneck", workdir)  # the README's table generator works on this run
    for name in (
        "config.json",
        "metrics.jsonl",
        "results.csv",
        "per_position.csv",
        "accuracy_vs_length.png",
        "accuracy_by_position.png",
    ):
        assert (workdir / name).stat().st_size > 0, name
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["experiment"] == "bottleneck"
    assert [(r["model"], r["src_len"], r["hidden"]) for r in saved["resolved"]["runs"]] == [
        ("final_state", 3, 4),
        ("attention", 3, 4),
    ]
    records = io.read_jsonl(workdir / "metrics.jsonl")
    train_records = [r for r in records if r["kind"] == "train" and r["model"] == "attention"]
    assert [(r["seeds"], r["step"]) for r in train_records] == [([0], 2), ([0], 3), ([1], 2), ([1], 3)]
    assert sum(r["kind"] == "eval" for r in records) == 4  # a row per model and seed
    rows = io.read_csv(workdir / "results.csv")
    assert list(rows[0]) == list(bottleneck.RESULT_COLUMNS)
    for column in ("model", "task", "src_len", "hidden", "accuracy", "seq_accuracy", "seed", "params", "bits"):
        assert column in rows[0]
    assert [(r["model"], r["seed"]) for r in rows] == [(m, s) for m in ("final_state", "attention") for s in (0, 1)]
    assert all(r["bits"] == pytest.approx(9.0) and r["chance"] == pytest.approx(0.125) for r in rows)
    assert all(0.0 <= r["seq_accuracy"] <= r["accuracy"] <= 1.0 for r in rows)
    positions = io.read_csv(workdir / "per_position.csv")
    assert list(positions[0]) == list(bottleneck.POSITION_COLUMNS)
    assert [(p["model"], p["seed"], p["position"]) for p in positions] == [
        (m, s, t) for m in ("final_state", "attention") for s in (0, 1) for t in range(3)
    ]
    for row in rows:  # token accuracy is the mean of the per-position accuracies (every position scored)
        mine = [p for p in positions if (p["model"], p["seed"]) == (row["model"], row["seed"])]
        mean = sum(p["accuracy"] for p in mine) / 3
        assert mean == pytest.approx(row["accuracy"], abs=1e-6)
    # The figures are redrawn from the CSVs alone (what scripts/plot.py calls).
    (workdir / "accuracy_vs_length.png").unlink()
    assert plotting.plot_workdir(workdir) == [workdir / "accuracy_vs_length.png", workdir / "accuracy_by_position.png"]
    assert (workdir / "accuracy_vs_length.png").stat().st_size > 0


# Bad settings: each must fail with one ConfigError naming it, writing nothing (tests/test_bad_input.py).
BAD_INPUTS = [
    (lambda c: setattr(c, "models", "final_state,bogus"), "models:"),
    (lambda c: setattr(c, "models", ""), "models:"),
    (lambda c: setattr(c, "tasks", "copy,sort"), "tasks:"),
    (lambda c: setattr(c, "src_lens", "4,0"), "src_lens:"),
    (lambda c: setattr(c, "src_lens", "4,-2"), "src_lens:"),
    (lambda c: setattr(c, "src_lens", "four"), "src_lens:"),
    (lambda c: setattr(c, "hidden_sizes", "0"), "hidden_sizes:"),
    (lambda c: setattr(c, "alphabet", 1), "alphabet:"),
    (lambda c: c.model.final_state.update(cell="bogus"), "model.final_state.cell:"),
    (lambda c: c.update(models="transformer", hidden_sizes="3"), "model.transformer.num_heads:"),  # 2 heads
    (lambda c: c.model.attention.update(depth=2), "model.attention.depth:"),
    (lambda c: c.train.update(steps=0), "train.steps:"),
]


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "experiments.bottleneck", f"--workdir={tmp_path / 'run'}", "--config.src_lens=8,0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "error: src_lens: every item must be >= 1, got '0'"
    assert not (tmp_path / "run").exists()


def test_figure_draws_every_model_at_several_hidden_sizes():
    # The transformer's shared style is dashed; hidden sizes set line styles too: they must not clash.
    from rvt.plotting import bottleneck as figure

    rows = [
        dict(
            task="copy", model=m, hidden=h, src_len=n, accuracy=0.5, seq_accuracy=0.1, chance=0.125, bits=3 * n, steps=1
        )
        for m in ("final_state", "attention", "transformer")
        for h in (8, 16)
        for n in (4, 8)
    ]
    fig = figure.accuracy_vs_length(rows)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert sum("hidden 16" in label for label in labels) == 3
