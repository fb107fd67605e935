"""Sequences too long for attention: what each model needs at one very long T, and what it takes.

For every model of ``config.models`` at T = ``length``, the bytes each computation needs come from XLA's
memory analysis of the compiled function -- nothing is allocated to find out -- and only where that fits
the memory budget is the same executable run and timed:

* ``infer``: the full-sequence forward at batch ``batch_size``;
* ``train``: one train step on copy_memory at that length (full backpropagation through time for a
  recurrence), the median of ``train_steps`` steps;
* ``step``: one step-mode token at position T (a KV cache of T slots, jumped there with random keys and
  values, since a step's cost does not depend on them; a fixed-size state costs the same anywhere).

Writes config.json, metrics.jsonl, results.csv (one row per model and mode) and long_sequence.png.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from rvt import io, models, profiling, train
from rvt.errors import check, check_positive_int
from rvt.models import stepping
from rvt.studies import common
from rvt.tasks import make_task

EXPERIMENT = "long_sequence"
MODES = ("infer", "train", "step")
RESULT_COLUMNS = ("model", "mode", "T", "required_bytes", "budget_bytes", "fits", "ran", "measured_s", "note")


def resolve(config: ml_collections.ConfigDict):
    """Validate every setting before anything is written: (task, [(name, module)], modes, budget)."""
    for field in ("length", "batch_size", "repeats"):
        check_positive_int(config[field], field)
    check(config.length > 20, "length", f"must exceed 20 (copy_memory's 2 x 10 symbols), got {config.length}")
    check(
        isinstance(config.vocab_size, int) and config.vocab_size >= 4,
        "vocab_size",
        f"must be an integer >= 4 (copy_memory needs 2 symbols, blank, marker), got {config.vocab_size!r}",
    )
    check(
        isinstance(config.train_steps, int) and config.train_steps >= 0,
        "train_steps",
        f"must be an integer >= 0, got {config.train_steps!r}",
    )
    check(
        isinstance(config.memory_budget_bytes, int) and config.memory_budget_bytes >= 0,
        "memory_budget_bytes",
        f"must be an integer >= 0 (0: this machine's memory), got {config.memory_budget_bytes!r}",
    )
    modes = common.parse_choices(config.modes, "modes", MODES)
    task = make_task("copy_memory", delay=config.length - 20, num_symbols=10, alphabet=config.vocab_size - 2)
    plans = []
    for name in common.parse_names(config.models, "models"):
        settings = common.model_settings(config, name)
        module, _ = models.make_model(name, settings, vocab_size=task.vocab_size, length=task.length)
        plans.append((name, module))
    budget = config.memory_budget_bytes or profiling.memory_budget()[0]
    return task, plans, modes, budget


def measure_rows(name, module, params, task, modes, budget, config, key) -> list[dict]:
    length, batch_size = task.length, config.batch_size
    rows = []
    if "infer" in modes:
        tokens = task.sample(key, batch_size).inputs
        forward = jax.jit(lambda p, x: module.apply({"params": p}, x)).lower(params, tokens).compile()
        measure = lambda: profiling.time_fn(forward, params, tokens, repeats=1, jit=False).median_s
        note = f"forward on [{batch_size}, {length}]"
        rows.append(_row(name, "infer", length, profiling.analyse(forward).resident_bytes, budget, measure, note))
    if "train" in modes:
        settings = train.TrainConfig(steps=max(config.train_steps, 1), batch_size=batch_size, warmup_steps=0)
        state = train.create_state(module, jax.tree.map(jnp.copy, params), settings)  # the step donates it
        trainer = train.make_train_step(train.task_sampler(task, batch_size), key).lower(state).compile()
        measure = (lambda: _time_train(trainer, state, key, config.train_steps)) if config.train_steps else None
        note = f"copy_memory train step, batch {batch_size}, median of {config.train_steps}"
        rows.append(_row(name, "train", length, profiling.analyse(trainer).resident_bytes, budget, measure, note))
    if "step" in modes:
        state = stepping.jump(models.init_state(module, params), length, key)
        step = stepping.compile_step(module, params, state)[0]

        def measure():
            return float(np.median(stepping.time_at(step, params, state, length, config.repeats)[0]))

        note = f"one step at position {length}"
        rows.append(_row(name, "step", length, profiling.analyse(step).resident_bytes, budget, measure, note))
    return rows


def _row(name, mode, length, required, budget, measure, note) -> dict:
    fits = required <= budget
    measured = measure() if fits and measure is not None else None
    logging.info(
        "T=%d %-12s %-6s needs %.3g GB of %.3g GB: %s",
        length,
        name,
        mode,
        required / 1e9,
        budget / 1e9,
        f"ran, {measured:.3g} s" if measured is not None else "not run",
    )
    return dict(
        model=name,
        mode=mode,
        T=length,
        required_bytes=required,
        budget_bytes=budget,
        fits=fits,
        ran=measured is not None,
        measured_s="" if measured is None else measured,
        note=note,
    )


def _time_train(trainer, state, key, steps: int) -> float:
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        state, step_metrics = trainer(state, key)
        jax.block_until_ready(step_metrics)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    task, plans, modes, budget = resolve(config)
    resolved = dict(length=task.length, memory_budget_bytes=budget, models={n: type(m).__name__ for n, m in plans})
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)
    key = jax.random.key(config.seed)
    rows = []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for name, module in plans:
            params = models.init_params(module, key, 1)
            new = measure_rows(name, module, params, task, modes, budget, config, key)
            for row in new:
                writer.write(dict(kind="long", **row))
            rows += new
            io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)
    return common.finish_run(path)
