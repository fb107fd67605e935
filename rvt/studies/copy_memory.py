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
    "learning_rate",
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
    seeds = common.resolve_seeds(config)
    for task in tasks:
        for plan in plans[task.delay]:
            init = lambda key, m=plan.module, n=task.length: models.init_params(m, key, n)
            common.check_memory(plan.name, plan.module, init, task, train_config, seeds=len(seeds.chunks[0]))
    resolved = dict(
        seeds=list(seeds.seeds),
        seed_strategy=seeds.strategy,
        task=dict(name="copy_memory", **config.task.to_dict()),
        delays=delays,
        baselines={task.delay: task.memoryless_baseline() for task in tasks},
        models={p.name: dict(params=p.num_params, **dataclasses.asdict(p.config)) for p in plans[delays[0]]},
        train=dataclasses.asdict(train_config),
    )
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)

    validation_key, eval_key = common.held_out_keys(config.seed)  # one held-out set for every seed
    rows = []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for task in tasks:
            baseline = task.memoryless_baseline()
            for plan in plans[task.delay]:
                init = lambda key, m=plan.module, n=task.length: models.init_params(m, key, n)
                label = f"{plan.name} T={task.delay}"
                tags = dict(model=plan.name, delay=task.delay)
                trained = common.train_seeds(
                    label,
                    plan.module,
                    init,
                    task,
                    train_config,
                    seeds,
                    path,
                    writer,
                    tags,
                    validation_key=validation_key,
                    checkpoint_tag=f"{plan.name}/delay_{task.delay}",
                )
                for chunk, result in trained:
                    sums = train.evaluate(result.state, task, train_config, eval_key, seed_axis=True)
                    for i, seed in enumerate(chunk):
                        seed_sums = common.seed_slice(sums, i)
                        overall = metrics.summarize(seed_sums)
                        row = dict(
                            model=plan.name,
                            delay=task.delay,
                            loss=overall["loss"],
                            baseline=baseline,
                            accuracy=copied_accuracy(seed_sums, task),
                            steps=train_config.steps,
                            learning_rate=result.learning_rate,
                            seed=seed,
                            loss_ratio=overall["loss"] / baseline,
                            seq_accuracy=overall["seq_accuracy"],
                            params=plan.num_params,
                            compile_s=result.compile_s if result.history else None,
                            train_s=result.train_s if result.history else None,
                            num_symbols=task.num_symbols,
                            alphabet=task.alphabet,
                        )
                        writer.write(dict(kind="eval", **row))
                        logging.info(
                            "%-16s seed %d  loss %.4f = %.3f x baseline %.4f; copied-symbol accuracy %.3f",
                            label,
                            seed,
                            row["loss"],
                            row["loss_ratio"],
                            baseline,
                            row["accuracy"],
                        )
                        rows.append(row)
                    io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)  # after each chunk: partial runs plot
    report(rows)
    return common.finish_run(path)


def report(rows: list[dict]) -> None:
    """loss / baseline and copied-symbol accuracy per model and delay (means over seeds), on stdout."""
    delays = sorted({r["delay"] for r in rows})
    names = list(dict.fromkeys(r["model"] for r in rows))
    table = {}
    for key in dict.fromkeys((r["model"], r["delay"]) for r in rows):
        sel = [r for r in rows if (r["model"], r["delay"]) == key]
        table[key] = {k: sum(r[k] for r in sel) / len(sel) for k in ("loss_ratio", "accuracy", "baseline")}
    print("loss / memoryless baseline (copied-symbol accuracy; chance 1/8), means over seeds")
    print(f"{'delay':<12}" + "".join(f"{d:>16}" for d in delays))
    print(f"{'baseline':<12}" + "".join(f"{table[(names[0], d)]['baseline']:>16.4f}" for d in delays))
    for name in names:
        cells = [table.get((name, d)) for d in delays]
        print(
            f"{name:<12}"
            + "".join(f"{c['loss_ratio']:>9.3f} ({c['accuracy']:.2f})" if c else f"{'-':>16}" for c in cells)
        )
