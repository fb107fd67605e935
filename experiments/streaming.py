"""Per-token latency and state bytes against context position: RNN state, KV cache, window, naive re-encoding.

    python -m experiments.streaming [--workdir runs/streaming] [--overwrite] [--config.X=...]

The config file (experiments/configs/streaming.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.streaming.
"""

import pathlib

from absl import app, flags

from rvt.studies import common, streaming

_CONFIG = common.config_flag(str(pathlib.Path(__file__).parent / "configs" / "streaming.py"))
_WORKDIR = flags.DEFINE_string("workdir", "runs/streaming", "Where the run's files go.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir.")


def main(argv):
    del argv  # common.parse_flags has refused stray arguments
    common.main_guard(lambda: streaming.run(_CONFIG.value, _WORKDIR.value, _OVERWRITE.value))


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
