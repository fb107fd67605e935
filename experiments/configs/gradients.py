"""gradients: gradient norm against distance (init vs trained), the tanh RNN's spectrum, LSTM forget gates.

Run:      python -m experiments.gradients --workdir runs/gradients
Takes:    2 min 31 s on an idle 2-core CPU (4 models x 3 seeds x 800 steps, probes, the bias sweep).
Task:     the main experiment's (variable-delay copy, delays 2-100 log-uniform, distractors), which the
          gated cells learn at this budget (copy_distance: LSTM and GRU at 0.99-1.00 after 800 steps),
          unlike the copying memory problem at delay 100, on which no recurrent model leaves the
          memoryless baseline within a CPU budget (the previous default's 300 steps left every recurrent
          model at chance on the copied symbols, so its "trained" curves were those of models that had
          learnt nothing). The probe batch has every delay at its longest (100): the last position
          recalls the last symbol from 100 back.
Expect:   trained LSTM and GRU at >= 0.99 on the recalls (summary.csv eval_dependent_accuracy), the
          tanh RNN ~0.74, the Transformer 1.00. At init every recurrent gradient falls exponentially
          with distance (tanh RNN -0.058 per step, GRU -0.30, LSTM -0.038), the Transformer's is flat;
          trained, the gated cells and the Transformer carry a spike at the dependency's source
          (k = 100) above a floor, the tanh RNN's gradient there stays ~3 orders below its k = 0 value.
          LSTM forget-gate products equal the autodiff cell-path gradient to float precision.

The probe is the norm of d(loss at position T-1)/d(embedding at T-1-k), k = 0..T-1, mean over
probe.batch_size examples. The forget-gate sweep runs the configured LSTM at init with each forget_bias on
uniform random tokens of length forget.length; the trained LSTM's products come from the probe batch.
`--config.task=copy_memory` probes Arjovsky et al.'s problem (delay 100: T = 120) instead.

Overrides:
  --config.models=rnn,lstm                 which models (any registered; presets ~33K params)
  --config.tasks.variable_copy.max_distance=200   longer dependencies (probed at 200)
  --config.task=copy_memory                train and probe on another task (--config.tasks.<task>.*)
  --config.train.steps=2000                train longer (0 is not allowed; use few steps for "init only")
  --config.forget.biases=0,1,2,3,5,8 --config.forget.length=1000 --config.forget.batch_size=16
  --config.probe.batch_size=64 --config.model.rnn.hidden_size=256
  --config.seeds=5 --config.seed=10        five seeds (or a list: --config.seeds=0,3,7)
GPU:      --config.tasks.variable_copy.max_distance=500 --config.train.steps=3000 --config.forget.length=2000
"""

import ml_collections

from rvt.studies import common


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.models = "rnn,lstm,gru,transformer"
    config.update(common.seed_settings(seeds=3))
    config.task = "variable_copy"  # the main experiment's task, which the gated cells learn at this budget
    config.tasks = common.task_configs()
    config.tasks.variable_copy.update(
        min_distance=2, max_distance=100, num_symbols=2, vocab_size=11, distractors=True, sampling="log_uniform"
    )
    config.tasks.copy_memory.update(delay=100, num_symbols=10, alphabet=8)
    config.model = common.model_configs()
    config.train = common.train_settings(
        steps=800,
        eval_batches=2,
        log_every=100,
        checkpoint_every=200,
    )
    config.probe = ml_collections.ConfigDict(dict(batch_size=32))
    config.forget = ml_collections.ConfigDict(dict(biases="0,1,2,3,5", length=600, batch_size=8))
    return config
