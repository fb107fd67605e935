"""Online learning on an endless, drifting stream: the RNN carries its state, the Transformer a window.

The stream (:class:`rvt.tasks.stream.DriftingCopyStream`) is read once, one segment of
``stream.segment_length`` tokens at a time, ``num_streams`` independent streams side by side. Every
segment is scored *before* the model trains on it (prequential evaluation), so accuracy over stream time
is accuracy on unseen data. Two learners, one jitted step each, ``(params, opt_state, memory, segment)
-> (params, opt_state, memory, metrics)``:

* recurrent (any registered RNN): truncated backpropagation through time. ``memory`` is the carry,
  passed from segment to segment with ``stop_gradient``: the model sees the whole past, gradients
  reach back one segment.
* Transformer: ``memory`` is the last ``window - segment_length`` tokens; the model re-encodes that
  context plus the new segment (``window`` tokens) and is trained on the new segment's targets.

Per segment: accuracy, loss, tokens seen, memory bytes (what the learner keeps between segments).
Per model (summary.csv): FLOPs per token of the train step (XLA cost analysis, corrected for the RNN's
scan, whose body XLA charges once), XLA's scratch bytes of the step per token, and per rule change
(recovery.csv) how many segments accuracy needs to regain ``recovery_fraction`` of its level before.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from rvt import io, metrics, models, plotting, profiling
from rvt.errors import check, check_positive_int, settings_under
from rvt.models.recurrent import RecurrentLM
from rvt.studies import common
from rvt.tasks.base import Batch
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


@dataclasses.dataclass(frozen=True)
class Learner:
    """A model bound to how it learns online: ``step`` jitted, ``memory`` its initial carry-over."""

    name: str
    module: object
    params: object
    raw_step: object  # (params, opt_state, memory, segment) -> (params, opt_state, memory, metrics)
    step: object  # raw_step jitted (not donated, so XLA's analyses of raw_step reuse its compilation)
    memory: object
    loss_for: object  # unroll -> loss_fn, to count FLOPs (XLA charges a scan's body once, whatever its length)


def _prequential(loss_fn, tx):
    """Wrap ``loss_fn(params, memory, segment) -> (loss, (memory, logits))`` into an online step."""

    def step(params, opt_state, memory, segment: Batch):
        (loss, (memory, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, memory, segment)
        updates, opt_state = tx.update(grads, opt_state, params)
        # logits came from the params before this update: the segment is scored before it is learnt.
        scores = dict(loss=loss, accuracy=metrics.accuracy(logits, segment))
        return optax.apply_updates(params, updates), opt_state, jax.lax.stop_gradient(memory), scores

    return step


def recurrent_loss(module):
    def loss_fn(params, carry, segment):
        carry, logits = module.apply(
            {"params": params}, segment.inputs, carry, method=lambda m, tokens, c: m.from_embeddings(m.embed(tokens), c)
        )
        return metrics.masked_cross_entropy(logits, segment), (carry, logits)

    return loss_fn


def window_loss(module, segment_length: int):
    def loss_fn(params, memory, segment):
        context = memory["tokens"]
        tokens_BxW = jnp.concatenate([context, segment.inputs], axis=1)
        width = tokens_BxW.shape[1]
        # Context slots not yet filled (the stream's start) are padding: masked as attention keys.
        valid_W = jnp.arange(width) >= context.shape[1] - memory["filled"]
        valid_BxW = jnp.broadcast_to(valid_W, tokens_BxW.shape)
        logits = module.apply({"params": params}, tokens_BxW, valid_BxW)[:, width - segment_length :]
        kept = dict(
            tokens=tokens_BxW[:, segment_length:],
            filled=jnp.minimum(memory["filled"] + segment_length, context.shape[1]),
        )
        return metrics.masked_cross_entropy(logits, segment), (kept, logits)

    return loss_fn


def make_learner(name, module, params, tx, config) -> Learner:
    length, streams = config.stream.segment_length, config.num_streams
    if isinstance(module, RecurrentLM):
        loss_for = lambda unroll: recurrent_loss(module.clone(unroll=unroll))
        memory = module.apply({"params": params}, streams, method="initial_state")
    else:
        loss_for = lambda unroll: window_loss(module, length)
        memory = dict(tokens=jnp.zeros((streams, config.window - length), jnp.int32), filled=jnp.zeros((), jnp.int32))
    raw_step = _prequential(loss_for(module.unroll if isinstance(module, RecurrentLM) else 1), tx)
    return Learner(name, module, params, raw_step, jax.jit(raw_step), memory, loss_for)


def step_cost(learner: Learner, tx, task, config, key) -> tuple[float, int]:
    """FLOPs and scratch bytes of one train step from XLA's analyses. A recurrent step is a scan over the
    segment, whose body XLA counts once: count it with one and with two time steps per loop body
    (unroll 1 and 2); the difference is one time step, and the executed program does segment_length."""
    segment = jax.eval_shape(lambda: task.segment(key, 0, config.num_streams))
    args = (learner.params, tx.init(learner.params), learner.memory, segment)
    count = lambda unroll: profiling.cost(_prequential(learner.loss_for(unroll), tx), *args)
    unrolled = isinstance(learner.module, RecurrentLM) and learner.module.unroll != 1
    one = count(1) if unrolled else profiling.cost(learner.raw_step, *args)  # what ran: compilation cached
    if not isinstance(learner.module, RecurrentLM):
        return one.flops, one.temp_bytes
    length = task.segment_length
    if length % 2:
        return count(length).flops, one.temp_bytes  # fully unrolled: no loop left to undercount
    return one.flops + (length - 1) * (count(2).flops - one.flops), one.temp_bytes


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
        if name == "transformer":
            settings = dict(settings, max_len=config.window)
        module, _ = models.make_model(name, settings, vocab_size=task.vocab_size, length=config.window)
        plans.append((name, module))
    return task, plans


def run_learner(learner: Learner, tx, task: DriftingCopyStream, sample, config, writer) -> list[dict]:
    """Consume the stream once (``sample(index)`` gives segment ``index``); one row per segment, with
    metrics fetched in blocks, not every segment."""
    params = jax.tree.map(lambda x: jnp.array(x, copy=True), learner.params)
    opt_state = tx.init(params)
    memory = jax.tree.map(lambda x: jnp.array(x, copy=True), learner.memory)
    memory_bytes = profiling.tree_bytes(memory)
    pending, rows, start = [], [], time.perf_counter()
    for index in range(config.num_segments):
        params, opt_state, memory, scores = learner.step(params, opt_state, memory, sample(index))
        pending.append(scores)
        if len(pending) == 100 or index + 1 == config.num_segments:
            for offset, s in enumerate(jax.device_get(pending)):
                i = index + 1 - len(pending) + offset
                rows.append(
                    dict(
                        model=learner.name,
                        stream_step=i,
                        accuracy=float(s["accuracy"]),
                        loss=float(s["loss"]),
                        tokens_seen=(i + 1) * task.segment_length,
                        memory_bytes=memory_bytes,
                        regime=int(task.regime(i)),
                        lag=int(task.lag(i)),
                    )
                )
            recent = float(np.mean([r["accuracy"] for r in rows[-len(pending) :]]))
            writer.write(
                dict(
                    kind="progress",
                    model=learner.name,
                    stream_step=index + 1,
                    accuracy=recent,
                    seconds=time.perf_counter() - start,
                )
            )
            pending = []
    logging.info(
        "%-12s %d segments in %.1fs; last 100 accuracy %.3f",
        learner.name,
        config.num_segments,
        time.perf_counter() - start,
        recent,
    )
    return rows


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
                learned_before=int(learned),
                recovery_segments=found[0] if found else "",
                recovered=int(bool(found)),
                target_fraction=fraction,
            )
        )
    return out


def summary_row(learner: Learner, tx, task, config, key, rows, recoveries, seconds: float) -> dict:
    """Compute and memory per token from XLA's analyses of the train step; accuracy; mean recovery."""
    flops, temp = step_cost(learner, tx, task, config, key)
    tokens = config.num_streams * task.segment_length
    recovered = [r["recovery_segments"] for r in recoveries if r["recovered"]]
    return dict(
        model=learner.name,
        params=models.count_params(learner.params),
        flops_per_token=flops / tokens,
        temp_bytes_per_token=temp / tokens,
        memory_bytes=profiling.tree_bytes(learner.memory),
        memory_bytes_per_stream=profiling.tree_bytes(learner.memory) // config.num_streams,
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
        models={
            name: dict(type=type(m).__name__, window=config.window if name == "transformer" else None)
            for name, m in plans
        },
    )
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)
    key = jax.random.key(config.seed)
    init_key, stream_key = jax.random.split(key)
    tx = optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.adam(config.learning_rate))
    sample = jax.jit(lambda index: task.segment(stream_key, index, config.num_streams))  # same stream for all
    rows, recoveries, summary = [], [], []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for name, module in plans:
            params = models.init_params(module, init_key, config.window)
            learner = make_learner(name, module, params, tx, config)
            start = time.perf_counter()
            new = run_learner(learner, tx, task, sample, config, writer)
            seconds = time.perf_counter() - start
            changes = recovery_rows(new, task, config.recovery_smooth, config.recovery_fraction)
            summary.append(summary_row(learner, tx, task, config, stream_key, new, changes, seconds))
            writer.write(dict(kind="summary", **summary[-1]))
            rows, recoveries = rows + new, recoveries + changes
            io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)
    io.write_csv(path / "recovery.csv", recoveries, RECOVERY_COLUMNS)
    io.write_csv(path / "summary.csv", summary)
    figures = plotting.plot_workdir(path)
    logging.info("wrote %s", ", ".join(str(f) for f in figures))
    return path
