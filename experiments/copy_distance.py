"""Train several models on a distance-labelled task and plot accuracy against dependency distance.

    python -m experiments.copy_distance [--workdir runs/copy_distance] [--overwrite | --resume] [--config.X=...]

The config file (experiments/configs/copy_distance.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.copy_distance.
"""

import pathlib

from absl import app, flags

from rvt.studies import common, copy_distance

_CONFIG = common.config_flag(str(pathlib.Path(__file__).parent / "configs" / "copy_distance.py"))
_WORKDIR = flags.DEFINE_string("workdir", "runs/copy_distance", "Where the run's files go.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir.")
_RESUME = flags.DEFINE_bool("resume", False, "Continue the run in --workdir from its checkpoints (same config).")


def main(argv):
    del argv  # common.parse_flags has refused stray arguments
    common.main_guard(lambda: copy_distance.run(_CONFIG.value, _WORKDIR.value, _OVERWRITE.value, _RESUME.value))


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
