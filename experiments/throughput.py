"""Time, FLOPs and utilisation of each model's loss and gradient against sequence length.

    python -m experiments.throughput [--workdir runs/throughput] [--overwrite] [--config.X=...]

The config file (experiments/configs/throughput.py) documents every override, the GPU settings and the
expected result. This file is intentionally kept short: the work is in rvt.studies.throughput.
"""

from experiments import _app
from rvt.studies import throughput

if __name__ == "__main__":
    _app.main(throughput)
