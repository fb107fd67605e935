"""Per-token latency and state bytes against context position: RNN state, KV cache, window, naive re-encoding.

    python -m experiments.streaming [--workdir runs/streaming] [--overwrite] [--config.X=...]

The config file (experiments/configs/streaming.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.streaming.
"""

from experiments import _app
from rvt.studies import streaming

if __name__ == "__main__":
    _app.main(streaming)
