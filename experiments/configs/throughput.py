"""throughput: time of one loss (fwd) and one gradient (fwd_bwd) against sequence length T.

Run:      python -m experiments.throughput --workdir runs/throughput
Takes:    about 3-4 minutes on a 2-core CPU (5 models x up to 7 lengths x 2 phases, each compiled once;
          compilation is about half of it).
Expect:   on a CPU every model's time grows with T: the tanh RNN, LSTM and GRU close to linearly
          (exponent ~1 over T = 64..4096: T sequential steps), the Transformer faster than linearly
          (T^2 attention; exponent ~1.2-1.6 over T = 64..1024 at this width). The lesson's "a 512-token
          sequence is nearly as fast as 1 token" needs parallel hardware: on a CPU, ratio_to_T1 of the
          Transformer is in the hundreds at T = 1024. FLOP/s stay a few percent of the matmul peak for the
          recurrent models (small [B, H] x [H, G*H] matmuls, one per step) and rise with T for the
          Transformer. exponents.csv and the printed table give the fitted exponents (README: measured values).

Models are the parameter-matched presets of rvt.models.PRESETS (~30-35K parameters at vocab 10) at batch
8; ``transformer`` uses the vmapped per-head attention, ``transformer_fused`` is the same model with
``attention='fused'`` (jax.nn.dot_product_attention; the ``attention`` column says which). On a CPU the
Transformer is capped at T = 1024 (``max_length``): at 4096 its gradient takes tens of seconds per call.

GPU (settings for one H100-class device; about 5 minutes):
  --config.lengths="(1,4,16,64,256,512,1024,2048,4096,8192,16384)"
  --config.max_length.transformer=8192 --config.max_length.transformer_fused=16384
  --config.peak_size=8192 --config.repeats=20 --config.min_time_s=0.5
  (float32 matmuls use the backend's default precision -- TF32 on recent NVIDIA GPUs -- for the peak and
  the models alike; the vmapped attention at B=8, T=16384 would need 2 x 8 x 2 x 16384^2 x 4 B = 34 GB of
  score matrices, hence its lower cap.)

Overrides:
  --config.models=lstm,transformer          which models (rnn, lstm, gru, transformer, transformer_fused)
  --config.lengths="(16,64,256)"            the grid of T (positive integers; "16,64,256" works too)
  --config.max_length.transformer=0         per-model cap on T; 0 = the whole grid
  --config.batch_size=32 --config.vocab_size=10
  --config.model.lstm.hidden_size=256 --config.model.transformer.d_model=128   (both transformers)
  --config.repeats=5 --config.min_time_s=0.2   timed runs after the compiling one (median reported)
  --config.peak_size=1024                   side of the square float32 matmul that measures the peak
"""

import ml_collections

from rvt.studies import common
from rvt.studies.throughput import BASE_MODELS


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.models = "rnn,lstm,gru,transformer,transformer_fused"
    config.model = common.model_configs(BASE_MODELS)
    config.lengths = (1, 4, 16, 64, 256, 1024, 4096)
    config.max_length = ml_collections.ConfigDict(dict(rnn=0, lstm=0, gru=0, transformer=1024, transformer_fused=1024))
    config.batch_size = 8
    config.vocab_size = 10
    config.repeats = 5
    config.min_time_s = 0.2
    config.peak_size = 1024
    config.seed = 0
    return config
