"""streaming: per-token latency and state bytes against context position.

Run:      python -m experiments.streaming --workdir runs/streaming
Takes:    about 1.5 minutes on a 2-core CPU (naive re-encoding up to 8192 dominates).
Expect:   the LSTM's step time and bytes (512) flat in position; the sliding-window Transformer
          flat too once its window fills; the KV cache preallocated to 16384 slots flat but several times
          the LSTM at every position (one compiled step attends over every slot); the KV cache sized to the
          context (kv_bucket) growing ~linearly; naive re-encoding growing ~quadratically (seconds per
          token at 8192). Sequences too long for attention: experiments/long_sequence.py.

Modes (--config.modes, any subset): state (the RNN, --config.rnn), window (ring buffer of
--config.window slots), kv_cache (one cache of max_position slots; the cache is *jumped* to each
position with random keys, since latency does not depend on their values), kv_bucket (cache sized to
the next power of two >= position; one compile per size), naive (full forward on [1, position]; a
compile per length, timed apart and excluded; only up to --config.naive_max_position).

Overrides:
  --config.max_position=65536 --config.grid_factor=4      the position grid (1, f, f^2, ..., max)
  --config.repeats=500                 timed steps per position (p99 needs >= 100; naive uses naive_repeats)
  --config.rnn=gru --config.model.lstm.hidden_size=256     the recurrent model and its settings
  --config.model.transformer.d_model=128 --config.model.transformer.num_layers=2
"""

import ml_collections

from rvt.studies import common


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.modes = "state,window,kv_cache,kv_bucket,naive"
    config.rnn = "lstm"
    config.model = common.model_configs(["rnn", "lstm", "gru", "transformer"])
    config.vocab_size = 10
    config.max_position = 16384
    config.grid_factor = 2
    config.window = 256
    config.repeats = 200
    config.naive_max_position = 8192
    config.naive_repeats = 3
    config.seed = 0
    return config
