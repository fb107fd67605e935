"""Edge footprint of every model: parameters, weight bytes, FLOPs per token, batch-1 step latency, state bytes.

    python -m experiments.edge [--workdir runs/edge] [--overwrite] [--config.X=...]

The config file (experiments/configs/edge.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.edge.
"""

import pathlib

from absl import app, flags

from rvt.studies import common, edge

_CONFIG = common.config_flag(str(pathlib.Path(__file__).parent / "configs" / "edge.py"))
_WORKDIR = flags.DEFINE_string("workdir", "runs/edge", "Where the run's files go.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir.")


def main(argv):
    del argv  # common.parse_flags has refused stray arguments
    common.main_guard(lambda: edge.run(_CONFIG.value, _WORKDIR.value, _OVERWRITE.value))


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
