"""online: learn from an endless stream whose rule drifts; RNN with carried state vs windowed Transformer.

Run:      python -m experiments.online --workdir runs/online
Takes:    about 1-2 minutes on a 2-core CPU (2 models x 1500 segments of 8 x 32 tokens).
Expect:   the LSTM learns every regime (rule) in turn; the Transformer learns the lag it meets first and
          re-learns that lag under new permutations, but not the other lag (recovery.csv, summary.csv).
          The LSTM keeps 512 bytes per stream between segments and spends a fixed number of FLOPs per
          token; the Transformer keeps its window of tokens and re-encodes all `window` of them for every
          `segment_length` new ones. README: the table this default produced.

The stream (rvt/tasks/stream.py): uniform symbols from an alphabet of 8; the target at position t is
perm(x[t - lag]); every `segments_per_rule` segments the rule changes: the lag cycles through `lags`
and perm is redrawn. Each segment is scored before the model trains on it (prequential), once.

Overrides:
  --config.models=gru,transformer          any registered models (recurrent ones learn by truncated BPTT)
  --config.stream.segment_length=64 --config.stream.segments_per_rule=500 --config.stream.lags="(2,5,8)"
  --config.stream.permute=False --config.stream.alphabet=16
  --config.num_segments=3000 --config.num_streams=16 --config.window=128 --config.learning_rate=1e-3
  --config.model.lstm.hidden_size=128 --config.recovery_fraction=0.8 --config.recovery_smooth=20
  --config.seeds=5 --config.seed=10        five seeds, 10..14: each its own init and its own stream
  --config.on_change=none,reset_optimizer,reinit_qkv --config.models=transformer
                                           plasticity: at every rule change reset Adam's moments, or
                                           re-initialise only the attention's query/key/value weights
                                           (rows labelled transformer+<intervention>; no checkpoints)
"""

import ml_collections

from rvt.studies import common


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.models = "lstm,transformer"
    config.model = common.model_configs()
    config.stream = ml_collections.ConfigDict(
        dict(alphabet=8, segment_length=32, segments_per_rule=250, lags=(3, 6), permute=True)
    )
    config.num_segments = 1500
    config.num_streams = 8
    config.window = 64  # Transformer: tokens re-encoded per segment (the segment and those before it)
    config.learning_rate = 3e-3
    config.grad_clip = 1.0
    config.recovery_fraction = 0.9
    config.recovery_smooth = 10
    config.update(common.seed_settings(seeds=2))
    config.on_change = "none"  # at each rule change: none, reset_optimizer, reinit_qkv (a list runs each)
    config.checkpoint_every = 500  # segments between checkpoints (0: none); a rerun continues from the last
    return config
