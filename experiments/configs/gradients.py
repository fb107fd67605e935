"""gradients: gradient norm against distance (init vs trained), the tanh RNN's spectrum, LSTM forget gates.

Run:      python -m experiments.gradients --workdir runs/gradients
Takes:    about 3-4 minutes on an idle 2-core CPU (4 models x 300 steps at T = 120, probes, the bias sweep).
Expect:   at init the tanh RNN and GRU gradients fall exponentially with distance, the slope per step
          below log sigma_max = 0 (orthogonal init) as Pascanu et al. (2013) bound it; the Transformer's is
          flat (attention reaches every position in one step). LSTM forget-gate products equal the
          autodiff cell-path gradient to float precision. After 300 steps the recurrent models have NOT
          learnt the copy (copied-symbol accuracy at chance; summary.csv eval_dependent_accuracy): their
          "trained" curves are those of models that emit blanks. Only the init curves measure the claim.

The task is the copying memory problem (Arjovsky et al. 2016) at delay 100 (T = 120): the
last position's target is the last copied symbol, a real dependency at distance 110. The probe is the
norm of d(loss at position T-1)/d(embedding at T-1-k), k = 0..T-1, mean over probe.batch_size examples.
The forget-gate sweep runs the configured LSTM at init with each forget_bias on uniform random tokens of
length forget.length; the trained LSTM's products come from the probe batch.

Overrides:
  --config.models=rnn,lstm                 which models (any registered; presets ~33K params)
  --config.tasks.copy_memory.delay=200     a longer probe (T = delay + 20)
  --config.task=variable_copy              train and probe on another task (--config.tasks.<task>.*)
  --config.train.steps=2000                train longer (0 is not allowed; use few steps for "init only")
  --config.forget.biases=0,1,2,3,5,8 --config.forget.length=1000 --config.forget.batch_size=16
  --config.probe.batch_size=64 --config.model.rnn.hidden_size=256
  --config.seeds=5 --config.seed=10        five seeds (or a list: --config.seeds=0,3,7)
GPU:      --config.tasks.copy_memory.delay=500 --config.train.steps=3000 --config.forget.length=2000
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
