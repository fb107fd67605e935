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
import itertools
import math
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rvt import io, models, profiling, train
from rvt.checkpoint import Checkpoints
from rvt.errors import check, check_positive_int, settings_under
from rvt.studies import common
from rvt.tasks.stream import DriftingCopyStream

EXPERIMENT = "online"
RESULT_COLUMNS = ("model", "seed", "stream_step", "accuracy", "loss", "tokens_seen", "memory_bytes", "regime", "lag")
RECOVERY_COLUMNS = (
    "model",
    "seed",
    "regime",
    "start_step",
    "lag",
    "target_accuracy",
    "peak_accuracy",
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
    for field in ("learning_rate", "grad_clip"):
        value = config[field]
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        check(ok, field, f"must be a finite number > 0, got {value!r}")
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


def segment_rows(name: str, seed: int, result: train.TrainResult, task: DriftingCopyStream, memory_bytes: int):
    """One row per segment: its prequential accuracy and loss (scored before the update)."""
    return [
        dict(
            model=name,
            seed=seed,
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


def smoothed(accuracy, smooth: int) -> np.ndarray:
    """Mean accuracy over each window of ``smooth`` segments, indexed by the window's first segment."""
    accuracy = np.asarray(accuracy, float)
    width = min(smooth, len(accuracy))
    return np.convolve(accuracy, np.ones(width) / width, mode="valid")


def recovery_rows(rows: list[dict], task: DriftingCopyStream, smooth: int, fraction: float) -> list[dict]:
    """Every regime (the first one and one per rule change): how many segments from its start until the
    mean accuracy over the next ``smooth`` segments reaches ``fraction`` of the learner's best such mean
    anywhere in the stream (its own level); '' where it does not before the regime ends. Every regime
    counts, whatever happened in the one before."""
    accuracy = np.asarray([r["accuracy"] for r in rows])
    windows = smoothed(accuracy, smooth)
    target = fraction * float(windows.max())
    out = []
    starts = [0, *task.change_points(len(rows))]
    for regime, (start, end) in enumerate(zip(starts, starts[1:] + [len(rows)], strict=True)):
        inside = windows[start : max(end - smooth + 1, start)]
        found = np.flatnonzero(inside >= target)
        out.append(
            dict(
                model=rows[0]["model"],
                seed=rows[0]["seed"],
                regime=regime,
                start_step=start,
                lag=int(task.lag(start)),
                target_accuracy=target,
                peak_accuracy=float(inside.max()) if inside.size else float("nan"),
                recovery_segments=int(found[0]) if found.size else "",
                recovered=bool(found.size),
                target_fraction=fraction,
            )
        )
    return out


def summary_row(name, seed, state, step_fn, config, rows, recoveries, seconds: float) -> dict:
    """Compute per token of the train step (counted on its jaxpr, the recurrence's loop included) and
    XLA's scratch bytes; accuracy; recovery in every regime."""
    flops = profiling.traced_flops(step_fn.fn, state, step_fn.key)
    temp = profiling.analyse(step_fn.lower(state).compile()).temp_bytes
    tokens = config.num_streams * config.stream.segment_length
    recovered = [r["recovery_segments"] for r in recoveries if r["recovered"]]
    memory = profiling.tree_bytes(state.memory)
    last = config.recovery_smooth
    return dict(
        model=name,
        seed=seed,
        params=models.count_params(state.params),
        flops_per_token=flops / tokens,
        temp_bytes_per_token=temp / tokens,
        memory_bytes=memory,
        memory_bytes_per_stream=memory // config.num_streams,
        final_accuracy=float(np.mean([r["accuracy"] for r in rows[-last:]])),
        final_segments=min(last, len(rows)),
        mean_accuracy=float(np.mean([r["accuracy"] for r in rows])),
        regimes=len(recoveries),
        recovered=len(recovered),
        mean_recovery_segments=float(np.mean(recovered)) if recovered else float("nan"),
        seconds=seconds,
    )


INTERVENTIONS = ("none", "reset_optimizer", "reinit_qkv")


def check_memory(name, module, config, settings, sample) -> None:
    """Refuse (num_streams, window, segment sizes) whose compiled train step would not fit in memory:
    XLA's memory analysis of the step on shapes alone, before anything is allocated or written."""

    def state_fn(key):
        params = models.init_params(module, key, config.window)
        memory = module.apply({"params": params}, config.num_streams, config.window, method="init_stream")
        return train.create_state(module, params, settings, memory=memory)

    state = jax.eval_shape(state_fn, jax.random.key(0))
    step = train.make_train_step(sample, jax.random.key(0), train.stream_forward)
    need = profiling.analyse(step.lower(state).compile()).resident_bytes
    budget, source = profiling.memory_budget()
    check(
        need <= budget,
        "num_streams",
        f"{name} would need {need / 2**30:.1f} GiB for one step, more than {source} ({budget / 2**30:.1f} GiB); "
        "lower it, window or stream.segment_length",
    )


def intervene(state, how: str, module, key, window: int):
    """At a rule change: ``reset_optimizer`` starts Adam's moments (and count) afresh; ``reinit_qkv``
    re-initialises every attention query/key/value projection (params named ``qkv``) from a fresh draw,
    keeping every other weight and the optimizer state. A model without ``qkv`` params is unchanged."""
    if how == "reset_optimizer":
        return state.replace(opt_state=state.tx.init(state.params))
    fresh = models.init_params(module, key, window)
    is_qkv = lambda path: any(getattr(k, "key", None) == "qkv" for k in path)
    params = jax.tree_util.tree_map_with_path(lambda p, old, new: new if is_qkv(p) else old, state.params, fresh)
    return state.replace(params=params)


def run_with_intervention(state, step_fn, settings, task, how, module, key, window, on_log, name):
    """Train segment by segment, applying ``intervene`` at every rule change (no checkpoints: an
    analysis run, not a long one). Returns one TrainResult holding every step's metrics."""
    ends = [*task.change_points(settings.steps), settings.steps]
    steps, result = [], None
    for i, end in enumerate(ends):
        result = train.run_steps(state, step_fn, dataclasses.replace(settings, steps=end), on_log, name)
        steps += result.steps
        state = result.state
        if end < settings.steps:
            state = intervene(state, how, module, jax.random.fold_in(key, i), window)
    return dataclasses.replace(result, steps=steps, start_step=0)


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    task, plans = resolve(config)
    seeds = common.resolve_seeds(config)
    check(
        isinstance(config.checkpoint_every, int) and config.checkpoint_every >= 0,
        "checkpoint_every",
        f"must be a whole number >= 0 (0: no checkpoints), got {config.checkpoint_every!r}",
    )
    interventions = common.parse_choices(config.on_change, "on_change", INTERVENTIONS)
    resolved = dict(
        seeds=list(seeds.seeds),
        on_change=list(interventions),
        stream=dataclasses.asdict(task),
        vocab_size=task.vocab_size,
        change_points=task.change_points(config.num_segments),
        models={name: dict(type=type(m).__name__) for name, m in plans},
    )
    settings = train_config(config)
    sample = lambda key, index: task.segment(key, index, config.num_streams)
    for name, module in plans:
        check_memory(name, module, config, settings, sample)
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)
    rows, recoveries, summary = [], [], []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for (name, module), intervention in itertools.product(plans, interventions):
            label = name if intervention == "none" else f"{name}+{intervention}"
            for seed, init_key, stream_key in zip(seeds.seeds, *common.seed_keys(seeds.seeds), strict=True):
                params = models.init_params(module, init_key, config.window)
                memory = module.apply({"params": params}, config.num_streams, config.window, method="init_stream")
                state = train.create_state(module, params, settings, memory=memory)
                step_fn = train.make_train_step(sample, stream_key, train.stream_forward)  # one stream per seed
                summary_state = jax.tree.map(jnp.copy, state)  # the step donates its input
                checkpoints = None
                if config.checkpoint_every and intervention == "none":
                    folder = path / io.CHECKPOINTS / label / f"seed_{seed}"
                    checkpoints = Checkpoints(folder, config.checkpoint_every, tag=io.config_digest(path))
                start = time.perf_counter()
                on_log = lambda record, n=label, s=seed: writer.write(dict(kind="progress", model=n, seed=s, **record))
                try:
                    if intervention == "none":
                        result = train.run_steps(
                            state,
                            step_fn,
                            settings,
                            name=f"{label} seed {seed}",
                            on_log=on_log,
                            checkpoints=checkpoints,
                        )
                    else:
                        fresh_key = jax.random.fold_in(init_key, 1)
                        result = run_with_intervention(
                            state,
                            step_fn,
                            settings,
                            task,
                            intervention,
                            module,
                            fresh_key,
                            config.window,
                            on_log,
                            f"{label} seed {seed}",
                        )
                finally:
                    if checkpoints is not None:
                        checkpoints.close()
                seconds = time.perf_counter() - start
                new = segment_rows(label, seed, result, task, profiling.tree_bytes(memory))
                regimes = recovery_rows(new, task, config.recovery_smooth, config.recovery_fraction)
                summary.append(summary_row(label, seed, summary_state, step_fn, config, new, regimes, seconds))
                summary[-1]["intervention"] = intervention
                writer.write(dict(kind="summary", **summary[-1]))
                rows, recoveries = rows + new, recoveries + regimes
                io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)
    io.write_csv(path / "recovery.csv", recoveries, RECOVERY_COLUMNS)
    io.write_csv(path / "summary.csv", summary)
    return common.finish_run(path)
