"""Redraw runs' figures from their CSV files alone.

    python -m scripts.plot <workdir> [<workdir> ...]                  # each run's figures, beside its CSVs
    python -m scripts.plot <workdir> <workdir> ... --overlay=<dir>    # runs of one experiment in one figure

With ``--overlay`` every model of every run is drawn in the same figure, labelled ``<run>/<model>`` (the
run is the workdir's folder name), and the figures are written into ``<dir>``.
"""

from __future__ import annotations

import pathlib
import sys

import matplotlib.pyplot as plt
from absl import app, flags

from experiments._app import fail
from rvt import io
from rvt.errors import ConfigError
from rvt.plotting import figures_for, plot_workdir, style

_OVERLAY = flags.DEFINE_string("overlay", "", "Draw all the runs in one figure per plot, written into this folder.")


def overlay(workdirs: list[pathlib.Path], out: pathlib.Path) -> list[pathlib.Path]:
    experiments = {io.read_run(w)["experiment"] if io.read_run(w) else None for w in workdirs}
    if len(experiments) != 1 or None in experiments:
        raise ConfigError(
            f"overlay: the workdirs must hold runs of one experiment, got {sorted(map(str, experiments))}"
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for png, csv, fn in figures_for(experiments.pop()):
        rows = []
        for workdir in workdirs:
            if not (workdir / csv).is_file():
                raise ConfigError(f"overlay: {workdir / csv} is missing")
            rows += [dict(r, model=f"{workdir.name}/{r['model']}") for r in io.read_csv(workdir / csv)]
        with style.overlay_runs([w.name for w in workdirs]):
            figure = fn(rows)
        try:
            io.save_figure(figure, out / png)
        finally:
            plt.close(figure)
        written.append(out / png)
    return written


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("usage: python -m scripts.plot <workdir> [<workdir> ...] [--overlay=<dir>]")
    try:
        if _OVERLAY.value:
            figures = overlay([pathlib.Path(w) for w in argv[1:]], pathlib.Path(_OVERLAY.value))
        else:
            figures = [png for workdir in argv[1:] for png in plot_workdir(workdir)]
    except ConfigError as e:
        fail(str(e))
    for png in figures:
        print(png)


if __name__ == "__main__":
    app.run(main)
    sys.exit(0)
