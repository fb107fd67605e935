"""Honest timing and cost accounting: compile separated from run, medians, XLA's own counts.

* :func:`time_fn` jits once, times the first call (trace + compile + run) apart from the rest, blocks
  on results before reading the clock, and returns the median of repeated runs.
* :func:`cost` reads FLOPs and bytes from XLA's cost and memory analyses of the compiled function,
  without running it (so it works for sizes that would not fit).
* :func:`profile` does both from one compilation; :func:`traced_flops` counts FLOPs on the jaxpr, where
  XLA's count charges a loop body once, whatever its trip count (a ``lax.scan`` over T steps).
* :func:`matmul_peak` measures this machine's achieved matmul FLOP/s, the peer every utilisation
  figure is divided by, in the same process.
* :func:`fit_exponent` is the log-log least-squares slope used for "time grows like T^k".
"""

from __future__ import annotations

import dataclasses
import math
import os
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

    alias_bytes: int = 0  # outputs that reuse a donated argument's buffer

    @property
    def total_bytes(self) -> int:
        return self.argument_bytes + self.output_bytes + self.temp_bytes

    @property
    def resident_bytes(self) -> int:
        """What the executable needs resident at once: arguments, outputs and scratch, less donated aliases."""
        return self.total_bytes - self.alias_bytes


def cost(fn: Callable, *args: Any) -> Cost:
    """FLOPs and memory of ``jit(fn)(*args)`` from XLA's analyses; ``args`` may be ShapeDtypeStructs."""
    return analyse(jax.jit(fn).lower(*args).compile())


def analyse(compiled) -> Cost:
    """XLA's cost and memory analyses of a compiled executable."""
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
        alias_bytes=int(getattr(memory, "alias_size_in_bytes", 0)),
    )


def profile(fn: Callable, *args, repeats: int = 10, min_time_s: float = 0.0) -> tuple[Timing, Cost]:
    """:func:`time_fn` and :func:`cost` from one compilation (compiling twice doubles a sweep's time).

    ``compile_s`` covers lowering, compiling and the first run, as in :func:`time_fn`.
    """
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    compile_s = time.perf_counter() - start
    return _timing(compile_s, lambda: compiled(*args), repeats, min_time_s), analyse(compiled)


# Primitives that move or relabel data without arithmetic (free in the FLOP count, as in XLA's).
_DATA_MOVEMENT = frozenset(
    (
        "reshape",
        "broadcast_in_dim",
        "transpose",
        "squeeze",
        "expand_dims",
        "convert_element_type",
        "slice",
        "dynamic_slice",
        "dynamic_update_slice",
        "concatenate",
        "gather",
        "scatter",
        "pad",
        "rev",
        "iota",
        "copy",
        "copy_p",
        "device_put",
        "stop_gradient",
        "sharding_constraint",
        "select_n",
        "split",
        "random_bits",
        "random_seed",
        "random_wrap",
        "random_unwrap",
        "threefry2x32",
        "random_fold_in",
        "random_split",
    )
)


def traced_flops(fn: Callable, *args: Any) -> float:
    """FLOPs of ``fn(*args)`` counted on its jaxpr, every loop multiplied by its trip count.

    XLA's cost analysis charges a while loop's body once, whatever its trip count (seen on jax 0.10 / XLA
    CPU: a ``lax.scan`` of ten matmuls reports one matmul), so it cannot count a recurrence. Here a
    matmul (``dot_general``) costs 2 FLOPs per multiply-add, any other arithmetic primitive one FLOP per
    output element (per input element for reductions), data movement nothing, and a ``scan`` body its
    FLOPs times ``length``. Works on any function: forward, train step, a step of any model. ``args``
    may be ShapeDtypeStructs.
    """
    return _jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr)


def _jaxpr_flops(jaxpr) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        inner = [_jaxpr_flops(getattr(v, "jaxpr", v)) for v in eqn.params.values() if _is_jaxpr(v)]
        branches = [
            _jaxpr_flops(b.jaxpr) for v in eqn.params.values() if isinstance(v, tuple) for b in v if _is_jaxpr(b)
        ]
        if name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += 2.0 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[i] for i in contract)
        elif name == "scan":
            total += eqn.params["length"] * sum(inner)
        elif branches:  # cond: the costlier branch
            total += max(branches)
        elif inner:  # pjit, custom_jvp / custom_vjp calls, remat, while (body counted once)
            total += sum(inner)
        elif name.startswith(("reduce_", "arg", "cum")):
            total += sum(math.prod(v.aval.shape) for v in eqn.invars if hasattr(v.aval, "shape"))
        elif name not in _DATA_MOVEMENT:
            total += sum(math.prod(v.aval.shape) for v in eqn.outvars if hasattr(v.aval, "shape"))
    return total


def _is_jaxpr(value) -> bool:
    return hasattr(getattr(value, "jaxpr", value), "eqns")


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


def memory_budget() -> tuple[int, str]:
    """The memory a computation may use: the accelerator's where jax reports it, else this host's
    physical memory; with where the number came from."""
    stats = jax.devices()[0].memory_stats() or {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"{jax.devices()[0].device_kind} memory (memory_stats)"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host physical memory"


def tree_bytes(tree: Any) -> int:
    """Bytes held by every array leaf of a pytree (params, an RNN state, a KV cache)."""
    return int(sum(np.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))
