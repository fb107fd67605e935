"""Gradient norm against distance at init and after training; tanh RNN spectrum; LSTM forget-gate products.

    python -m experiments.gradients [--workdir runs/gradients] [--overwrite] [--config.X=...]

The config file (experiments/configs/gradients.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.gradients.
"""

import pathlib

from absl import app, flags

from rvt.studies import common, gradients

_CONFIG = common.config_flag(str(pathlib.Path(__file__).parent / "configs" / "gradients.py"))
_WORKDIR = flags.DEFINE_string("workdir", "runs/gradients", "Where the run's files go.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir.")


def main(argv):
    del argv  # common.parse_flags has refused stray arguments
    common.main_guard(lambda: gradients.run(_CONFIG.value, _WORKDIR.value, _OVERWRITE.value))


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
