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

import os
import pathlib

import jax
import orbax.checkpoint as ocp
from absl import logging


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
        """The latest checkpoint, in the structure (and static fields: apply_fn, tx) of ``like``."""
        step = self.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        logging.info("restored step %d from %s", step, self.directory)
        return state

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
