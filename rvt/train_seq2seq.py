"""Training and teacher-forced evaluation of the encoder-decoder models of :mod:`rvt.models.seq2seq`.

The same pattern as :mod:`rvt.train` (whose optimizer, TrainConfig, TrainState and TrainResult it
reuses): a pure ``train_step(state, batch)``, fused with the task's sampler -- batch ``step`` from
``fold_in(key, step)`` -- and jitted once with the state donated; metrics reach the host only every
``log_every`` steps. Only the model call differs: ``apply(params, src, tgt_in)``.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rvt import metrics
from rvt.tasks.seq2seq import Seq2SeqBatch, SourceTarget
from rvt.train import TrainConfig, TrainResult, TrainState, create_state, run_steps
from rvt.typing import Array, PRNGKey


def _hits(logits_BxTxV: Array, batch: Seq2SeqBatch) -> Array:
    return (jnp.argmax(logits_BxTxV, axis=-1) == batch.tgt_out).astype(jnp.float32) * batch.mask


def loss_fn(params, apply_fn, batch: Seq2SeqBatch):
    logits_BxTxV = apply_fn({"params": params}, batch.src, batch.tgt_in)
    ce_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, batch.tgt_out)
    return jnp.sum(ce_BxT * batch.mask) / jnp.maximum(jnp.sum(batch.mask), 1.0), logits_BxTxV


def train_step(state: TrainState, batch: Seq2SeqBatch) -> tuple[TrainState, dict[str, Array]]:
    """One optimizer step; metrics include gradient and parameter norms (before the update)."""
    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, state.apply_fn, batch)
    step_metrics = dict(
        loss=loss,
        accuracy=jnp.sum(_hits(logits, batch)) / jnp.maximum(jnp.sum(batch.mask), 1.0),
        grad_norm=optax.tree.norm(grads),
        param_norm=optax.tree.norm(state.params),
    )
    return state.apply_gradients(grads=grads), step_metrics


def make_train_step(task: SourceTarget, batch_size: int, key: PRNGKey):
    """Jitted ``(state) -> (state, metrics)``: samples batch ``state.step`` and trains on it."""

    def step(state: TrainState):
        return train_step(state, task.sample(jax.random.fold_in(key, state.step), batch_size))

    return jax.jit(step, donate_argnums=0)


def eval_sums(logits_BxTxV: Array, batch: Seq2SeqBatch) -> dict[str, Array]:
    """Additive statistics: the scalars :func:`rvt.metrics.summarize` reads, and [T] per-position tables."""
    ce_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, batch.tgt_out)
    hits_BxT = _hits(logits_BxTxV, batch)
    return dict(
        **metrics.token_sums(ce_BxT, hits_BxT, batch.mask),
        position_correct=jnp.sum(hits_BxT, axis=0),
        position_count=jnp.sum(batch.mask, axis=0),
    )


def evaluate(state: TrainState, task: SourceTarget, config: TrainConfig, key: PRNGKey) -> dict:
    """Teacher-forced statistics summed over ``eval_batches`` fresh batches (keys apart from training)."""

    @jax.jit
    def one(params, key):
        batch = task.sample(key, config.eval_batch_size)
        return eval_sums(state.apply_fn({"params": params}, batch.src, batch.tgt_in), batch)

    sums = None
    for i in range(config.eval_batches):
        batch_sums = one(state.params, jax.random.fold_in(key, i))
        sums = batch_sums if sums is None else jax.tree.map(jnp.add, sums, batch_sums)
    return jax.device_get(sums)


def position_rows(sums: dict) -> list[dict]:
    """One row per target position: ``position, accuracy``."""
    correct_T, count_T = np.asarray(sums["position_correct"]), np.asarray(sums["position_count"])
    return [dict(position=t, accuracy=float(correct_T[t] / max(count_T[t], 1.0))) for t in range(len(count_T))]


def train(
    model: nn.Module,
    params,
    task: SourceTarget,
    config: TrainConfig,
    key: PRNGKey,
    on_log: Callable[[dict[str, float]], None] = lambda record: None,
    name: str = "",
) -> TrainResult:
    """Train for ``config.steps`` steps; every ``log_every`` steps log and call ``on_log(record)``."""
    state = create_state(model, params, config)
    return run_steps(state, make_train_step(task, config.batch_size, key), config, on_log, name)
