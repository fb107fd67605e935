"""The copying memory problem against delay: final loss of each model beside the memoryless baseline.

For every delay T in ``config.delays`` and every model, train on CopyMemory(delay=T) (Arjovsky, Shah &
Bengio 2016: 10 symbols of 8, recall after T steps) and evaluate on held-out batches. The loss is per
position over all T + 20 positions, as in the paper, so it compares directly with the memoryless
baseline 10 ln 8 / (T + 20) (``CopyMemory.memoryless_baseline``): a model that has learnt only to emit
blanks and then guess sits at loss / baseline = 1. ``accuracy`` is over the copied symbols alone (chance
1/8), read from the per-distance table at distance T + num_symbols, where every copied symbol sits.

Writes: config.json, metrics.jsonl, results.csv (model,delay,loss,baseline,accuracy,steps,seed, ...);
figure loss_vs_delay.png.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections
from absl import logging

from rvt import io, metrics, models, train
from rvt.errors import check
from rvt.studies import common
from rvt.tasks import make_task

EXPERIMENT = "copy_memory"
RESULT_COLUMNS = (
    "model",
    "delay",
    "loss",
    "baseline",
    "accuracy",
    "steps",
    "seed",
    "loss_ratio",
    "seq_accuracy",
    "params",
    "compile_s",
    "train_s",
    "num_symbols",
    "alphabet",
)


def resolve_delays(config: ml_collections.ConfigDict) -> tuple[int, ...]:
    return common.parse_list(config.delays, "delays", int, minimum=1)


def resolve_tasks(config: ml_collections.ConfigDict, delays: tuple[int, ...]) -> list:
    check("delay" not in config.task, "task.delay", "the sweep sets it; choose delays with --config.delays")
    return [make_task("copy_memory", delay=d, **config.task.to_dict()) for d in delays]


def copied_accuracy(sums, task) -> float:
    """Accuracy on the copied symbols: they, and only they, carry distance delay + num_symbols."""
    rows = {row["distance"]: row for row in metrics.distance_rows(sums)}
    return rows[task.max_distance]["accuracy"]


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    delays = resolve_delays(config)
    tasks = resolve_tasks(config, delays)
    plans = {task.delay: common.resolve_models(config, task) for task in tasks}  # validates every length
    train_config = common.resolve_train(config)
    resolved = dict(
        task=dict(name="copy_memory", **config.task.to_dict()),
        delays=delays,
        baselines={task.delay: task.memoryless_baseline() for task in tasks},
        models={p.name: dict(params=p.num_params, **dataclasses.asdict(p.config)) for p in plans[delays[0]]},
        train=dataclasses.asdict(train_config),
    )
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)

    init_key, train_key, eval_key = jax.random.split(jax.random.key(config.seed), 3)
    rows = []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for task in tasks:
            for plan in plans[task.delay]:
                params = models.init_params(plan.module, init_key, task.length)
                label = f"{plan.name} T={task.delay}"
                result = train.train(
                    plan.module,
                    params,
                    task,
                    train_config,
                    train_key,
                    name=label,
                    on_log=lambda record, name=plan.name, d=task.delay: writer.write(
                        dict(kind="train", model=name, delay=d, **record)
                    ),
                )
                sums = train.evaluate(result.state, task, train_config, eval_key)
                overall = metrics.summarize(sums)
                baseline = task.memoryless_baseline()
                row = dict(
                    model=plan.name,
                    delay=task.delay,
                    loss=overall["loss"],
                    baseline=baseline,
                    accuracy=copied_accuracy(sums, task),
                    steps=train_config.steps,
                    seed=config.seed,
                    loss_ratio=overall["loss"] / baseline,
                    seq_accuracy=overall["seq_accuracy"],
                    params=plan.num_params,
                    compile_s=result.compile_s,
                    train_s=result.train_s,
                    num_symbols=task.num_symbols,
                    alphabet=task.alphabet,
                )
                writer.write(dict(kind="eval", **row))
                logging.info(
                    "%-16s loss %.4f = %.3f x baseline %.4f; copied-symbol accuracy %.3f (%.0fs)",
                    label,
                    row["loss"],
                    row["loss_ratio"],
                    baseline,
                    row["accuracy"],
                    result.train_s,
                )
                rows.append(row)
                io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)  # after each run: partial sweeps plot
    report(rows)
    return common.finish_run(path)


def report(rows: list[dict]) -> None:
    """loss / baseline and copied-symbol accuracy per model and delay, on stdout."""
    delays = sorted({r["delay"] for r in rows})
    names = list(dict.fromkeys(r["model"] for r in rows))
    table = {(r["model"], r["delay"]): r for r in rows}
    print("loss / memoryless baseline (copied-symbol accuracy; chance 1/8)")
    print(f"{'delay':<12}" + "".join(f"{d:>16}" for d in delays))
    print(f"{'baseline':<12}" + "".join(f"{table[(names[0], d)]['baseline']:>16.4f}" for d in delays))
    for name in names:
        cells = [table.get((name, d)) for d in delays]
        print(
            f"{name:<12}"
            + "".join(f"{c['loss_ratio']:>9.3f} ({c['accuracy']:.2f})" if c else f"{'-':>16}" for c in cells)
        )
