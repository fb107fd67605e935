"""Accuracy against dependency distance: several models trained on one distance-labelled task.

Writes to the workdir: config.json, metrics.jsonl (training curves and final evals), results.csv (one
row per model x exact distance) and summary.csv (one row per model), then draws
accuracy_vs_distance.png from results.csv through :mod:`rvt.plotting`.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections
from absl import logging

from rvt import io, metrics, models, plotting, train
from rvt.checkpoint import Checkpoints
from rvt.studies import common

EXPERIMENT = "copy_distance"
RESUMABLE = True  # the app offers --resume
RESULT_COLUMNS = ("model", "task", "distance", "accuracy", "count", "step", "seed", "chance")
# chance: the task's blind-guess accuracy (rvt.tasks.Task.chance_accuracy; empty where undefined)


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False, resume: bool = False):
    """Train every model, evaluate per distance, write the run and its figure into ``workdir``.

    With ``config.train.checkpoint_every`` > 0 each model's TrainState is checkpointed under
    ``workdir/checkpoints/<model>``; ``resume`` continues an interrupted run from there (same config
    only): finished models are restored, not retrained, and the results are identical.
    """
    task = common.resolve_task(config)
    plans = common.resolve_models(config, task)
    train_config = common.resolve_train(config)
    resolved = dict(
        task=common.describe_task(config.task, task),
        models={p.name: dict(params=p.num_params, **dataclasses.asdict(p.config)) for p in plans},
        train=dataclasses.asdict(train_config),
    )
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved, resume, resumable=True)
    for plan in plans:  # after every check: a bad setting prints its one line and nothing else
        logging.info("%-12s %8d parameters  %s", plan.name, plan.num_params, plan.config)

    root = jax.random.key(config.seed)
    init_key, train_key, eval_key = jax.random.split(root, 3)
    rows, summary = [], []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for plan in plans:
            params = models.init_params(plan.module, init_key, task.length)
            checkpoints = None
            if train_config.checkpoint_every:
                checkpoints = Checkpoints(path / io.CHECKPOINTS / plan.name, train_config.checkpoint_every)
            result = train.train(
                plan.module,
                params,
                task,
                train_config,
                train_key,
                name=plan.name,
                on_log=lambda record, name=plan.name: writer.write(dict(kind="train", model=name, **record)),
                checkpoints=checkpoints,
            )
            if checkpoints is not None:
                checkpoints.close()
            sums = train.evaluate(result.state, task, train_config, eval_key)
            overall = metrics.summarize(sums)
            writer.write(dict(kind="eval", model=plan.name, step=train_config.steps, **overall))
            logging.info(
                "%-12s eval  loss %.4f  acc %.3f  seq acc %.3f  (%.1fs)",
                plan.name,
                overall["loss"],
                overall["accuracy"],
                overall["seq_accuracy"],
                result.train_s,
            )
            for row in metrics.distance_rows(sums):
                rows.append(
                    dict(
                        model=plan.name,
                        task=config.task,
                        step=train_config.steps,
                        seed=config.seed,
                        chance=task.chance_accuracy,
                        **row,
                    )
                )
            summary.append(
                dict(
                    model=plan.name,
                    task=config.task,
                    params=plan.num_params,
                    **overall,
                    # A resumed model reports the part trained in this process (start_step says where
                    # it began); one restored complete has no timings.
                    compile_s=result.compile_s if result.history else None,
                    train_s=result.train_s if result.history else None,
                    steps_per_s=result.steps_per_s,
                    start_step=result.start_step,
                    checkpoint_s=result.checkpoint_s,
                    seed=config.seed,
                )
            )
            io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)  # after each model: partial runs plot
    io.write_csv(path / "summary.csv", summary)
    figures = plotting.plot_workdir(path)
    logging.info("wrote %s", ", ".join(str(f) for f in figures))
    return path
