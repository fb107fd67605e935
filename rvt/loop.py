"""The loop around a train step: compilation timed apart, metrics fetched in blocks, checkpoints, a
stop on non-finite loss, and progress a person can follow.

``run_steps(state, step_fn, config)`` runs any ``step_fn(state) -> (state, metrics)`` that samples its own
batch from ``state.step`` (see :func:`rvt.train.make_train_step`). Metrics reach the host only every
``log_every`` steps (and before every checkpoint), so the device never waits on Python. A NaN or Inf loss
stops the run with :class:`NonFiniteError` naming the step and the value, before anything non-finite is
saved: the last good checkpoint stays. A state with a seed axis logs the mean over seeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from absl import logging

from rvt.errors import ConfigError


class NonFiniteError(ConfigError):
    """Training produced a NaN or Inf loss (the message names the model, the step and the value)."""


@dataclasses.dataclass
class TrainResult:
    state: Any
    compile_s: float  # first step: trace + compile + run
    train_s: float  # every later step, checkpoint saves excluded
    history: list[dict[str, float]]  # one record per log interval (metrics averaged over it and the seeds)
    # every step's metrics (per seed), on a resumed run those before the restart too (from the checkpoint)
    steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    start_step: int = 0  # the step training resumed at (0: from scratch; == steps: restored, not trained)
    checkpoint_s: float = 0.0  # time spent saving checkpoints
    learning_rate: float | None = None  # the rate it trained with (with a grid: the one validation chose)

    @property
    def steps_per_s(self) -> float | None:
        """Train steps per second after the compiling one; None where fewer than two steps ran here."""
        timed = self.end_step - self.start_step - 1
        return timed / self.train_s if timed > 0 and self.train_s > 0 else None

    @property
    def end_step(self) -> int:
        return int(np.max(jax.device_get(self.state.step)))


def _check_finite(fetched: list[dict], first_step: int, name: str) -> None:
    for offset, step_metrics in enumerate(fetched):
        loss = np.asarray(step_metrics["loss"])
        if not np.all(np.isfinite(loss)):
            value = loss[~np.isfinite(loss)].flat[0]
            raise NonFiniteError(
                f"{name or 'model'}: the loss became {value} at step {first_step + offset}; training stopped "
                "(the last finite checkpoint is kept). Lower train.learning_rate or check the settings."
            )


class _Progress:
    """A live progress line on a terminal (rich), one log line per interval elsewhere."""

    def __init__(self, name: str, total: int, done: int):
        self.name, self.total = name, total
        self._bar = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn()
            )
            self._task = self._bar.add_task(name, total=total, completed=done, info="")
            self._bar.start()

    def update(self, record: dict) -> None:
        info = f"loss {record['loss']:.4f}  acc {record['accuracy']:.3f}  {record['steps_per_s']:.1f} steps/s"
        if self._bar is not None:
            self._bar.update(self._task, completed=record["step"], info=info)
        else:
            eta = (self.total - record["step"]) / max(record["steps_per_s"], 1e-9)
            logging.info("%s step %d/%d  %s  ETA %.0fs", self.name, record["step"], self.total, info, eta)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def run_steps(
    state,
    step_fn: Callable,
    config,
    on_log: Callable[[dict[str, float]], None] = lambda record: None,
    name: str = "",
    checkpoints=None,
) -> TrainResult:
    """Run ``step_fn`` until ``config.steps``; every ``log_every`` steps average the metrics, call
    ``on_log(record)`` and show progress. ``checkpoints``: restore the latest good one before the first step
    (a run already complete returns at once, with no history) and save every ``checkpoints.every`` steps
    and after the last."""
    done, earlier = int(np.max(jax.device_get(state.step))), []  # a state may arrive part-trained
    restored = checkpoints.restore(state) if checkpoints is not None else None
    if restored is not None:
        state = restored
        done = int(np.max(jax.device_get(state.step)))
        earlier = checkpoints.restored_steps[:done]  # the per-step metrics of the steps already taken
        logging.info("%s resumed at step %d/%d", name, done, config.steps)
        if done >= config.steps:
            return TrainResult(state, 0.0, 0.0, [], earlier, start_step=done)
    progress = _Progress(name, config.steps, done)
    try:
        with _stop_between_steps() as stop:
            return _loop(state, step_fn, config, on_log, name, checkpoints, done, progress, stop, earlier)
    finally:
        progress.close()


@contextlib.contextmanager
def _stop_between_steps():
    """Ctrl-C (SIGINT) and SIGTERM request a stop that the loop honours between steps, after saving a
    checkpoint: KeyboardInterrupt raised inside a step or a checkpoint save can hang orbax's threads and
    loses the steps since the last save. Outside the main thread nothing is installed."""
    requested = []
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return
    handler = lambda signum, frame: requested.append(signum)
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _loop(state, step_fn, config, on_log, name, checkpoints, done, progress, stop, earlier) -> TrainResult:
    start = time.perf_counter()
    state, first = step_fn(state)
    jax.block_until_ready(first)
    compile_s = time.perf_counter() - start
    completed, pending, history, every_step, since_log = done + 1, [first], [], list(earlier), []
    start = last_time = time.perf_counter()
    last_completed = completed  # steps/s counts the steps after the compiling one
    saving_s = paused_s = 0.0  # all checkpoint time; and since the last log (kept out of steps/s)
    while True:
        stopping = bool(stop)  # read once: a signal arriving later waits for the next step
        due = checkpoints is not None and (checkpoints.due(completed, config.steps) or stopping)
        if completed % config.log_every == 0 or completed == config.steps or due:
            fetched = jax.device_get(pending)  # the only host sync in the loop
            _check_finite(fetched, completed - len(fetched) + 1, name)
            every_step += [{k: np.asarray(v).tolist() for k, v in m.items()} for m in fetched]
            since_log += fetched
            if completed % config.log_every == 0 or completed == config.steps:
                now = time.perf_counter()
                record = {k: float(np.mean([np.mean(m[k]) for m in since_log])) for k in since_log[0]}
                steps_per_s = (completed - last_completed) / max(now - last_time - paused_s, 1e-9)
                record.update(step=completed, steps_per_s=steps_per_s)
                progress.update(record)
                on_log(record)
                history.append(record)
                last_time, last_completed, paused_s, since_log = now, completed, 0.0, []
            pending = []
        if due:
            save_start = time.perf_counter()
            checkpoints.save(completed, state, every_step)
            paused_s += time.perf_counter() - save_start
            saving_s += time.perf_counter() - save_start
        if stopping:
            logging.info("%s interrupted at step %d/%d", name, completed, config.steps)
            raise KeyboardInterrupt
        if completed >= config.steps:
            break
        state, step_metrics = step_fn(state)
        pending.append(step_metrics)
        completed += 1
    jax.block_until_ready(state)
    train_s = time.perf_counter() - start - saving_s
    return TrainResult(state, compile_s, train_s, history, every_step, start_step=done, checkpoint_s=saving_s)
