"""Checkpoints of a TrainState with orbax, so an interrupted run resumes where it stopped.

A train step draws its batch from ``fold_in(key, state.step)`` and the optimizer state is part of the
TrainState, so a resumed run takes exactly the steps the uninterrupted run would have taken: same data,
same updates, same results (tests/test_checkpoint.py proves it).

    checkpoints = Checkpoints(workdir / "checkpoints" / "lstm", every=200)
    result = train.train(module, params, task, config, key, checkpoints=checkpoints)

``train.run_steps`` restores the latest checkpoint (if any) before its first step, saves every ``every``
steps and after the last one.
"""

from __future__ import annotations

import logging as std_logging
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging


def _finite(tree) -> bool:
    leaves = [np.asarray(x) for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
    return all(np.all(np.isfinite(x)) for x in leaves)


class _QuietOrbax(std_logging.Filter):
    def filter(self, record: std_logging.LogRecord) -> bool:
        return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname


def quiet_checkpoint_logs(quiet: bool = True) -> None:
    """Drop orbax's INFO lines (hundreds per run) from the log; warnings and errors still show."""
    logger = std_logging.getLogger("absl")
    for existing in [f for f in logger.filters if isinstance(f, _QuietOrbax)]:
        logger.removeFilter(existing)
    if quiet:
        logger.addFilter(_QuietOrbax())


class Checkpoints:
    """The checkpoints of one training run in ``directory`` (one subfolder per saved step)."""

    def __init__(self, directory: str | os.PathLike, every: int, keep: int = 2):
        if every <= 0:
            raise ValueError(f"every must be positive, got {every}")
        self.directory = pathlib.Path(directory).expanduser().absolute()  # orbax wants an absolute path
        self.every = every
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, like):
        """The latest checkpoint that restores and holds only finite numbers, in the structure (and static
        fields: apply_fn, tx) of ``like``; older ones are tried in turn when the newest is truncated,
        garbage or non-finite. None where none is good (training then starts from scratch)."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
            except Exception as e:  # noqa: BLE001 -- any unreadable checkpoint: fall back to an older one
                logging.warning(
                    "checkpoint %d in %s does not restore (%s); trying an older one", step, self.directory, e
                )
                continue
            if not _finite(state):
                logging.warning(
                    "checkpoint %d in %s holds non-finite values; trying an older one", step, self.directory
                )
                continue
            logging.info("restored step %d from %s", step, self.directory)
            return state
        if self._manager.all_steps():
            logging.warning("no checkpoint in %s restores; training starts from scratch", self.directory)
        return None

    def due(self, step: int, last: int) -> bool:
        return step % self.every == 0 or step == last

    def save(self, step: int, state) -> None:
        """Save and wait: the caller donates ``state`` to the next step, so it must be read first."""
        self._manager.save(step, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
