"""The one training loop: a pure, jit-once train step over one TrainState pytree, and the loop around it.

``make_train_step(sample_fn, forward)`` builds ``step(state) -> (state, metrics)``: batch ``state.step``
comes from ``sample_fn`` (a task's ``fold_in(key, step)`` batch, or segment ``step`` of a stream), the
model call from ``forward`` (a language model, an encoder-decoder, a model continuing a stream). The
state is donated, no data crosses from the host, and what a learner carries between steps (a recurrent
state, a context window) lives in ``TrainState.memory``. :func:`run_steps` is the loop: compilation
timed apart, metrics fetched only every ``log_every`` steps, checkpoints. Evaluation compiles once per
model, task and batch size (:func:`make_eval_step`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from rvt import metrics as metrics_lib
from rvt import sharding
from rvt.checkpoint import Checkpoints
from rvt.errors import check, check_positive_int
from rvt.loop import NonFiniteError, TrainResult, run_steps  # noqa: F401  (the loop lives there)
from rvt.tasks.base import Batch, Task
from rvt.typing import PRNGKey

SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 500
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    eval_batches: int = 8
    eval_batch_size: int = 256
    log_every: int = 50
    checkpoint_every: int = 0  # save the TrainState every this many steps (and at the end); 0: never
    schedule: str = "cosine"  # "cosine" (warmup, then decay to 10%) or "constant"
    # A grid of learning rates: every one is trained and the one whose mean validation score over the
    # seeds is best is kept (rvt.studies.common.train_seeds); () : learning_rate alone
    learning_rates: tuple[float, ...] = ()

    def validate(self) -> None:
        for field in ("steps", "batch_size", "eval_batches", "eval_batch_size", "log_every"):
            value = getattr(self, field)
            check_positive_int(value, f"train.{field}")
        check(
            isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 0,
            "train.checkpoint_every",
            f"must be an integer >= 0 (0: no checkpoints), got {self.checkpoint_every!r}",
        )
        check(self.schedule in SCHEDULES, "train.schedule", f"must be one of {SCHEDULES}, got {self.schedule!r}")
        for field in ("learning_rate", "weight_decay", "grad_clip"):
            value = getattr(self, field)
            check(
                isinstance(value, int | float) and math.isfinite(value),
                f"train.{field}",
                f"must be a finite number, got {value!r}",
            )
        check(self.learning_rate > 0, "train.learning_rate", f"must be > 0, got {self.learning_rate}")
        for rate in self.learning_rates:
            check(
                isinstance(rate, int | float) and math.isfinite(rate) and rate > 0,
                "train.learning_rates",
                f"every rate must be a finite number > 0, got {rate!r}",
            )

    @property
    def grid(self) -> tuple[TrainConfig, ...]:
        """One config per learning rate of the grid (or this config alone, without a grid)."""
        rates = self.learning_rates or (self.learning_rate,)
        return tuple(dataclasses.replace(self, learning_rate=float(r), learning_rates=()) for r in rates)
        check(self.warmup_steps >= 0, "train.warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        check(self.grad_clip > 0, "train.grad_clip", f"must be > 0, got {self.grad_clip}")
        check(self.weight_decay >= 0, "train.weight_decay", f"must be >= 0, got {self.weight_decay}")


@functools.lru_cache(maxsize=64)
def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """AdamW after global-norm clipping; ``cosine``: linear warmup then cosine decay to 10%, ``constant``:
    the same rate throughout (an online learner has no end to decay towards).

    Cached, one object per config: the optimizer is a static field of the TrainState, so a new but equal
    optimizer would make every new state compile the train step again."""
    if config.schedule == "constant":
        schedule = optax.constant_schedule(config.learning_rate)
    else:
        schedule = optax.warmup_cosine_decay_schedule(
            init_value=0.0,
            peak_value=config.learning_rate,
            warmup_steps=min(config.warmup_steps, config.steps - 1),
            decay_steps=config.steps,
            end_value=0.1 * config.learning_rate,
        )
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(schedule, weight_decay=config.weight_decay),
    )


class TrainState(train_state.TrainState):
    """Params, optimizer state and step -- plus ``memory``, what a learner carries from one step to the
    next (online learning: the model's recurrent state or context window; None elsewhere)."""

    memory: Any = None


def create_seed_states(model: nn.Module, params_S, config: TrainConfig, memory: Any = None) -> TrainState:
    """One TrainState per seed, stacked on a leading axis: ``params_S`` is a params tree with one. The
    seeds are split over the devices where their count divides evenly (:func:`rvt.sharding.seeds_divide`),
    else replicated."""
    states = jax.vmap(lambda params: _new_state(model, params, config, memory))(params_S)
    seeds = jax.tree.leaves(params_S)[0].shape[0]
    return sharding.place_seeds(states) if sharding.seeds_divide(seeds) else sharding.replicate(states)


def create_state(model: nn.Module, params, config: TrainConfig, memory: Any = None) -> TrainState:
    """A fresh TrainState (step 0, optimizer initialised), replicated on every device of the mesh."""
    return sharding.replicate(_new_state(model, params, config, memory))


def _new_state(model: nn.Module, params, config: TrainConfig, memory: Any = None) -> TrainState:
    memory = jax.tree.map(jnp.copy, memory)  # a donated state must not hold one buffer twice
    state = TrainState.create(apply_fn=model.apply, params=params, tx=make_optimizer(config), memory=memory)
    # TrainState.create starts from the Python int 0; the step returns an int32 array. Starting from
    # the array keeps step 2 on step 1's compiled executable instead of compiling a second one.
    return state.replace(step=jnp.zeros((), jnp.int32))


# A forward pass: (apply_fn, params, memory, batch) -> (memory, logits). One per kind of model call;
# everything else about a train or eval step is shared.
Forward = Callable[[Callable, Any, Any, Any], tuple[Any, jax.Array]]


def lm_forward(apply_fn, params, memory, batch: Batch):
    """A language model on ``batch.inputs``; nothing carried."""
    return memory, apply_fn({"params": params}, batch.inputs)


def stream_forward(apply_fn, params, memory, batch: Batch):
    """One segment of an endless stream, continuing from ``memory`` (the model's ``stream`` method)."""
    return apply_fn({"params": params}, memory, batch.inputs, method="stream")


def seq2seq_forward(apply_fn, params, memory, batch):
    """An encoder-decoder, teacher-forced: (source, decoder inputs) -> logits over the targets."""
    return memory, apply_fn({"params": params}, batch.src, batch.tgt_in)


# A sampler: (data key, step) -> batch. The key is the seed's own; step is the state's.
Sampler = Callable[[PRNGKey, jax.Array], Any]


@dataclasses.dataclass(frozen=True)
class TrainStep:
    """``step(state) -> (state, metrics)``: the jitted step bound to its data key (one key, or one per
    seed when the state is stacked on a seed axis). ``fn(state, key)`` is the step itself, unjitted."""

    fn: Callable
    jitted: Callable
    key: Any

    def __call__(self, state):
        return self.jitted(state, self.key)

    def lower(self, state):
        return self.jitted.lower(state, self.key)


def make_train_step(sample_fn: Sampler, key: PRNGKey, forward: Forward = lm_forward, seed_axis: bool | str = False):
    """Bind :func:`jitted_train_step` to a data key (see there): ``step(state) -> (state, metrics)``."""
    fn, jitted = jitted_train_step(sample_fn, forward, seed_axis)
    return TrainStep(fn, jitted, key)


@functools.lru_cache(maxsize=64)
def jitted_train_step(sample_fn: Sampler, forward: Forward = lm_forward, seed_axis: bool | str = False):
    """``(step(state, key), jitted step)`` on batch ``sample_fn(key, state.step)``, the state donated.

    The loss is the masked cross-entropy of ``batch.targets``; metrics are computed from the logits of
    the params *before* the update (for a stream: each segment is scored before it is learnt) and include
    gradient and parameter norms. What ``forward`` returns as memory is carried to the next step without
    gradient (truncated backpropagation through time). With ``seed_axis``, the state (params, optimizer
    state, memory) and ``key`` carry a leading seed axis and the step is vmapped over it: several seeds
    in one program; ``seed_axis="split"`` (:data:`SEEDS_SPLIT`): the seeds are split over the devices,
    and each device trains its own seeds on whole batches.
    """

    def loss_fn(params, state: TrainState, batch):
        memory, logits = forward(state.apply_fn, params, state.memory, batch)
        return metrics_lib.masked_cross_entropy(logits, batch), (memory, logits)

    def step(state: TrainState, key):
        batch = sample_fn(key, state.step)
        if seed_axis != SEEDS_SPLIT:
            batch = sharding.shard_batch(batch)  # split over every device (seeds split: each device its own)
        (loss, (memory, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, state, batch)
        step_metrics = dict(
            loss=loss,
            accuracy=metrics_lib.accuracy(logits, batch),
            grad_norm=optax.tree.norm(grads),
            param_norm=optax.tree.norm(state.params),
        )
        state = state.apply_gradients(grads=grads).replace(memory=jax.lax.stop_gradient(memory))
        return state, step_metrics

    fn = jax.vmap(step) if seed_axis else step
    return fn, jax.jit(fn, donate_argnums=0)  # cached: every seed, chunk and model of a run shares it


SEEDS_SPLIT = "split"  # seed_axis value: seeds on a vmapped axis, split over the devices


@functools.lru_cache(maxsize=64)
def task_sampler(task: Task, batch_size: int) -> Sampler:
    """Batch ``step`` of a task: a pure function of ``fold_in(key, step)`` (one object per task and batch
    size, so the jitted train step built on it is reused)."""
    return lambda key, step: task.sample(jax.random.fold_in(key, step), batch_size)


@functools.lru_cache(maxsize=64)
def make_eval_step(task, batch_size: int, apply_fn, forward: Forward = lm_forward, sums_fn=None, seed_axis=False):
    """Jitted ``(params, key) -> additive eval statistics`` on a fresh batch; built (and compiled) once per
    model, task and batch size -- the cache returns the same function to every later call."""
    sums_fn = sums_fn or (lambda logits, batch: metrics_lib.eval_sums(logits, batch, task.max_distance + 1))

    def evaluate_batch(params, key):
        batch = sharding.shard_batch(task.sample(key, batch_size))
        return sums_fn(forward(apply_fn, params, None, batch)[1], batch)

    return jax.jit(jax.vmap(evaluate_batch, in_axes=(0, None)) if seed_axis else evaluate_batch)


def evaluate(
    state: TrainState, task, config: TrainConfig, key: PRNGKey, forward=lm_forward, sums_fn=None, seed_axis=False
):
    """Sum eval statistics over ``config.eval_batches`` held-out batches (keys disjoint from training).
    With ``seed_axis``, every seed is scored on the same held-out batches; the sums gain a seed axis (a
    seed axis of size 1 is evaluated without vmap, which on CPU costs some models twice the time)."""
    params = state.params
    single = seed_axis and jax.tree.leaves(params)[0].shape[0] == 1
    if single:
        params = jax.tree.map(lambda x: x[0], params)
    eval_step = make_eval_step(task, config.eval_batch_size, state.apply_fn, forward, sums_fn, seed_axis and not single)
    sums = None
    for i in range(config.eval_batches):
        batch_sums = eval_step(params, jax.random.fold_in(key, i))
        sums = batch_sums if sums is None else jax.tree.map(jnp.add, sums, batch_sums)
    sums = jax.device_get(sums)
    return jax.tree.map(lambda x: x[None], sums) if single else sums


def train(
    model: nn.Module,
    params,
    task: Task,
    config: TrainConfig,
    key: PRNGKey,
    on_log: Callable[[dict[str, float]], None] = lambda record: None,
    name: str = "",
    checkpoints: Checkpoints | None = None,
    forward: Forward = lm_forward,
    seed_axis: bool = False,
) -> TrainResult:
    """Train on ``task`` for ``config.steps`` steps; every ``log_every`` steps log and call ``on_log(record)``.

    With ``seed_axis``, ``params`` and ``key`` carry a leading seed axis and every seed trains in one
    vmapped program. With ``checkpoints``, training resumes from the latest good checkpoint there and
    saves new ones.
    """
    state = (create_seed_states if seed_axis else create_state)(model, params, config)
    if seed_axis and sharding.seeds_divide(jax.tree.leaves(params)[0].shape[0]):
        seed_axis, key = SEEDS_SPLIT, sharding.place_seeds(key)
    step_fn = make_train_step(task_sampler(task, config.batch_size), key, forward, seed_axis)
    return run_steps(state, step_fn, config, on_log, name, checkpoints)
