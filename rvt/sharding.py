"""Every local device through one code path: a 1-D mesh over a ``data`` axis, batches split over it,
parameters and optimizer state replicated. On one device every call here is a no-op.

The train step samples its batch on device (from ``fold_in(key, step)``); :func:`shard_batch` constrains
that batch to be split along its batch axis, and XLA's SPMD partitioner splits the computation that
follows, adding the gradient all-reduce. Several seeds trained in one vmapped program whose count the
devices divide are split over the devices instead (:func:`place_seeds`): each device trains whole
seeds, with no communication. Several hosts: start every process with
``jax.distributed.initialize()`` (the apps' ``--distributed`` flag) and the mesh spans every device.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA = "data"


@functools.lru_cache(maxsize=1)
def data_mesh() -> Mesh:
    """All devices (of every process) on one ``data`` axis."""
    return Mesh(jax.devices(), (DATA,))


def shard_batch(batch: Any, axis: int = 0) -> Any:
    """Constrain every array of ``batch`` to be split over the mesh along ``axis`` (its batch axis), where
    the batch divides evenly; left as it is on one device or where it does not divide."""
    mesh = data_mesh()
    if mesh.size == 1:
        return batch

    def constrain(x):
        if x.ndim <= axis or x.shape[axis] % mesh.size:
            return x
        spec = PartitionSpec(*([None] * axis), DATA)
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))

    return jax.tree.map(constrain, batch)


def seeds_divide(num_seeds: int) -> bool:
    """Whether a seed axis of ``num_seeds`` is split over the devices (it divides evenly, several devices):
    then each device trains its own seeds on whole batches and the step needs no communication at all."""
    size = data_mesh().size
    return size > 1 and num_seeds % size == 0


def place_seeds(tree: Any) -> Any:
    """Place a pytree stacked on a leading seed axis with the seeds split over the devices."""
    return jax.device_put(tree, NamedSharding(data_mesh(), PartitionSpec(DATA)))


def replicate(tree: Any) -> Any:
    """Place a pytree (params, optimizer state) on every device of the mesh."""
    mesh = data_mesh()
    if mesh.size == 1:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
