"""Gradient norm against distance at init and after training; tanh RNN spectrum; LSTM forget-gate products.

    python -m experiments.gradients [--workdir runs/gradients] [--overwrite] [--config.X=...]

The config file (experiments/configs/gradients.py) documents every override and the expected result.
This file is intentionally kept short: the work is in rvt.studies.gradients.
"""

from experiments import _app
from rvt.studies import gradients

if __name__ == "__main__":
    _app.main(gradients)
