"""Accuracy against dependency distance: several models trained on one distance-labelled task.

Writes to the workdir: config.json, metrics.jsonl (training curves and final evals), results.csv (one
row per model x exact distance) and summary.csv (one row per model), then draws
accuracy_vs_distance.png from results.csv through :mod:`rvt.plotting`.
"""

from __future__ import annotations

import dataclasses

import ml_collections
from absl import logging

from rvt import io, metrics, models, train
from rvt.errors import check, settings_under
from rvt.studies import common

EXPERIMENT = "copy_distance"
RESULT_COLUMNS = (
    "model",
    "task",
    "distance",
    "accuracy",
    "count",
    "step",
    "seed",
    "chance",
    "train_max_distance",
    "in_distribution",
)
INTERVAL_COLUMNS = ("model", "metric", "mean", "ci95", "seeds")
# chance: the task's blind-guess accuracy (rvt.tasks.Task.chance_accuracy; empty where undefined);
# train_max_distance: the longest distance trained on; in_distribution: distance <= train_max_distance.


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    """Train every model, evaluate per distance, write the run and its figure into ``workdir``.

    With ``config.train.checkpoint_every`` > 0 each model's TrainState is checkpointed under
    ``workdir/checkpoints/<model>``; ``resume`` continues an interrupted run from there (same config
    only): finished models are restored, not retrained, and the results are identical.
    """
    task = common.resolve_task(config)
    eval_task = resolve_eval_task(config, task)
    plans = common.resolve_models(config, eval_task)  # built for the longest sequence they will see
    train_config = common.resolve_train(config)
    seeds = common.resolve_seeds(config)
    resolved = dict(
        seeds=list(seeds.seeds),
        seed_strategy=seeds.strategy,
        task=common.describe_task(config.task, task),
        eval_task=common.describe_task(config.task, eval_task),
        models={p.name: dict(params=p.num_params, **dataclasses.asdict(p.config)) for p in plans},
        train=dataclasses.asdict(train_config),
    )
    for plan in plans:
        init = lambda key, m=plan.module: models.init_params(m, key, task.length)
        common.check_memory(plan.name, plan.module, init, task, train_config, seeds=len(seeds.chunks[0]))
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)
    logging.info("seeds %s, %s", seeds.seeds, seeds.strategy)
    for plan in plans:  # after every check: a bad setting prints its one line and nothing else
        logging.info("%-12s %8d parameters  %s", plan.name, plan.num_params, plan.config)

    validation_key, eval_key = common.held_out_keys(config.seed)  # one held-out set for every seed
    rows, summary = [], []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for plan in plans:
            init = lambda key, m=plan.module: models.init_params(m, key, task.length)
            trained = common.train_seeds(
                plan.name,
                plan.module,
                init,
                task,
                train_config,
                seeds,
                path,
                writer,
                dict(model=plan.name),
                validation_key=validation_key,
            )
            for chunk, result in trained:
                sums = train.evaluate(result.state, eval_task, train_config, eval_key, seed_axis=True)
                for i, seed in enumerate(chunk):
                    overall = metrics.summarize(common.seed_slice(sums, i))
                    writer.write(dict(kind="eval", model=plan.name, seed=seed, step=train_config.steps, **overall))
                    logging.info(
                        "%-12s seed %d  eval loss %.4f  acc %.3f", plan.name, seed, overall["loss"], overall["accuracy"]
                    )
                    labels = dict(model=plan.name, task=config.task, step=train_config.steps, seed=seed)
                    distance_rows = metrics.distance_rows(common.seed_slice(sums, i))
                    rows += [
                        dict(
                            labels,
                            chance=task.chance_accuracy,
                            train_max_distance=task.max_distance,
                            in_distribution=r["distance"] <= task.max_distance,
                            **r,
                        )
                        for r in distance_rows
                    ]
                    summary.append(summary_row(plan, labels, overall, result, len(chunk)))
                io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)  # after each chunk: partial runs plot
    io.write_csv(path / "summary.csv", summary)
    io.write_csv(path / "intervals.csv", intervals(summary), INTERVAL_COLUMNS)
    return common.finish_run(path)


def resolve_eval_task(config: ml_collections.ConfigDict, task):
    """The task evaluated on: the training task, or with ``eval_max_distance`` > its max_distance the same
    task with distances up to that (sequences refitted), to measure extrapolation beyond training."""
    beyond = config.get("eval_max_distance", 0)
    check(
        isinstance(beyond, int) and not isinstance(beyond, bool) and beyond >= 0,
        "eval_max_distance",
        f"must be a whole number >= 0 (0: the trained range), got {beyond!r}",
    )
    if not beyond:
        return task
    check(
        "max_distance" in {f.name for f in dataclasses.fields(task)},
        "eval_max_distance",
        f"task {config.task!r} has no max_distance setting to extend",
    )
    check(
        beyond >= task.max_distance,
        "eval_max_distance",
        f"{beyond} is below the trained tasks.{config.task}.max_distance {task.max_distance}",
    )
    with settings_under(f"tasks.{config.task}"):
        return dataclasses.replace(task, max_distance=beyond, length=0)


def summary_row(plan, labels: dict, overall: dict, result, chunk_size: int) -> dict:
    """One row per model and seed; timings are the chunk's (seeds trained together share them)."""
    return dict(
        labels,
        params=plan.num_params,
        **overall,
        learning_rate=result.learning_rate,
        # A resumed model reports the part trained in this process (start_step says where it began); one
        # restored complete has no timings.
        compile_s=result.compile_s if result.history else None,
        train_s=result.train_s if result.history else None,
        steps_per_s=result.steps_per_s,
        seeds_per_program=chunk_size,
        start_step=result.start_step,
        checkpoint_s=result.checkpoint_s,
    )


def intervals(summary: list[dict]) -> list[dict]:
    """Per model and metric: the mean over seeds and the half-width of its 95% interval."""
    out = []
    for model in dict.fromkeys(r["model"] for r in summary):
        sel = [r for r in summary if r["model"] == model]
        for metric in ("accuracy", "seq_accuracy", "loss"):
            mean, half, n = metrics.mean_interval([r[metric] for r in sel])
            out.append(dict(model=model, metric=metric, mean=mean, ci95=half, seeds=n))
    return out
