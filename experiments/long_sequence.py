"""What each model needs at one very long sequence, and what it takes where that fits.

    python -m experiments.long_sequence [--workdir runs/long_sequence] [--overwrite] [--config.X=...]

The config file (experiments/configs/long_sequence.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.long_sequence.
"""

from experiments import _app
from rvt.studies import long_sequence

if __name__ == "__main__":
    _app.main(long_sequence)
