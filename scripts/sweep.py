"""Sweeps: a grid of settings -> one run per point under one root, finished runs skipped, unfinished resumed.

    python -m scripts.sweep --experiment=copy_distance --root=runs/sweep \\
        --axis='models=lstm|gru' --axis='train.learning_rate=1e-3|3e-3' --axis='seeds=3' [--parallel=2]
    python -m scripts.sweep --grid_file=sweep.json        # {"experiment": ..., "root": ..., "axes": {...}}

Each ``--axis`` is a config setting and its values separated by ``|`` (a value may contain commas, as
``models=lstm,gru`` does); the grid is their cartesian product. Every point runs as
``python -m experiments.<experiment> --workdir=<root>/<point> --config.<setting>=<value> ...``: rerunning the
sweep reruns the same commands, which skip finished runs and continue interrupted ones (see the
experiments' run directories). ``--parallel N`` runs N points at once; on a machine with accelerators, each
point is given its own devices round-robin (``CUDA_VISIBLE_DEVICES``). ``<root>/sweep.csv`` lists every
point, its settings, its workdir and how its run ended.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import pathlib
import re
import subprocess
import sys

import jax
from absl import app, flags

from rvt import io

_EXPERIMENT = flags.DEFINE_string("experiment", "copy_distance", "Which experiment (experiments/<name>.py).")
_ROOT = flags.DEFINE_string("root", "runs/sweep", "Where the runs go, one folder per grid point.")
_AXES = flags.DEFINE_multi_string("axis", [], "setting=value1|value2|...; repeatable.")
_GRID_FILE = flags.DEFINE_string("grid_file", "", "A JSON file with experiment, root and axes {setting: [values]}.")
_PARALLEL = flags.DEFINE_integer("parallel", 1, "Points run at once.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the commands, run nothing.")


def parse_axes(axes: list[str]) -> dict[str, list[str]]:
    parsed = {}
    for axis in axes:
        setting, sep, values = axis.partition("=")
        if not sep or not setting or not values:
            raise ValueError(f"axis: {axis!r} is not setting=value1|value2")
        parsed[setting.removeprefix("config.")] = values.split("|")
    return parsed


def points(axes: dict[str, list]) -> list[dict[str, str]]:
    """The cartesian product of the axes, in order."""
    names = list(axes)
    return [dict(zip(names, map(str, values), strict=True)) for values in itertools.product(*axes.values())]


def point_name(point: dict[str, str]) -> str:
    """A folder name from the settings: ``models=lstm,gru__train.learning_rate=0.001``."""
    return "__".join(re.sub(r"[^\w.,=+-]", "_", f"{k}={v}") for k, v in point.items()) or "default"


def command(experiment: str, workdir: pathlib.Path, point: dict[str, str]) -> list[str]:
    overrides = [f"--config.{k}={v}" for k, v in point.items()]
    return [sys.executable, "-m", f"experiments.{experiment}", f"--workdir={workdir}", *overrides]


def status(workdir: pathlib.Path) -> str:
    try:
        return "finished" if io.read_json(workdir / io.CONFIG).get("complete") else "unfinished"
    except (OSError, ValueError):
        return "new"


def run_point(experiment, root, point, slot: int, devices: int) -> dict:
    workdir = root / point_name(point)
    before = status(workdir)
    row = dict(point=point_name(point), settings=json.dumps(point), workdir=str(workdir), before=before)
    if before == "finished":
        return dict(row, after="finished", returncode=0, message="skipped: already finished")
    env = dict(os.environ)
    if devices > 1 and jax.default_backend() == "gpu":
        env["CUDA_VISIBLE_DEVICES"] = str(slot % devices)
    out = subprocess.run(command(experiment, workdir, point), env=env, capture_output=True, text=True)
    lines = out.stderr.strip().splitlines()
    message = next((line for line in reversed(lines) if line.startswith("error:")), "")
    return dict(row, after=status(workdir), returncode=out.returncode, message=message)


def main(argv):
    del argv
    experiment, root, axes = _EXPERIMENT.value, pathlib.Path(_ROOT.value), parse_axes(_AXES.value)
    if _GRID_FILE.value:
        spec = json.loads(pathlib.Path(_GRID_FILE.value).read_text())
        experiment, root = spec.get("experiment", experiment), pathlib.Path(spec.get("root", root))
        axes = {**{k: [str(v) for v in vs] for k, vs in spec.get("axes", {}).items()}, **axes}
    grid = points(axes)
    if _DRY_RUN.value:
        for point in grid:
            print(" ".join(command(experiment, root / point_name(point), point)))
        return
    root.mkdir(parents=True, exist_ok=True)
    devices = len(jax.devices())
    with concurrent.futures.ThreadPoolExecutor(max(_PARALLEL.value, 1)) as pool:
        futures = [pool.submit(run_point, experiment, root, p, i, devices) for i, p in enumerate(grid)]
        rows = []
        for future in futures:
            rows.append(future.result())
            r = rows[-1]
            print(f"{r['point']:<60} {r['before']:>10} -> {r['after']:<10} {r['message']}", flush=True)
    io.write_csv(root / "sweep.csv", rows)
    failed = [r for r in rows if r["returncode"] != 0]
    if failed:
        print(f"{len(failed)} of {len(rows)} points failed; rerun the same command to retry them", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
