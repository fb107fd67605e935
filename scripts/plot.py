"""Redraw a run's figures from its CSV files: ``python -m scripts.plot <workdir> [<workdir> ...]``."""

from __future__ import annotations

import sys

from absl import app

from experiments._app import fail
from rvt.errors import ConfigError
from rvt.plotting import plot_workdir


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("usage: python -m scripts.plot <workdir> [<workdir> ...]")
    for workdir in argv[1:]:
        try:
            figures = plot_workdir(workdir)
        except ConfigError as e:
            fail(str(e))
        for png in figures:
            print(png)


if __name__ == "__main__":
    app.run(main)
    sys.exit(0)
