"""bottleneck: copy a source of length L through a final-state RNN encoder-decoder, the same with
attention, and a transformer encoder-decoder (the synthetic analogue of Bahdanau et al. 2014, Fig. 2).

Run:      python -m experiments.bottleneck --workdir runs/bottleneck
Takes:    about 3-4 minutes on an idle 2-core CPU (15 runs: 3 models x L = 4..64, 400 steps each;
          about a third of it is XLA compilation, one per model and length). Longer on a busy machine.
Expect:   all three near 100% token accuracy at L = 4; the final-state LSTM (hidden 32) falls towards
          chance (1/8) as L grows, while the attention model and the transformer stay near 100% up to
          L = 64 (README: the table this default produced).

A source of L symbols from an alphabet of 8 carries 3L bits; the final-state decoder sees only the
encoder's final carry (an LSTM: 2 x hidden floats), the attention decoder sees every encoder state.
Accuracy is teacher-forced (the decoder is fed the true previous target), chance is 1/alphabet.
Caveat: each run gets the same step budget, so "collapse" means "not learnable at this size in this
budget"; more steps or a larger hidden size move the final-state curve right (try hidden_sizes=32,128).

Overrides:
  --config.tasks=copy,reverse                reversal too (easier for the final-state model: the last
                                             source symbols, the freshest in the carry, come first)
  --config.src_lens=4,8,16,32,64,128         source lengths;  --config.alphabet=8
  --config.hidden_sizes=32,128               sets hidden_size of the RNN models and d_model of the
                                             transformer (column `hidden`)
  --config.models=final_state,attention      any of final_state, attention, transformer
  --config.model.final_state.cell=gru        (and attention.cell) any registered cell: lstm, gru, rnn
  --config.model.transformer.num_layers=2 --config.model.transformer.num_heads=4
  --config.train.steps=2000 --config.train.batch_size=64 --config.train.learning_rate=3e-3
  --config.seeds=5 --config.seed=10          five seeds, 10..14 (or a list: --config.seeds=0,3,7)
  --config.train.checkpoint_every=100        (0: none); an interrupted run continues when rerun
GPU (one run of each length takes seconds there):
  --config.tasks=copy,reverse --config.src_lens=4,8,16,32,64,128,256 --config.hidden_sizes=32,64,128,256
  --config.train.steps=3000 --config.train.batch_size=128
"""

import ml_collections

from rvt.models.seq2seq import SEQ2SEQ_MODELS, seq2seq_settings
from rvt.studies import common


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.models = "final_state,attention,transformer"
    config.tasks = "copy"
    config.src_lens = "4,8,16,32,64"
    config.hidden_sizes = "32"
    config.alphabet = 8
    config.update(common.seed_settings(seeds=2))
    config.model = ml_collections.ConfigDict({name: seq2seq_settings(name) for name in SEQ2SEQ_MODELS})
    config.train = common.train_settings(
        steps=400,
        learning_rate=1e-2,
        eval_batches=4,
        log_every=100,
        checkpoint_every=200,
    )
    return config
