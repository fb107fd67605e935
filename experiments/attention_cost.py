"""Compiled FLOPs and memory of attention, a Transformer block and an LSTM layer against sequence length.

    python -m experiments.attention_cost [--workdir runs/attention_cost] [--overwrite] [--config.X=...]

The config file (experiments/configs/attention_cost.py) documents every override, the GPU settings and the
expected result. This file is intentionally kept short: the work is in rvt.studies.attention_cost.
"""

import pathlib

from absl import app, flags

from rvt.studies import attention_cost, common

_CONFIG = common.config_flag(str(pathlib.Path(__file__).parent / "configs" / "attention_cost.py"))
_WORKDIR = flags.DEFINE_string("workdir", "runs/attention_cost", "Where the run's files go.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir.")


def main(argv):
    del argv  # common.parse_flags has refused stray arguments
    common.main_guard(lambda: attention_cost.run(_CONFIG.value, _WORKDIR.value, _OVERWRITE.value))


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
