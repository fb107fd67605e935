"""Online learning on an endless, drifting stream: the RNN carries its state, the Transformer a window.

The stream (:class:`rvt.tasks.stream.DriftingCopyStream`) is read once, one segment of
``stream.segment_length`` tokens at a time, ``num_streams`` independent streams side by side. Every
segment is scored *before* the model trains on it (prequential evaluation), so accuracy over stream time
is accuracy on unseen data. Every model learns through the one training loop (:mod:`rvt.train`), one
step per segment, with what it keeps between segments in ``TrainState.memory`` -- defined by the
model's own ``init_stream`` / ``stream`` (:mod:`rvt.models.base`):

* a recurrent model carries its state from segment to segment without gradient (truncated
  backpropagation through time): it sees the whole past, gradients reach back one segment;
* the Transformer keeps the last ``window - segment_length`` tokens and re-encodes them with the new
  segment (``window`` tokens), trained on the new segment's targets.

Per segment: accuracy, loss, tokens seen, memory bytes (what the learner keeps between segments).
Per model (summary.csv): FLOPs per token of the train step (counted on its jaxpr, the recurrence's loop
included), XLA's scratch bytes of the step per token, and per rule change
(recovery.csv) how many segments accuracy needs to regain ``recovery_fraction`` of its level before.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rvt import io, models, profiling, train
from rvt.errors import check, check_positive_int, settings_under
from rvt.studies import common
from rvt.tasks.stream import DriftingCopyStream

EXPERIMENT = "online"
RESULT_COLUMNS = ("model", "stream_step", "accuracy", "loss", "tokens_seen", "memory_bytes", "regime", "lag")
RECOVERY_COLUMNS = (
    "model",
    "change_step",
    "lag_before",
    "lag_after",
    "pre_accuracy",
    "learned_before",
    "recovery_segments",
    "recovered",
    "target_fraction",
)


def resolve(config: ml_collections.ConfigDict):
    """Validate every setting before anything is written; returns (stream task, [(name, module)])."""
    settings = dict(config.stream.to_dict())
    settings["lags"] = tuple(settings["lags"]) if isinstance(settings["lags"], list | tuple) else settings["lags"]
    known = {f.name for f in dataclasses.fields(DriftingCopyStream)}
    for key in settings:
        check(key in known, f"stream.{key}", f"unknown setting; known: {', '.join(sorted(known))}")
    with settings_under("stream"):
        task = DriftingCopyStream(**settings)
    for field in ("num_segments", "num_streams", "window", "recovery_smooth"):
        value = config[field]
        check_positive_int(value, field)
    check(
        config.num_segments > task.segments_per_rule,
        "num_segments",
        f"{config.num_segments} must exceed stream.segments_per_rule {task.segments_per_rule} (no rule change)",
    )
    check(
        config.window >= task.segment_length,
        "window",
        f"{config.window} must hold at least one segment (stream.segment_length {task.segment_length})",
    )
    check(config.learning_rate > 0, "learning_rate", f"must be > 0, got {config.learning_rate}")
    check(config.grad_clip > 0, "grad_clip", f"must be > 0, got {config.grad_clip}")
    check(0 < config.recovery_fraction <= 1, "recovery_fraction", f"must be in (0, 1], got {config.recovery_fraction}")
    plans = []
    for name in common.parse_names(config.models, "models"):
        settings = config.model[name].to_dict() if name in config.model else {}
        module, _ = models.make_model(name, settings, vocab_size=task.vocab_size, length=config.window)
        plans.append((name, module))
    return task, plans


def train_config(config) -> train.TrainConfig:
    """The online learner's optimizer: Adam at a constant rate, clipped; one step per segment."""
    return train.TrainConfig(
        steps=config.num_segments,
        batch_size=config.num_streams,
        learning_rate=config.learning_rate,
        warmup_steps=0,
        grad_clip=config.grad_clip,
        log_every=min(100, config.num_segments),
        schedule="constant",
    )


def segment_rows(name: str, result: train.TrainResult, task: DriftingCopyStream, memory_bytes: int) -> list[dict]:
    """One row per segment: its prequential accuracy and loss (scored before the update)."""
    return [
        dict(
            model=name,
            stream_step=i,
            accuracy=m["accuracy"],
            loss=m["loss"],
            tokens_seen=(i + 1) * task.segment_length,
            memory_bytes=memory_bytes,
            regime=int(task.regime(i)),
            lag=int(task.lag(i)),
        )
        for i, m in enumerate(result.steps)
    ]


