"""Compiled FLOPs and memory of attention, a Transformer block and an LSTM layer against sequence length.

    python -m experiments.attention_cost [--workdir runs/attention_cost] [--overwrite] [--config.X=...]

The config file (experiments/configs/attention_cost.py) documents every override, the GPU settings and the
expected result. This file is intentionally kept short: the work is in rvt.studies.attention_cost.
"""

from experiments import _app
from rvt.studies import attention_cost

if __name__ == "__main__":
    _app.main(attention_cost)
