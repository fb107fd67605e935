"""scripts.reproduce: the plan covers every experiment, --dry_run runs nothing, a finished run costs 0 s."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from rvt import io
from scripts import reproduce

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.py") if not p.stem.startswith("_"))


def test_the_plan_covers_every_experiment_and_every_table():
    assert sorted({s.experiment for s in reproduce.PLAN}) == EXPERIMENTS
    tables = {s.overrides[0].split("=", 1)[1] for s in reproduce.PLAN if s.experiment == "benchmarks"}
    from rvt.studies import benchmarks

    assert tables == set(benchmarks.TABLES)
    assert len({s.name for s in reproduce.PLAN}) == len(reproduce.PLAN)  # one workdir each


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    finished = tmp_path / "edge"
    finished.mkdir()
    io.write_json(finished / io.CONFIG, dict(experiment="edge", complete=True, wall_s=12.0))
    out = subprocess.run(
        [sys.executable, "-m", "scripts.reproduce", "--dry_run", f"--root={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for step in reproduce.PLAN:
        assert any(line.startswith(step.name + " ") and f"experiments.{step.experiment}" in line for line in lines)
    assert any(line.startswith("edge ") and "0 min 00 s" in line and "finished" in line for line in lines)
    assert f"{len(reproduce.PLAN)} steps, estimated" in lines[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edge"]  # nothing ran, nothing written


def test_unknown_step_is_one_line_and_exit_2(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "scripts.reproduce", "--dry_run", "--only=bogus", f"--root={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 2 and out.stderr.strip().startswith("error: only: unknown step 'bogus'")