def recovery_rows(rows: list[dict], task: DriftingCopyStream, smooth: int, fraction: float) -> list[dict]:
    """Per rule change: segments until the mean accuracy over the next ``smooth`` segments regains
    ``fraction`` of its mean over the ``smooth`` segments before the change; '' if it does not before
    the next change. Only defined where the old rule had been learnt (accuracy >= twice chance):
    regaining chance level is not recovery."""
    accuracy = np.asarray([r["accuracy"] for r in rows])
    out = []
    changes = task.change_points(len(rows))
    for change, end in zip(changes, changes[1:] + [len(rows)], strict=True):
        pre = float(accuracy[max(change - smooth, 0) : change].mean())
        learned = pre >= 2.0 / task.alphabet
        found = [
            s - change
            for s in range(change, end - smooth + 1)
            if learned and accuracy[s : s + smooth].mean() >= fraction * pre
        ]
        out.append(
            dict(
                model=rows[0]["model"],
                change_step=change,
                lag_before=int(task.lag(change - 1)),
                lag_after=int(task.lag(change)),
                pre_accuracy=pre,
                learned_before=learned,
                recovery_segments=found[0] if found else "",
                recovered=bool(found),
                target_fraction=fraction,
            )
        )
    return out


def summary_row(name, state, step_fn, config, rows, recoveries, seconds: float) -> dict:
    """Compute per token of the train step (counted on its jaxpr, the recurrence's loop included) and
    XLA's scratch bytes; accuracy; recovery after rule changes."""
    flops = profiling.traced_flops(step_fn.fn, state, step_fn.key)
    temp = profiling.analyse(step_fn.lower(state).compile()).temp_bytes
    tokens = config.num_streams * config.stream.segment_length
    recovered = [r["recovery_segments"] for r in recoveries if r["recovered"]]
    memory = profiling.tree_bytes(state.memory)
    return dict(
        model=name,
        params=models.count_params(state.params),
        flops_per_token=flops / tokens,
        temp_bytes_per_token=temp / tokens,
        memory_bytes=memory,
        memory_bytes_per_stream=memory // config.num_streams,
        final_accuracy=float(np.mean([r["accuracy"] for r in rows[-config.recovery_smooth :]])),
        mean_accuracy=float(np.mean([r["accuracy"] for r in rows])),
        changes=len(recoveries),
        learned_before=sum(r["learned_before"] for r in recoveries),
        recovered=len(recovered),
        mean_recovery_segments=float(np.mean(recovered)) if recovered else float("nan"),
        seconds=seconds,
    )


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    task, plans = resolve(config)
    resolved = dict(
        stream=dataclasses.asdict(task),
        vocab_size=task.vocab_size,
        change_points=task.change_points(config.num_segments),
        models={name: dict(type=type(m).__name__) for name, m in plans},
    )
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)
    key = jax.random.key(config.seed)
    init_key, stream_key = jax.random.split(key)
    settings = train_config(config)
    sample = lambda key, index: task.segment(key, index, config.num_streams)
    rows, recoveries, summary = [], [], []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for name, module in plans:
            params = models.init_params(module, init_key, config.window)
            memory = module.apply({"params": params}, config.num_streams, config.window, method="init_stream")
            state = train.create_state(module, params, settings, memory=memory)
            step_fn = train.make_train_step(sample, stream_key, train.stream_forward)  # one stream for all
            summary_state = jax.tree.map(jnp.copy, state)  # the step donates its input
            start = time.perf_counter()
            result = train.run_steps(
                state,
                step_fn,
                settings,
                name=name,
                on_log=lambda record, n=name: writer.write(dict(kind="progress", model=n, **record)),
            )
            seconds = time.perf_counter() - start
            new = segment_rows(name, result, task, profiling.tree_bytes(memory))
            changes = recovery_rows(new, task, config.recovery_smooth, config.recovery_fraction)
            summary.append(summary_row(name, summary_state, step_fn, config, new, changes, seconds))
            writer.write(dict(kind="summary", **summary[-1]))
            rows, recoveries = rows + new, recoveries + changes
            io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)
    io.write_csv(path / "recovery.csv", recoveries, RECOVERY_COLUMNS)
    io.write_csv(path / "summary.csv", summary)
    return common.finish_run(path)
