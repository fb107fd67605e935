"""Train several models on a distance-labelled task and plot accuracy against dependency distance.

    python -m experiments.copy_distance [--workdir runs/copy_distance] [--overwrite] [--config.X=...]

The config file (experiments/configs/copy_distance.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.copy_distance.
"""

from experiments import _app
from rvt.studies import copy_distance

if __name__ == "__main__":
    _app.main(copy_distance)
