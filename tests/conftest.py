"""Strict JAX for every test (equinox's conftest does the same): implicit rank promotion raises, so a
broadcast must be written out; and a helper that counts XLA compilations, to catch silent recompiles.

Tests compile many identical small programs (the same tiny model in several tests, and again in every
experiment subprocess), so they share jax's persistent compilation cache, in a temporary folder shared by
the xdist workers and their subprocesses, and compile without XLA's costlier CPU optimisations. A cache hit
still counts as a compilation in count_compiles.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "rvt-tests-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# Tests run tiny programs once: XLA's CPU backend optimisations cost more compile time than they save
# (about a quarter of the suite's time). Results are the same to float tolerance; benchmarks keep them.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    ).strip()

import jax  # noqa: E402
from jax import monitoring  # noqa: E402

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
