"""Figures drawn from a run directory's CSV files alone.

Each experiment registers its figures in :data:`FIGURES`: experiment name -> list of
``(png name, csv name, function(rows) -> matplotlib Figure)``. :func:`plot_workdir` reads
``config.json`` only to learn the experiment's name, then each CSV, and writes each PNG beside it.
``python -m scripts.plot <workdir>`` calls it.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

from rvt import io  # noqa: E402
from rvt.errors import ConfigError  # noqa: E402
from rvt.plotting import copy_distance  # noqa: E402

FigureFn = Callable[[list[dict]], "matplotlib.figure.Figure"]
FIGURES: dict[str, list[tuple[str, str, FigureFn]]] = {}


def register_figure(experiment: str, png: str, csv: str, fn: FigureFn) -> None:
    FIGURES.setdefault(experiment, []).append((png, csv, fn))


register_figure("copy_distance", "accuracy_vs_distance.png", io.RESULTS, copy_distance.accuracy_vs_distance)


def plot_workdir(workdir: str | os.PathLike) -> list[pathlib.Path]:
    """Redraw every figure of the run in ``workdir`` from its CSV files; returns the PNG paths."""
    path = pathlib.Path(workdir)
    if not (path / io.CONFIG).is_file():
        raise ConfigError(f"workdir: {path} holds no run ({io.CONFIG} is missing)")
    experiment = io.read_json(path / io.CONFIG).get("experiment")
    if experiment not in FIGURES:
        raise ConfigError(f"workdir: no figures are registered for experiment {experiment!r}")
    written = []
    for png, csv, fn in FIGURES[experiment]:
        if not (path / csv).is_file():
            raise ConfigError(f"workdir: {path / csv} is missing")
        rows = io.read_csv(path / csv)
        if not rows:
            raise ConfigError(f"workdir: {path / csv} has no rows")
        figure = fn(rows)
        figure.savefig(path / png, dpi=130, bbox_inches="tight")
        matplotlib.pyplot.close(figure)
        written.append(path / png)
    return written
