"""Published tables reproduced in their own layout, ours beside the paper's numbers.

    python -m experiments.benchmarks --config.table=selective_copy [--workdir runs/benchmarks_selective_copy]

Tables: selective_copy, mqar, induction_heads, chomsky. The config file (experiments/configs/benchmarks.py)
documents each table's CPU default, its paper-scale settings and what the paper reports.
"""

from experiments import _app
from rvt.studies import benchmarks

if __name__ == "__main__":
    _app.main(benchmarks)
