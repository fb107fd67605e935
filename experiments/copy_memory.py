"""Copy-memory delay sweep: final loss against delay beside the memoryless baseline 10 ln 8 / (T + 20).

    python -m experiments.copy_memory [--workdir runs/copy_memory] [--overwrite] [--config.X=...]

The config file (experiments/configs/copy_memory.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.copy_memory.
"""

import pathlib

from absl import app, flags

from rvt.studies import common, copy_memory

_CONFIG = common.config_flag(str(pathlib.Path(__file__).parent / "configs" / "copy_memory.py"))
_WORKDIR = flags.DEFINE_string("workdir", "runs/copy_memory", "Where the run's files go.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir.")


def main(argv):
    del argv  # common.parse_flags has refused stray arguments
    common.main_guard(lambda: copy_memory.run(_CONFIG.value, _WORKDIR.value, _OVERWRITE.value))


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
