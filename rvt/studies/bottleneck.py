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


def train_one(plan: RunPlan, train_config, keys, writer, seed: int) -> tuple[dict, list[dict]]:
    """Train and evaluate one run; returns its results row and its per-position rows."""
    init_key, train_key, eval_key = keys
    task = plan.task
    params = seq2seq.init_seq2seq(plan.module, init_key, task.src_len, task.tgt_len)
    tags = dict(model=plan.model, task=plan.task_name, src_len=task.src_len, hidden=plan.hidden)
    result = train.train(
        plan.module,
        params,
        task,
        train_config,
        train_key,
        name=plan.label,
        on_log=lambda record: writer.write(dict(kind="train", **tags, **record)),
        forward=train.seq2seq_forward,
    )
    sums = train.evaluate(
        result.state, task, train_config, eval_key, forward=train.seq2seq_forward, sums_fn=metrics.position_sums
    )
    overall = metrics.summarize(sums)
    writer.write(dict(kind="eval", **tags, step=train_config.steps, **overall))
    logging.info(
        "%-40s acc %.3f  seq acc %.3f  (%d params, compile %.1fs, train %.1fs)",
        plan.label,
        overall["accuracy"],
        overall["seq_accuracy"],
        plan.num_params,
        result.compile_s,
        result.train_s,
    )
    row = dict(
        **tags,
        bits=task.bits,
        params=plan.num_params,
        **overall,
        chance=1.0 / task.alphabet,
        steps=train_config.steps,
        compile_s=result.compile_s,
        train_s=result.train_s,
        seed=seed,
    )
    positions = [
        dict(**tags, src_position=task.src_len - 1 - r["position"] if task.reverse else r["position"], seed=seed, **r)
        for r in metrics.position_rows(sums)
    ]
    return row, positions


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    plans = plan_runs(config)
    train_config = common.resolve_train(config)
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, _resolved(plans, train_config))
    keys = jax.random.split(jax.random.key(config.seed), 3)
    rows, position_rows = [], []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for plan in plans:
            row, positions = train_one(plan, train_config, keys, writer, config.seed)
            rows.append(row)
            position_rows.extend(positions)
            # After each run, so an interrupted sweep still leaves tables that plot.
            io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)
            io.write_csv(path / PER_POSITION, position_rows, POSITION_COLUMNS)
    return common.finish_run(path)
