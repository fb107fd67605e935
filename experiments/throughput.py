"""Time, FLOPs and utilisation of each model's loss and gradient against sequence length.

    python -m experiments.throughput [--workdir runs/throughput] [--overwrite] [--config.X=...]

The config file (experiments/configs/throughput.py) documents every override, the GPU settings and the
expected result. This file is intentionally kept short: the work is in rvt.studies.throughput.
"""

import pathlib

from absl import app, flags
from ml_collections import config_flags

from rvt.studies import common, throughput

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "throughput.py"), "Experiment config."
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/throughput", "Where the run's files go.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    common.main_guard(lambda: throughput.run(_CONFIG.value, _WORKDIR.value, _OVERWRITE.value))


if __name__ == "__main__":
    app.run(main)
