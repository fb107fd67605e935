"""copy_distance: accuracy against dependency distance for a tanh RNN, an LSTM, a GRU and a Transformer.

Run:      python -m experiments.copy_distance --workdir runs/copy_distance
Takes:    about 2 minutes on a 2-core CPU (four models x 3 seeds, 800 steps each: 1 min 57 s in this
          wave's run; tested to distance 400, 2 min 56 s; the README's wall-time table has the times).
Expect:   the tanh RNN falling off with distance and staying well above chance (1/8) at the longest; the
          LSTM and the GRU close to 1.00 at every distance, the LSTM a little below at the longest; the
          Transformer at 1.00 everywhere. At this budget the gated cells' limit barely shows (a dip of the
          LSTM at the longest distances); --config.eval_max_distance=400 asks how each extrapolates
          beyond the trained distances. README: the table, generated from a run by scripts/readme_tables.py.

The task is variable-delay copy (Arjovsky et al. 2016's copy task with a delay drawn per example): two
symbols of 8 at positions 0 and 1, random distractor symbols after them, and a recall cue for each symbol
D positions later, D drawn log-uniformly from [2, 100] (equal mass per octave), so one run measures every
distance. Why these choices: with blanks in the gap, or with a single symbol, every model -- the tanh RNN
included -- learns a stable latch on the short examples that generalises to D = 200; with uniform D, the
recurrent models see too few short examples to learn anything in 800 steps. Distances to 100, not 200:
three seeds of four models then fit the ~4-minute CPU budget (--config.tasks.variable_copy.max_distance=200
doubles the time). The four models are the parameter-matched presets of
rvt.models.PRESETS (~30-35K parameters each; the run logs the counts).

Overrides (any setting of any registered task or model can be set the same way):
  --config.models=lstm,transformer          which models
  --config.task=associative_recall          which task; its sizes under --config.tasks.<task>.*
  --config.tasks.variable_copy.max_distance=400 --config.tasks.variable_copy.num_symbols=2
  --config.tasks.variable_copy.vocab_size=20 --config.tasks.variable_copy.length=500
  --config.model.lstm.hidden_size=128 --config.model.transformer.positional=rope
  --config.train.steps=2000 --config.train.batch_size=64 --config.train.learning_rate=1e-3
  --config.train.checkpoint_every=500      checkpoint each model's TrainState (0: never); after an
                                           interruption (Ctrl-C, SIGKILL, preemption), rerun the same command
  --config.seeds=5 --config.seed=10        five seeds, 10..14 (or a list: --config.seeds=0,3,7); results.csv
                                           has a row per seed, the figure the mean and a 95% band
  --config.seed_strategy=vmap              all seeds in one vmapped program (auto: vmap on GPU/TPU, loop on CPU)
  --config.eval_max_distance=400           extrapolation: train on distances up to max_distance, evaluate up
                                           to 400 (results.csv: train_max_distance, in_distribution; the
                                           figure shades the trained range)
"""

import ml_collections

from rvt.studies import common


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.models = "rnn,lstm,gru,transformer"
    config.seed = 0  # the first seed
    config.seeds = 3  # how many seeds (seed, seed + 1, ...), or a list: --config.seeds=0,4,7
    config.seed_strategy = "auto"  # vmap (one program), loop (one after another), auto (vmap off CPU)
    config.eval_max_distance = 0  # evaluate on distances up to this (0: the trained range); beyond it: extrapolation
    config.task = "variable_copy"
    config.tasks = common.task_configs()
    config.tasks.variable_copy.update(
        min_distance=2, max_distance=100, num_symbols=2, vocab_size=11, distractors=True, sampling="log_uniform"
    )
    config.model = common.model_configs()
    config.train = common.train_settings(
        steps=800,
        log_every=100,
        checkpoint_every=200,  # orbax checkpoints under <workdir>/checkpoints/<model>; 0: none
    )
    return config
