"""Copy a source through a final-state RNN encoder-decoder, one with attention, and a transformer
encoder-decoder; plot accuracy against source length.

    python -m experiments.bottleneck [--workdir runs/bottleneck] [--overwrite] [--config.X=...]

The config file (experiments/configs/bottleneck.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.bottleneck.
"""

from experiments import _app
from rvt.studies import bottleneck

if __name__ == "__main__":
    _app.main(bottleneck)
