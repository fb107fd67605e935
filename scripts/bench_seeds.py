"""Several seeds in one vmapped program against one seed at a time: ``python -m scripts.bench_seeds``.

For each preset model on the main experiment's task, in one process with interleaved rounds (drift
cancels) and medians after compilation: the train step of N seeds stacked on a vmapped axis, and N
calls of the single-seed step. Prints ``vmapped / separate`` per model (below 1: vmapping pays) and writes
the rows to ``--out`` (CSV). This is what ``--config.seed_strategy=auto`` decides from.
"""

from __future__ import annotations

import pathlib
import statistics
import time

import jax
from absl import app, flags

from experiments.configs import copy_distance as copy_distance_config
from rvt import io, models, train
from rvt.studies import common

_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per program.")
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Interleaved rounds.")
_CALLS = flags.DEFINE_integer("calls", 10, "Timed steps per case and round.")
_MODELS = flags.DEFINE_string("models", "rnn,lstm,gru,transformer", "Models (their presets).")
_OUT = flags.DEFINE_string("out", "runs/bench/seeds.csv", "CSV to write.")


def cases(name: str, task, config, seeds: int):
    """(single-seed step and its state, vmapped step and its stacked state) for model ``name``."""
    module, _ = models.make_model(name, models.PRESETS[name], vocab_size=task.vocab_size, length=task.length)
    init_keys, data_keys = common.seed_keys(tuple(range(seeds)))
    params = jax.vmap(lambda key: models.init_params(module, key, task.length))(init_keys)
    sampler = train.task_sampler(task, config.batch_size)
    single = train.make_train_step(sampler, data_keys[0])
    stacked = train.make_train_step(sampler, data_keys, seed_axis=True)
    one = train.create_state(module, jax.tree.map(lambda x: x[0], params), config)
    many = train.create_seed_states(module, params, config)
    return (jax.jit(single.fn), one, single.key), (jax.jit(stacked.fn), many, stacked.key)


def timed(fn, state, key, calls: int) -> float:
    jax.block_until_ready(fn(state, key))  # compiled before the clock starts
    start = time.perf_counter()
    for _ in range(calls):
        out = fn(state, key)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / calls


def main(argv):
    del argv
    config = copy_distance_config.get_config()
    task, train_config = common.resolve_task(config), common.resolve_train(config)
    built = {name: cases(name, task, train_config, _SEEDS.value) for name in _MODELS.value.split(",")}
    times = {(name, kind): [] for name in built for kind in ("separate", "vmapped")}
    for _ in range(_ROUNDS.value):
        for name, ((single, one, key1), (stacked, many, keys)) in built.items():
            times[name, "separate"].append(_SEEDS.value * timed(single, one, key1, _CALLS.value))
            times[name, "vmapped"].append(timed(stacked, many, keys, _CALLS.value))
    rows = []
    for name in built:
        separate, vmapped = (statistics.median(times[name, k]) for k in ("separate", "vmapped"))
        rows.append(
            dict(model=name, seeds=_SEEDS.value, separate_s=separate, vmapped_s=vmapped, ratio=vmapped / separate)
        )
        print(
            f"{name:<12} {_SEEDS.value} seeds: vmapped {vmapped * 1e3:8.1f} ms  separate {separate * 1e3:8.1f} ms  "
            f"ratio {vmapped / separate:.2f}  ({jax.default_backend()})"
        )
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    io.write_csv(out, rows)


if __name__ == "__main__":
    app.run(main)
