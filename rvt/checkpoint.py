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

import hashlib
import logging as std_logging
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from rvt.errors import ConfigError


def digest(tree) -> str:
    """sha256 over every leaf's dtype, shape and bytes: a checkpoint whose bytes changed on disk (a flipped
    bit that still decodes to finite numbers) no longer matches the digest saved with it."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        array = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{array.dtype}{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


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
    """The checkpoints of one training run in ``directory`` (one subfolder per saved step).

    Each step saves the state and, beside it, a small JSON record: the state's :func:`digest` and ``tag``
    (the run's config digest, ``rvt.io.config_digest``). A restore accepts only a checkpoint whose tag
    is this run's and whose restored state has the saved digest and finite values.
    """

    def __init__(self, directory: str | os.PathLike, every: int, keep: int = 2, tag: str = ""):
        if every <= 0:
            raise ValueError(f"every must be positive, got {every}")
        self.directory = pathlib.Path(directory).expanduser().absolute()  # orbax wants an absolute path
        self.every = every
        self.tag = tag
        self.restored_steps: list[dict] = []  # the per-step metrics saved with the restored checkpoint
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
                args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
                restored = self._manager.restore(step, args=args)
                state, meta = restored.state, restored.meta
            except Exception as e:  # noqa: BLE001 -- any unreadable checkpoint: fall back to an older one
                logging.warning(
                    "checkpoint %d in %s does not restore (%s); trying an older one", step, self.directory, e
                )
                continue
            if not isinstance(meta, dict) or meta.get("tag") != self.tag:
                logging.warning(
                    "checkpoint %d in %s belongs to another config; trying an older one", step, self.directory
                )
                continue
            if meta.get("digest") != digest(state):
                logging.warning(
                    "checkpoint %d in %s does not match its digest (corrupt); trying an older one", step, self.directory
                )
                continue
            if not _finite(state):
                logging.warning(
                    "checkpoint %d in %s holds non-finite values; trying an older one", step, self.directory
                )
                continue
            logging.info("restored step %d from %s", step, self.directory)
            self.restored_steps = list(meta.get("steps", []))
            return state
        if self._manager.all_steps():
            logging.warning("no checkpoint in %s restores; training starts from scratch", self.directory)
        return None

    def due(self, step: int, last: int) -> bool:
        return step % self.every == 0 or step == last

    def save(self, step: int, state, steps: list[dict] | None = None) -> None:
        """Save and wait: the caller donates ``state`` to the next step, so it must be read first.
        ``steps``: every step's metrics so far (JSON), restored with the state so a resumed run's
        per-step record is whole."""
        meta = dict(digest=digest(state), tag=self.tag, steps=steps or [])
        try:
            self._save(step, state, meta)
        except Exception as e:  # noqa: BLE001 -- orbax wraps the OSError (a full disk) in its own types
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ConfigError(f"{self.directory}: checkpoint {step} cannot be written: {reason}") from None

    def _save(self, step: int, state, meta: dict) -> None:
        self._manager.save(
            step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        )
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
