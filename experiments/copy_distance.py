"""Train several models on a distance-labelled task and plot accuracy against dependency distance.

    python -m experiments.copy_distance [--workdir runs/copy_distance] [--overwrite] [--config.X=...]

The config file (experiments/configs/copy_distance.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.copy_distance.
"""

import pathlib

from absl import app, flags
from ml_collections import config_flags

from rvt.studies import common, copy_distance

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "copy_distance.py"), "Experiment config."
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/copy_distance", "Where the run's files go.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    common.main_guard(lambda: copy_distance.run(_CONFIG.value, _WORKDIR.value, _OVERWRITE.value))


if __name__ == "__main__":
    app.run(main)
