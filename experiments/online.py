"""Online learning on a drifting stream: an RNN with carried state vs a Transformer on a sliding window.

    python -m experiments.online [--workdir runs/online] [--overwrite] [--config.X=...]

The config file (experiments/configs/online.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.online.
"""

from experiments import _app
from rvt.studies import online

if __name__ == "__main__":
    _app.main(online)
