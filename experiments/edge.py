"""Edge footprint of every model: parameters, weight bytes, FLOPs per token, batch-1 step latency, state bytes.

    python -m experiments.edge [--workdir runs/edge] [--overwrite] [--config.X=...]

The config file (experiments/configs/edge.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.edge.
"""

from experiments import _app
from rvt.studies import edge

if __name__ == "__main__":
    _app.main(edge)
