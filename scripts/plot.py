"""Redraw a run's figures from its CSV files: ``python -m scripts.plot <workdir> [<workdir> ...]``."""

from __future__ import annotations

import sys

from absl import app

from rvt.plotting import plot_workdir
from rvt.studies.common import main_guard


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("usage: python -m scripts.plot <workdir> [<workdir> ...]")
    for workdir in argv[1:]:
        for png in main_guard(lambda w=workdir: plot_workdir(w)):
            print(png)


if __name__ == "__main__":
    app.run(main)
    sys.exit(0)
