"""long_sequence: one very long sequence (T = 50,000): what each model needs, and what it takes.

Run:      python -m experiments.long_sequence --workdir runs/long_sequence
Takes:    about 40 seconds on a 2-core CPU (the LSTM's forward and three train steps at T = 50,000).
Expect:   the LSTM infers and trains at T = 50,000 in well under 1 GB; full attention needs tens of GB to
          infer and to train (XLA's memory analysis of the compiled function; never allocated), more than
          this machine has, so it is not run; one Transformer step at position 50,000 against a KV cache
          of 50,000 slots fits and is timed.

Overrides:
  --config.models=lstm,lru,transformer      any registered models (their settings: --config.model.<name>.*)
  --config.length=100000 --config.batch_size=1 --config.train_steps=0
  --config.memory_budget_bytes=8000000000   the budget a computation must fit to be run (0: this machine's)
  --config.modes=infer,step                 infer (forward), train (copy_memory step), step (one token at T)
"""

import ml_collections

from rvt.studies import common


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.models = "lstm,transformer"
    config.model = common.model_configs()
    config.modes = "infer,train,step"
    config.length = 50_000
    config.batch_size = 1
    config.train_steps = 3
    config.repeats = 20
    config.vocab_size = 10
    config.memory_budget_bytes = 0  # 0: this machine's physical memory (or the accelerator's)
    config.seed = 0
    return config
