"""Information bottleneck: copy / reverse a source through a final-state RNN encoder-decoder, the same
encoder-decoder with attention, and a transformer encoder-decoder, sweeping the source length.

For every task x hidden size x source length x model: train from scratch (teacher forcing), then
evaluate on fresh batches (token and sequence accuracy, and accuracy per target position). Writes
config.json, metrics.jsonl, results.csv (one row per run), per_position.csv (one row per run x target
position), then draws the figures of :mod:`rvt.plotting.bottleneck` from the CSVs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import ml_collections
from absl import logging

from rvt import io, metrics, train
from rvt.errors import check, settings_under
from rvt.models import seq2seq
from rvt.studies import common
from rvt.tasks.seq2seq import TASKS, SourceTarget, make_seq2seq_task

EXPERIMENT = "bottleneck"
PER_POSITION = "per_position.csv"
RESULT_COLUMNS = (
    "model",
    "task",
    "src_len",
    "hidden",
    "bits",
    "params",
    "accuracy",
    "seq_accuracy",
    "loss",
    "chance",
    "steps",
    "compile_s",
    "train_s",
    "seed",
)
POSITION_COLUMNS = ("model", "task", "src_len", "hidden", "position", "src_position", "accuracy", "seed")


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """One training run, fully resolved (and validated) before the workdir is touched."""

    model: str
    task_name: str
    task: SourceTarget
    hidden: int
    module: Any
    config: Any
    num_params: int

    @property
    def label(self) -> str:
        return f"{self.model} {self.task_name} L={self.task.src_len} H={self.hidden}"


def _settings(config: ml_collections.ConfigDict, name: str) -> dict[str, Any]:
    return config.model[name].to_dict() if name in config.model else {}


def plan_runs(config: ml_collections.ConfigDict) -> list[RunPlan]:
    """Every (task, hidden, length, model) run; builds and counts every model so bad settings fail here."""
    model_names = common.parse_names(config.models, "models")
    for name in model_names:
        seq2seq.seq2seq_settings(name)  # unknown model -> "models: unknown model ..."
    task_names = common.parse_names(config.tasks, "tasks")
    for name in task_names:
        check(name in TASKS, "tasks", f"unknown task {name!r}; known: {', '.join(TASKS)}")
    lengths = common.parse_list(config.src_lens, "src_lens", int, minimum=1)
    hiddens = common.parse_list(config.hidden_sizes, "hidden_sizes", int, minimum=1)
    plans = []
    for task_name in task_names:
        for hidden in hiddens:
            for length in lengths:
                with settings_under(""):  # alphabet is a top-level setting of this experiment
                    task = make_seq2seq_task(task_name, src_len=length, alphabet=config.alphabet)
                for name in model_names:
                    width = seq2seq.SEQ2SEQ_MODELS[name].config_cls.width_field
                    module, model_config = seq2seq.make_seq2seq(
                        name, {**_settings(config, name), width: hidden}, vocab_size=task.vocab_size
                    )
                    shapes = jax.eval_shape(
                        lambda key, m=module, n=length: seq2seq.init_seq2seq(m, key, n, n), jax.random.key(0)
                    )
                    plans.append(
                        RunPlan(name, task_name, task, hidden, module, model_config, seq2seq.count_params(shapes))
                    )
    return plans


def _resolved(plans: list[RunPlan], train_config) -> dict[str, Any]:
    runs = [
        dict(
            model=p.model,
            task=p.task_name,
            src_len=p.task.src_len,
            hidden=p.hidden,
            bits=p.task.bits,
            params=p.num_params,
            **dataclasses.asdict(p.config),
        )
        for p in plans
    ]
    return dict(runs=runs, train=dataclasses.asdict(train_config))


def train_plan(plan: RunPlan, train_config, seeds, eval_key, path, writer) -> tuple[list[dict], list[dict]]:
    """Train and evaluate one run for every seed; returns its results rows and per-position rows."""
    task = plan.task
    init = lambda key: seq2seq.init_seq2seq(plan.module, key, task.src_len, task.tgt_len)
    tags = dict(model=plan.model, task=plan.task_name, src_len=task.src_len, hidden=plan.hidden)
    rows, positions = [], []
    trained = common.train_seeds(
        plan.label,
        plan.module,
        init,
        task,
        train_config,
        seeds,
        path,
        writer,
        tags,
        forward=train.seq2seq_forward,
        checkpoint_tag=f"{plan.model}/{plan.task_name}_L{task.src_len}_H{plan.hidden}",
        validation_key=common.validation_key(eval_key),
        sums_fn=metrics.position_sums,
    )
    for chunk, result in trained:
        sums = train.evaluate(
            result.state,
            task,
            train_config,
            eval_key,
            forward=train.seq2seq_forward,
            sums_fn=metrics.position_sums,
            seed_axis=True,
        )
        for i, seed in enumerate(chunk):
            seed_sums = common.seed_slice(sums, i)
            overall = metrics.summarize(seed_sums)
            writer.write(dict(kind="eval", **tags, seed=seed, step=train_config.steps, **overall))
            logging.info(
                "%-40s seed %d  acc %.3f  seq acc %.3f  (%d params)",
                plan.label,
                seed,
                overall["accuracy"],
                overall["seq_accuracy"],
                plan.num_params,
            )
            rows.append(
                dict(
                    **tags,
                    bits=task.bits,
                    params=plan.num_params,
                    **overall,
                    chance=1.0 / task.alphabet,
                    steps=train_config.steps,
                    compile_s=result.compile_s if result.history else None,
                    train_s=result.train_s if result.history else None,
                    seed=seed,
                )
            )
            positions += [
                dict(
                    **tags,
                    src_position=task.src_len - 1 - r["position"] if task.reverse else r["position"],
                    seed=seed,
                    **r,
                )
                for r in metrics.position_rows(seed_sums)
            ]
    return rows, positions


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    plans = plan_runs(config)
    train_config = common.resolve_train(config)
    seeds = common.resolve_seeds(config)
    for plan in plans:
        init = lambda key, p=plan: seq2seq.init_seq2seq(p.module, key, p.task.src_len, p.task.tgt_len)
        common.check_memory(
            plan.label,
            plan.module,
            init,
            plan.task,
            train_config,
            len(seeds.chunks[0]),
            train.seq2seq_forward,
            metrics.position_sums,
        )
    resolved = dict(_resolved(plans, train_config), seeds=list(seeds.seeds), seed_strategy=seeds.strategy)
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)
    eval_key = common.held_out_keys(config.seed)[1]  # one held-out set for every seed
    rows, position_rows = [], []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for plan in plans:
            plan_rows, positions = train_plan(plan, train_config, seeds, eval_key, path, writer)
            rows.extend(plan_rows)
            position_rows.extend(positions)
            # After each run, so an interrupted sweep still leaves tables that plot.
            io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)
            io.write_csv(path / PER_POSITION, position_rows, POSITION_COLUMNS)
    return common.finish_run(path)
