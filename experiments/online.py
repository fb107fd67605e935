"""Online learning on a drifting stream: an RNN with carried state vs a Transformer on a sliding window.

    python -m experiments.online [--workdir runs/online] [--overwrite] [--config.X=...]

The config file (experiments/configs/online.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.online.
"""

import pathlib

from absl import app, flags

from rvt.studies import common, online

_CONFIG = common.config_flag(str(pathlib.Path(__file__).parent / "configs" / "online.py"))
_WORKDIR = flags.DEFINE_string("workdir", "runs/online", "Where the run's files go.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir.")


def main(argv):
    del argv  # common.parse_flags has refused stray arguments
    common.main_guard(lambda: online.run(_CONFIG.value, _WORKDIR.value, _OVERWRITE.value))


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
