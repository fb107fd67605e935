"""The task interface: a pure, jittable batch generator with dependency-distance labels.

A task is a frozen dataclass of its sizes. ``task.sample(key, batch_size)`` is a pure function of the
key (jit it, vmap it, call it inside a train step): it returns a :class:`Batch` whose every target
position carries its *dependency distance* -- how many positions back the input token that determines
the target stands -- or :data:`rvt.typing.NO_DISTANCE` where no single token determines it.

The invariant every task keeps (and ``tests/test_tasks.py`` proves on random configs):

    for every b, t with distance[b, t] >= 0:  inputs[b, t - distance[b, t]]  determines  targets[b, t]

and for the copy-style tasks here it *equals* it.

Tasks know nothing of models: they produce integer tokens and a vocabulary size, nothing else.
"""

from __future__ import annotations

import abc
import dataclasses

import flax.struct
import jax
import jax.numpy as jnp

from rvt.errors import ConfigError, check  # noqa: F401  (re-exported for task authors)
from rvt.typing import Array, PRNGKey


@flax.struct.dataclass
class Batch:
    """One batch of a sequence task. All fields are [B, T]."""

    inputs: Array  # int32 tokens fed to the model
    targets: Array  # int32 tokens the model must predict at each position
    mask: Array  # float32 in {0, 1}: which positions count in loss and accuracy
    distance: Array  # int32 dependency distance of each target, NO_DISTANCE where none

    @property
    def shape(self) -> tuple[int, int]:
        return self.inputs.shape


@dataclasses.dataclass(frozen=True)
class Task(abc.ABC):
    """Base class of every task: sizes as dataclass fields, data from ``sample`` alone.

    Subclasses declare their sizes as fields and provide, as fields or properties:

    * ``vocab_size`` -- number of distinct tokens in inputs and targets;
    * ``length`` -- T, the sequence length of every batch;
    * ``max_distance`` -- the largest distance any batch can carry (sizes per-distance tables);

    and implement ``validate`` (raise through :func:`check`) and ``_sample_one`` (one example,
    fields [T]; ``sample`` vmaps it).
    """

    def __post_init__(self):
        self.validate()

    @property
    def chance_accuracy(self) -> float | None:
        """Accuracy on scored targets of a model that knows where the targets are and which tokens they
        can be, but not which one (a uniform guess among them); None where the task does not define it."""
        return None

    @abc.abstractmethod
    def validate(self) -> None:
        """Raise ConfigError naming the offending field if these sizes cannot make a batch."""

    @abc.abstractmethod
    def _sample_one(self, key: PRNGKey) -> Batch:
        """One example: a Batch whose fields are [T]."""

    def sample(self, key: PRNGKey, batch_size: int) -> Batch:
        """A batch of ``batch_size`` independent examples, a pure function of ``key``."""
        keys = jax.random.split(key, batch_size)
        batch = jax.vmap(self._sample_one)(keys)
        return Batch(
            inputs=batch.inputs.astype(jnp.int32),
            targets=batch.targets.astype(jnp.int32),
            mask=batch.mask.astype(jnp.float32),
            distance=batch.distance.astype(jnp.int32),
        )
