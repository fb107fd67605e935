"""benchmarks: published tables reproduced, ours beside the paper's numbers (--config.table=...).

Run:      python -m experiments.benchmarks --config.table=selective_copy --workdir runs/bench_selective_copy
          (likewise mqar, induction_heads, chomsky; each writes results.csv and benchmark.png)
Takes:    CPU defaults sized to a few minutes each on 2 cores (2 seeds); the tasks are far smaller and the
          training far shorter than the papers', so the CPU numbers test the pipeline and show the
          direction of each result, not the published values. The paper-scale settings are below.
Columns:  benchmark,model,setting,test,accuracy,seed,paper,paper_model,paper_note (+ steps, params,
          chance). `paper` is in percent, as published, `accuracy` a fraction.

selective_copy (Gu and Dao 2023, Table 1; Feng et al. 2024): data tokens scattered among noise, recalled in
  order after markers; accuracy on the recalled tokens, models at 1, 2, 3 layers (`setting` layers=N).
  Paper scale: --config.selective_copy.task.context=4096 --config.selective_copy.task.num_data=16
  --config.selective_copy.task.alphabet=14 --config.selective_copy.layers=1,2,3 --config.model.s6.d_model=64
  --config.train.steps=400000 --config.train.learning_rate=1e-4 --config.train.batch_size=64
  --config.train.schedule=constant
mqar (Arora et al. 2023, Zoology, Figure 2): accuracy against width for (T, kv pairs); the paper gives no
  per-point numbers (attention ~100% everywhere; recurrent models need width growing with T).
  Paper scale: --config.mqar.lengths=64,128,256,512 --config.mqar.pairs=4,8,16,64
  --config.mqar.widths=64,128,256,512 --config.mqar.task.num_keys=4096 --config.mqar.task.num_values=4096
induction_heads (Gu and Dao 2023, Table 2): train at one length, test at x2, x4, ...; `paper` beside the
  same ratio (their training length is 256: x2 = 2^9). Paper scale: --config.induction_heads.task.length=256
  --config.induction_heads.test_ratios=1,2,4,8,16,64 --config.train.batch_size=8 --config.train.steps=100000
chomsky (Deletang et al. 2023, Table 2): train on lengths 1..train_max_length, score on longer strings (test
  `ood`: train_max_length+1..test_max_length; `iid`: the training range). The paper trains 1M steps on
  1..40, tests 41..500 and reports the max over 10 seeds x 3 learning rates (results.csv: every seed;
  the figure: mean and max). Paper scale: --config.chomsky.train_max_length=40
  --config.chomsky.test_max_length=500 --config.train.steps=1000000 --config.train.batch_size=128
  --config.seeds=10
"""

import ml_collections

from rvt.studies import common
from rvt.tasks.registry import task_fields


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.table = "selective_copy"  # selective_copy, mqar, induction_heads or chomsky
    config.update(common.seed_settings(seeds=3))
    config.selective_copy = ml_collections.ConfigDict(
        dict(
            models="s6,mingru,minlstm",
            layers="1,2",
            task=dict(task_fields("selective_copy"), context=32, num_data=4, alphabet=8),
            # Mamba Table 1: 2-layer models of width 64 (the layers column sets the depth); width 32 here,
            # which halves S6's step time on 2 CPU cores
            model=dict(s6=dict(d_model=32), mingru=dict(d_model=32), minlstm=dict(d_model=32)),
            train=dict(steps=2000, learning_rate=3e-3, log_every=250, checkpoint_every=500),
        )
    )
    config.mqar = ml_collections.ConfigDict(
        dict(
            models="transformer,mingru,lstm",
            lengths="64",
            pairs="4",
            widths="16,32,64",
            task={k: v for k, v in task_fields("associative_recall").items() if k not in ("length", "num_pairs")},
            # Zoology: 2-layer models (attention: 1 head); the widths column sets d_model / hidden_size
            model=dict(
                transformer=dict(num_layers=2, num_heads=1, positional="learned"),
                mingru=dict(num_layers=2),
                s6=dict(num_layers=2),
                lstm=dict(num_layers=2),
            ),
            train=dict(steps=3000, learning_rate=3e-3, log_every=250, checkpoint_every=1000),
        )
    )
    config.mqar.task.update(num_keys=32, num_values=32)
    config.induction_heads = ml_collections.ConfigDict(
        dict(
            models="transformer_sinusoidal,transformer_rope,s6,lstm",
            test_ratios="1,2,4,8",  # 1: the trained length itself
            task=dict(task_fields("induction_heads"), length=32, alphabet=14),
            # Mamba Table 2: 2-layer models, MHA with 8 heads of width 128, Mamba width 64 (here halved)
            model=dict(
                transformer=dict(num_layers=2, d_model=64, num_heads=4),
                s6=dict(num_layers=2, d_model=32),
                lstm=dict(num_layers=2, hidden_size=64),
            ),
            train=dict(steps=2000, learning_rate=1e-3, log_every=250, checkpoint_every=500),
        )
    )
    config.chomsky = ml_collections.ConfigDict(
        dict(
            models="rnn,lstm,transformer",  # the paper's three
            rules="parity,modular_arithmetic",  # the other four: --config.chomsky.rules=even_pairs,...
            train_max_length=10,  # the paper: 40
            test_max_length=20,  # the paper: 500
            # Deletang et al.: RNN and LSTM 1 layer of 256; Transformer 5 blocks of width 64, 8 heads
            model=dict(
                rnn=dict(num_layers=1, hidden_size=128),
                lstm=dict(num_layers=1, hidden_size=64),
                transformer=dict(num_layers=5, d_model=64, num_heads=8),
            ),
            train=dict(steps=5000, learning_rate=3e-3, log_every=500, checkpoint_every=1000),
        )
    )
    config.model = common.model_configs()
    config.train = common.train_settings(steps=400, log_every=100, checkpoint_every=200, eval_batches=2)
    return config
