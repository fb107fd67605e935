"""Figures drawn from a run directory's CSV files alone.

Each experiment ``NAME`` has a module ``rvt.plotting.NAME`` whose ``FIGURES`` lists
``(png name, csv name, function(rows) -> matplotlib Figure)`` (None: the rows have nothing to draw there).
:func:`plot_workdir` reads
``config.json`` only to learn the experiment's name, then each CSV, and writes each PNG beside it.
``python -m scripts.plot <workdir>`` calls it. Adding an experiment's figures touches no file here.
"""

from __future__ import annotations

import importlib
import os
import pathlib
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

from rvt import io  # noqa: E402
from rvt.errors import ConfigError  # noqa: E402

FigureFn = Callable[[list[dict]], "matplotlib.figure.Figure"]


def figures_for(experiment: str) -> list[tuple[str, str, FigureFn]]:
    """The ``FIGURES`` list of ``rvt.plotting.<experiment>``."""
    if not isinstance(experiment, str) or not experiment.isidentifier():
        raise ConfigError(f"workdir: config.json names no experiment (got {experiment!r})")
    try:
        module = importlib.import_module(f"rvt.plotting.{experiment}")
    except ModuleNotFoundError:
        raise ConfigError(f"workdir: no figures exist for experiment {experiment!r}") from None
    return module.FIGURES


def plot_workdir(workdir: str | os.PathLike) -> list[pathlib.Path]:
    """Redraw every figure of the run in ``workdir`` from its CSV files; returns the PNG paths."""
    path = pathlib.Path(workdir)
    if not (path / io.CONFIG).is_file():
        raise ConfigError(f"workdir: {path} holds no run ({io.CONFIG} is missing)")
    experiment = io.read_json(path / io.CONFIG).get("experiment")
    written = []
    for png, csv, fn in figures_for(experiment):
        if not (path / csv).is_file():
            raise ConfigError(f"workdir: {path / csv} is missing")
        rows = io.read_csv(path / csv)
        if not rows:
            raise ConfigError(f"workdir: {path / csv} has no rows")
        figure = fn(rows)
        if figure is None:
            continue
        try:
            io.save_figure(figure, path / png)
        finally:
            matplotlib.pyplot.close(figure)
        written.append(path / png)
    return written
