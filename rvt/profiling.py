"""Honest timing and cost accounting: compile separated from run, medians, XLA's own counts.

* :func:`time_fn` jits once, times the first call (trace + compile + run) apart from the rest, blocks
  on results before reading the clock, and returns the median of repeated runs.
* :func:`cost` reads FLOPs and bytes from XLA's cost and memory analyses of the compiled function,
  without running it (so it works for sizes that would not fit).
* :func:`profile` does both from one compilation; :func:`loop_corrected_flops` undoes XLA's habit of
  counting a loop body once, whatever its trip count (a ``lax.scan`` over T steps).
* :func:`matmul_peak` measures this machine's achieved matmul FLOP/s, the peer every utilisation
  figure is divided by, in the same process.
* :func:`fit_exponent` is the log-log least-squares slope used for "time grows like T^k".
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Timing:
    compile_s: float  # first call: trace, compile and one run
    median_s: float  # median over `repeats` later calls
    runs_s: tuple[float, ...]
    cpu_runs_s: tuple[float, ...] = ()  # process CPU time of each run, all threads (see median_cpu_s)

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.runs_s, q))

    @property
    def median_cpu_s(self) -> float:
        """Median CPU time of a run: on a CPU backend, the work done, whoever else shares the cores.

        Wall time on a shared machine grows when other processes preempt a long run; CPU time does not.
        It sums XLA's threads, so it exceeds wall time when an op runs on several cores. Meaningless on
        an accelerator (the host only waits).
        """
        return statistics.median(self.cpu_runs_s) if self.cpu_runs_s else float("nan")


def time_fn(fn: Callable, *args, repeats: int = 10, min_time_s: float = 0.0, jit: bool = True) -> Timing:
    """Time ``fn(*args)``; repeats at least ``repeats`` times and at least ``min_time_s`` seconds."""
    fn = jax.jit(fn) if jit else fn
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - start
    return _timing(compile_s, lambda: fn(*args), repeats, min_time_s)


def _timing(compile_s: float, call: Callable, repeats: int, min_time_s: float) -> Timing:
    runs, cpu_runs, total = [], [], 0.0
    while len(runs) < repeats or total < min_time_s:
        start, cpu_start = time.perf_counter(), time.process_time()
        jax.block_until_ready(call())
        runs.append(time.perf_counter() - start)
        cpu_runs.append(time.process_time() - cpu_start)
        total += runs[-1]
    return Timing(compile_s, statistics.median(runs), tuple(runs), tuple(cpu_runs))


@dataclasses.dataclass(frozen=True)
class Cost:
    flops: float  # XLA cost analysis; 0 where the backend gives none
    bytes_accessed: float
    argument_bytes: int  # XLA memory analysis of the compiled executable
    output_bytes: int
    temp_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.argument_bytes + self.output_bytes + self.temp_bytes


def cost(fn: Callable, *args: Any) -> Cost:
    """FLOPs and memory of ``jit(fn)(*args)`` from XLA's analyses; ``args`` may be ShapeDtypeStructs."""
    return _analyse(jax.jit(fn).lower(*args).compile())


def _analyse(compiled) -> Cost:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, Sequence):  # older jax returned one dict per computation
        analysis = analysis[0] if analysis else {}
    analysis = analysis or {}
    memory = compiled.memory_analysis()
    return Cost(
        flops=float(analysis.get("flops", 0.0)),
        bytes_accessed=float(analysis.get("bytes accessed", 0.0)),
        argument_bytes=int(getattr(memory, "argument_size_in_bytes", 0)),
        output_bytes=int(getattr(memory, "output_size_in_bytes", 0)),
        temp_bytes=int(getattr(memory, "temp_size_in_bytes", 0)),
    )


def profile(fn: Callable, *args, repeats: int = 10, min_time_s: float = 0.0) -> tuple[Timing, Cost]:
    """:func:`time_fn` and :func:`cost` from one compilation (compiling twice doubles a sweep's time).

    ``compile_s`` covers lowering, compiling and the first run, as in :func:`time_fn`.
    """
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    compile_s = time.perf_counter() - start
    return _timing(compile_s, lambda: compiled(*args), repeats, min_time_s), _analyse(compiled)


def loop_corrected_flops(flops: float, step_flops: float, trips: int) -> float:
    """A scan's true FLOPs from XLA's count, which charges a while loop's body once, not once per trip.

    (Seen on jax 0.10 / XLA CPU: ``lax.scan`` of ten matmuls reports the FLOPs of one.) ``flops`` is the
    count of the function compiled with one step per loop body (``unroll=1``); ``step_flops`` is what one
    more step adds, i.e. the count with ``unroll=2`` minus the count with ``unroll=1`` at an even length.
    """
    return flops + (trips - 1) * step_flops


def matmul_peak(size: int = 1024, dtype=jnp.float32, repeats: int = 10) -> float:
    """Achieved FLOP/s of a square ``size`` matmul on the default device: the utilisation yardstick."""
    a = jax.random.normal(jax.random.key(0), (size, size), dtype)
    timing = time_fn(lambda x, y: x @ y, a, a, repeats=repeats)
    return 2.0 * size**3 / timing.median_s


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Slope k of log y = k log x + c (least squares): y grows like x^k."""
    slope, _ = np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)
    return float(slope)


def upper_half(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """The points with x in the upper half of the grid (where asymptotic growth shows)."""
    pairs = sorted(zip(xs, ys, strict=True))
    half = pairs[len(pairs) // 2 :] if len(pairs) > 2 else pairs
    return [x for x, _ in half], [y for _, y in half]


def tree_bytes(tree: Any) -> int:
    """Bytes held by every array leaf of a pytree (params, an RNN state, a KV cache)."""
    return int(sum(np.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))
