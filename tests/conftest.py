"""Strict JAX for every test (equinox's conftest does the same): implicit rank promotion raises, so a
broadcast must be written out; and a helper that counts XLA compilations, to catch silent recompiles."""

from __future__ import annotations

import contextlib

import jax
from jax import monitoring

jax.config.update("jax_numpy_rank_promotion", "raise")

_compiles = [0]


def _count(name: str, duration: float, **kwargs) -> None:
    if name == "/jax/core/compile/backend_compile_duration":
        _compiles[0] += 1


monitoring.register_event_duration_secs_listener(_count)


@contextlib.contextmanager
def count_compiles():
    """``with count_compiles() as n: ...``; afterwards ``n()`` is the number of XLA compilations inside."""
    start = _compiles[0]
    end = []
    yield lambda: (end[0] if end else _compiles[0]) - start
    end.append(_compiles[0])
