"""attention_cost: compiled FLOPs and memory of attention vs an LSTM layer against T, and where each stops fitting.

Run:      python -m experiments.attention_cost --workdir runs/attention_cost
Takes:    about 2 minutes on a 2-core CPU (3 layers x 2 phases x 16 lengths compiled on shapes only;
          the layers are run and timed only up to T = 2048).
Expect:   attention and the Transformer block grow like T^2 in FLOPs and bytes (fitted exponents ~2.0
          over T = 32K..4M), the LSTM layer like T^1. XLA's CPU compiler materialises the score matrices:
          the attention layer's temp bytes are ~2x the T^2 x 4 B x heads score bytes. At 2 x width
          256, 4 heads, batch 1 and this machine's memory (~25 GB) as budget, the attention forward stops
          fitting near T ~ 27K (grid: 16384 fits, 32768 does not), the LSTM's near T ~ 2.4M -- about 100x
          longer. The traced score count per head per layer is 262,144 at T = 512 and 16,777,216 (the
          lesson's "16.8 million") at T = 4096. README: the numbers this default produced.

Layers, all at width 256: ``attention`` = multi-head causal self-attention with its QKV and output
projections (rvt.models.transformer.SelfAttention; ``attention='vmapped'`` or ``'fused'``), ``block`` =
one pre-LN Transformer block (attention + GELU MLP of width mlp_ratio x 256), ``lstm`` = one LSTM layer
(rvt.models.RecurrentLayer over LSTMCell, hidden 256). ``fwd`` is the layer; ``fwd_bwd`` its VJP, the
gradients with respect to parameters and input for a given output cotangent (training memory). Memory is XLA's memory
analysis of the compiled function on ShapeDtypeStructs: nothing of size T is allocated. The budget line
is ``budget_bytes`` (0: the GPU's memory where jax reports it, else this machine's physical memory).

GPU (one H100-class device; about 2 minutes): the defaults use the GPU's memory as budget; add
  --config.measure_max_length=32768 --config.repeats=10 --config.min_time_s=0.2
  (peak_bytes then comes from memory_stats: the process high-water mark, an upper bound per row.)

Overrides:
  --config.lengths="(512,4096,32768)"     the grid of T (positive integers)
  --config.budget_bytes=17179869184       a 16 GiB budget instead of this machine's memory
  --config.layers=attention,lstm --config.phases=fwd
  --config.layers=attention,lstm,s6,mingru  any registered model too: one block of it at the width
  --config.width=512 --config.num_heads=8 --config.mlp_ratio=4 --config.batch_size=8
  --config.attention=fused                jax.nn.dot_product_attention instead of the vmapped heads
  --config.measure_max_length=2048        run and time only up to this T ...
  --config.measure_max_fraction=0.25      ... and only where the compiled total is below this share of the budget
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.layers = "attention,block,lstm"
    config.phases = "fwd,fwd_bwd"
    config.lengths = tuple(128 * 2**k for k in range(16))  # 128 .. 4,194,304
    config.width = 256
    config.num_heads = 4
    config.mlp_ratio = 4
    config.attention = "vmapped"
    config.batch_size = 1
    config.budget_bytes = 0
    config.measure_max_length = 2048
    config.measure_max_fraction = 0.25
    config.repeats = 3
    config.min_time_s = 0.0
    config.seed = 0
    return config
