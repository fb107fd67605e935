"""edge: on-device footprint -- parameters, bytes at fp32/bf16/int8, FLOPs and latency per generated token.

Run:      python -m experiments.edge --workdir runs/edge
Takes:    under a minute on a 2-core CPU (six models, one compile and 300 timed steps each).
Expect:   the lesson's "2-layer LSTM with 256 hidden units" (lstm_2x256) has ~1.18M parameters at a
          byte-level vocabulary of 256 (its two LSTM layers alone 1.05M: the lesson's "~500K" is one
          layer), 4.7 MB at fp32 / 1.2 MB at int8, ~2.4 MFLOPs per token and a few hundred us per step
          on this CPU; its state is 4 kB at any context, while the similar-size Transformer's KV cache
          at 1024 tokens is 2 MB. README: measured numbers.

Vocabulary: 256 (bytes / characters, what an on-device keyboard or character model reads); the
recurrent models' embedding width is their hidden size (RecurrentConfig.embed_dim = 0). The presets
(rnn, lstm, gru, transformer) are rvt.models.PRESETS, parameter-matched at vocab 10, so at vocab 256
their embedding and output layers dominate.

Overrides:
  --config.models=lstm_2x256,transformer_2x128       which entries (registered models or variants)
  --config.variants.lstm_2x256.hidden_size=512        a variant's settings; add one with a new name:
        --config.variants='{"gru_2x256": {"model": "gru", "hidden_size": 256, "num_layers": 2}}'
  --config.vocab_size=64 --config.context=4096 --config.repeats=1000 --config.lesson_model=''
"""

import ml_collections

from rvt.studies import common


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.models = "rnn,lstm,gru,transformer,lstm_2x256,transformer_2x128"
    config.model = common.model_configs()
    config.variants = ml_collections.ConfigDict(
        dict(
            lstm_2x256=dict(model="lstm", hidden_size=256, num_layers=2),  # the lesson's edge model
            transformer_2x128=dict(model="transformer", d_model=128, num_layers=2, num_heads=4),  # similar size
        )
    )
    config.lesson_model = "lstm_2x256"  # compared with "~500K parameters, 1 ms per step on a phone CPU"
    config.vocab_size = 256
    config.context = 1024  # tokens of context for the Transformer's KV cache (and its per-step cost)
    config.repeats = 300
    config.seed = 0
    return config
