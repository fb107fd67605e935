"""Copy a source through a final-state RNN encoder-decoder, one with attention, and a transformer
encoder-decoder; plot accuracy against source length.

    python -m experiments.bottleneck [--workdir runs/bottleneck] [--overwrite] [--config.X=...]

The config file (experiments/configs/bottleneck.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.bottleneck.
"""

import pathlib

from absl import app, flags

from rvt.studies import bottleneck, common

_CONFIG = common.config_flag(str(pathlib.Path(__file__).parent / "configs" / "bottleneck.py"))
_WORKDIR = flags.DEFINE_string("workdir", "runs/bottleneck", "Where the run's files go.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir.")


def main(argv):
    del argv  # common.parse_flags has refused stray arguments
    common.main_guard(lambda: bottleneck.run(_CONFIG.value, _WORKDIR.value, _OVERWRITE.value))


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
