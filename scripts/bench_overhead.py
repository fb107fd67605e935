"""Overheads around the recurrence, on the main experiment's task and presets: ``python -m scripts.bench_overhead``.

(1) the sequential scan's hand-written backward (rvt.models.scan.sequential_scan) against autodiff of the
same loop, LRU and minGRU train steps; (2) a size-1 seed axis against none (what one seed trained with a
vmapped seed axis would cost), S6 and LSTM train steps. Each figure is the median of 7 rounds of 10 steps
after a compiling one, blocked on the result before the clock is read; ratios are within one run."""

import time

import jax

from rvt import models, train
from rvt.models import scan as scan_mod
from rvt.studies import common
from rvt.tasks import make_task

task = make_task(
    "variable_copy",
    min_distance=2,
    max_distance=100,
    num_symbols=2,
    vocab_size=11,
    distractors=True,
    sampling="log_uniform",
)
tc = train.TrainConfig(steps=100)


def bench(name, seed_axis=False):
    module, _ = models.make_model(name, models.PRESETS[name], vocab_size=task.vocab_size, length=task.length)
    ik, tk = common.seed_keys((0,))
    init = lambda k: models.init_params(module, k, task.length)
    train.jitted_train_step.cache_clear()
    if seed_axis:
        state = train.create_seed_states(module, jax.vmap(init)(ik), tc)
        key = tk
    else:
        state = train.create_state(module, init(ik[0]), tc)
        key = tk[0]
    step = train.make_train_step(train.task_sampler(task, 32), key, seed_axis=seed_axis)
    state, m = step(state)
    jax.block_until_ready(m)
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(10):
            state, m = step(state)
        jax.block_until_ready(m)
        ts.append((time.perf_counter() - t0) / 10)
    return sorted(ts)[3] * 1000


def main():
    for name in ("lru", "mingru"):
        ours = bench(name)
        saved = scan_mod.sequential_scan
        scan_mod.sequential_scan = scan_mod._forward_scan
        auto = bench(name)
        scan_mod.sequential_scan = saved
        print(
            f"{name}: hand-written backward {ours:.1f} ms, autodiff {auto:.1f} ms, ratio {ours / auto:.2f}", flush=True
        )
    for name in ("s6", "lstm"):
        bare, axis = bench(name), bench(name, seed_axis=True)
        print(
            f"{name}: no seed axis {bare:.1f} ms, size-1 seed axis {axis:.1f} ms, ratio {axis / bare:.2f}", flush=True
        )


if __name__ == "__main__":
    main()
