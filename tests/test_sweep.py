"""scripts/sweep.py: the grid, one run per point, finished points skipped on a rerun."""

import pathlib
import subprocess
import sys

import pytest

from rvt import io
from scripts import sweep

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = [
    "model.rnn.hidden_size=8",
    "seeds=1",
    "tasks.variable_copy.min_distance=1",
    "tasks.variable_copy.max_distance=6",
    "tasks.variable_copy.num_symbols=1",
    "train.steps=3",
    "train.eval_batches=1",
    "train.eval_batch_size=16",
]


def test_the_grid_is_the_product_of_the_axes():
    axes = sweep.parse_axes(["models=lstm,gru|rnn", "train.learning_rate=1e-3|3e-3"])
    grid = sweep.points(axes)
    assert grid == [
        {"models": "lstm,gru", "train.learning_rate": "1e-3"},
        {"models": "lstm,gru", "train.learning_rate": "3e-3"},
        {"models": "rnn", "train.learning_rate": "1e-3"},
        {"models": "rnn", "train.learning_rate": "3e-3"},
    ]
    assert len({sweep.point_name(p) for p in grid}) == 4
    with pytest.raises(ValueError, match="axis"):
        sweep.parse_axes(["no_values"])


def test_a_sweep_runs_each_point_once(tmp_path):
    args = [f"--root={tmp_path / 'sweep'}", "--axis=models=rnn", *(f"--axis={a}" for a in TINY)]
    for expected in ("new", "finished"):
        out = subprocess.run(
            [sys.executable, "-m", "scripts.sweep", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-2000:]
        (row,) = io.read_csv(tmp_path / "sweep" / "sweep.csv")
        assert (row["before"], row["after"]) == (expected, "finished")
    assert {r["model"] for r in io.read_csv(pathlib.Path(row["workdir"]) / io.RESULTS)} == {"rnn"}
