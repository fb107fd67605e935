"""Copy-memory delay sweep: final loss against delay beside the memoryless baseline 10 ln 8 / (T + 20).

    python -m experiments.copy_memory [--workdir runs/copy_memory] [--overwrite] [--config.X=...]

The config file (experiments/configs/copy_memory.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.copy_memory.
"""

from experiments import _app
from rvt.studies import copy_memory

if __name__ == "__main__":
    _app.main(copy_memory)
