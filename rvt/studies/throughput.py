"""Sequential compute: time, FLOPs and utilisation of each model's loss against sequence length T.

For every model and every T of the grid, the loss of the model (cross-entropy on random tokens) is
compiled once and timed forward (``fwd``) and forward+backward (``fwd_bwd``: the gradient with respect
to the parameters); XLA's cost analysis of the same compiled function gives the FLOPs. A tanh RNN, LSTM
and GRU run their T steps one after another (``lax.scan``); the Transformer computes all positions at
once, through ``attention='vmapped'`` (model ``transformer``) or ``'fused'`` (model
``transformer_fused``; the ``attention`` column says which). The machine's matmul peak is measured once
in the same run, so ``peak_fraction`` = achieved FLOP/s / peak.

XLA counts a while loop's body once, whatever its trip count, so FLOPs are counted on the jaxpr instead
(:func:`rvt.profiling.traced_flops`: every scan body times its length), the same way for every model.

``cpu_s`` is the process CPU time of a call (median, all of XLA's threads): on a shared CPU, other
processes stretch the wall time of long calls but not their CPU time, so its exponent is the cleaner one
there (it counts work, not latency: it exceeds wall time where XLA runs an op on several cores).

Writes config.json, metrics.jsonl (one record per measurement), results.csv, exponents.csv (log-log
slope of wall time, CPU time and FLOPs against T over the upper half of each model's grid), then figures.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from rvt import io, metrics, models, profiling
from rvt.errors import check, check_positive_int
from rvt.studies import common
from rvt.tasks.base import Batch

EXPERIMENT = "throughput"
PHASES = ("fwd", "fwd_bwd")
RESULT_COLUMNS = (
    "model",
    "attention",
    "T",
    "batch",
    "phase",
    "compile_s",
    "median_s",
    "p10_s",
    "p90_s",
    "cpu_s",
    "flops",
    "flops_per_s",
    "peak_fraction",
    "ratio_to_T1",
    "peak_flops_per_s",
    "params",
)
EXPONENT_COLUMNS = ("model", "phase", "time_exponent", "cpu_exponent", "flops_exponent", "T_min", "T_max", "points")
# Extra rows of the model table: a registered model with some settings fixed.
VARIANTS = {"transformer_fused": ("transformer", {"attention": "fused"})}
BASE_MODELS = ("rnn", "lstm", "gru", "transformer")


@dataclasses.dataclass(frozen=True)
class Plan:
    name: str
    attention: str  # "vmapped" / "fused" for transformers, "" for recurrent models
    module: Any
    lengths: tuple[int, ...]
    num_params: int
    settings: dict


def _build(name: str, config, max_length: int):
    base, fixed = VARIANTS.get(name, (name, {}))
    known = (*config.model, *VARIANTS)
    check(base in config.model, "models", f"unknown model {name!r}; known: {', '.join(known)}")
    settings = {**config.model[base].to_dict(), **fixed}
    module, model_config = models.make_model(base, settings, vocab_size=config.vocab_size, length=max_length)
    shapes = jax.eval_shape(lambda key: models.init_params(module, key, 1), jax.random.key(0))
    return Plan(
        name,
        settings.get("attention", ""),
        module,
        (),
        models.count_params(shapes),
        dict(base=base, **dataclasses.asdict(model_config)),
    )


def resolve(config: ml_collections.ConfigDict) -> tuple[list[Plan], dict]:
    """Validate every setting and build every model, before anything is written."""
    lengths = tuple(sorted(set(common.parse_list(config.lengths, "lengths", int, minimum=1))))
    for setting in ("batch_size", "repeats", "peak_size"):
        value = config[setting]
        check_positive_int(value, setting)
    check(
        isinstance(config.vocab_size, int) and config.vocab_size >= 2,
        "vocab_size",
        f"must be an integer >= 2, got {config.vocab_size!r}",
    )
    check(
        math.isfinite(config.min_time_s) and config.min_time_s >= 0,
        "min_time_s",
        f"must be a finite number >= 0 (seconds of timed runs), got {config.min_time_s}",
    )
    names = common.parse_names(config.models, "models")
    for key, cap in config.max_length.items():
        check(key in config.model or key in VARIANTS, f"max_length.{key}", "names no model")
        check(isinstance(cap, int) and cap >= 0, f"max_length.{key}", f"must be an integer >= 0, got {cap!r}")
    plans = []
    for name in names:
        cap = config.max_length.get(name, 0)
        grid = tuple(t for t in lengths if not cap or t <= cap)
        check(bool(grid), f"max_length.{name}", f"{cap} leaves no length of the grid {lengths}")
        plans.append(dataclasses.replace(_build(name, config, max(grid)), lengths=grid))
    resolved = dict(
        lengths=lengths, models={p.name: dict(params=p.num_params, lengths=p.lengths, **p.settings) for p in plans}
    )
    return plans, resolved


def random_batch(key, batch_size: int, length: int, vocab_size: int) -> Batch:
    """Random tokens and targets, every position counted: the loss's cost does not depend on the data."""
    in_key, out_key = jax.random.split(key)
    shape = (batch_size, length)
    return Batch(
        jax.random.randint(in_key, shape, 0, vocab_size),
        jax.random.randint(out_key, shape, 0, vocab_size),
        jnp.ones(shape, jnp.float32),
        jnp.zeros(shape, jnp.int32),
    )


def loss_function(module, phase: str):
    """The loss of ``module`` (``fwd``) or its gradient with respect to the parameters (``fwd_bwd``)."""
    loss = lambda params, batch: metrics.masked_cross_entropy(module.apply({"params": params}, batch.inputs), batch)
    return loss if phase == "fwd" else jax.grad(loss)


def measure(plan: Plan, params, batch: Batch, phase: str, config) -> dict:
    """Time one (model, T, phase) after compiling it; FLOPs counted on its jaxpr."""
    fn = loss_function(plan.module, phase)
    timing, _ = profiling.profile(fn, params, batch, repeats=config.repeats, min_time_s=config.min_time_s)
    flops = profiling.traced_flops(fn, params, batch)
    length = batch.shape[1]
    return dict(
        model=plan.name,
        attention=plan.attention,
        T=length,
        batch=batch.shape[0],
        phase=phase,
        compile_s=timing.compile_s,
        median_s=timing.median_s,
        p10_s=timing.quantile(0.1),
        p90_s=timing.quantile(0.9),
        cpu_s=timing.median_cpu_s,
        flops=flops,
        flops_per_s=flops / timing.median_s,
        params=plan.num_params,
    )


def add_ratios(rows: list[dict], peak: float) -> None:
    """Fill ``peak_fraction`` and ``ratio_to_T1`` (time at T / time at T = 1, same model and phase)."""
    at_one = {(r["model"], r["phase"]): r["median_s"] for r in rows if r["T"] == 1}
    for row in rows:
        row.update(peak_flops_per_s=peak, peak_fraction=row["flops_per_s"] / peak)
        base = at_one.get((row["model"], row["phase"]))
        row["ratio_to_T1"] = row["median_s"] / base if base else ""


def exponents(rows: list[dict]) -> list[dict]:
    """Log-log slopes of time and FLOPs against T per model and phase, upper half of the grid."""
    out = []
    for key in dict.fromkeys((r["model"], r["phase"]) for r in rows):
        sel = [r for r in rows if (r["model"], r["phase"]) == key]
        if len(sel) < 2:
            continue
        lengths = [r["T"] for r in sel]
        xs, ts = profiling.upper_half(lengths, [r["median_s"] for r in sel])
        _, cs = profiling.upper_half(lengths, [r["cpu_s"] for r in sel])
        _, fs = profiling.upper_half(lengths, [r["flops"] for r in sel])
        cpu_fit = profiling.fit_exponent(xs, cs) if all(c > 0 for c in cs) else ""  # nan (no CPU times) fails
        out.append(
            dict(
                model=key[0],
                phase=key[1],
                time_exponent=profiling.fit_exponent(xs, ts),
                cpu_exponent=cpu_fit,
                flops_exponent=profiling.fit_exponent(xs, fs),
                T_min=min(xs),
                T_max=max(xs),
                points=len(xs),
            )
        )
    return out


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    plans, resolved = resolve(config)
    for plan in plans:
        logging.info("%-18s %7d parameters  T in %s", plan.name, plan.num_params, plan.lengths)
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)
    peak = profiling.matmul_peak(config.peak_size)
    logging.info("matmul peak (%d^2, float32): %.1f GFLOP/s", config.peak_size, peak / 1e9)
    key = jax.random.key(config.seed)
    rows = []
    with io.MetricsWriter(path / io.METRICS) as writer:
        writer.write(dict(kind="peak", size=config.peak_size, flops_per_s=peak))
        for plan in plans:
            params = models.init_params(plan.module, key, 1)  # shapes do not depend on T
            for length in plan.lengths:
                batch = random_batch(jax.random.fold_in(key, length), config.batch_size, length, config.vocab_size)
                for phase in PHASES:
                    row = measure(plan, params, batch, phase, config)
                    writer.write(dict(kind="measure", **row))
                    logging.info(
                        "%-18s T=%-6d %-7s %10.3f ms  %.3g FLOP/s  (compile %.1fs)",
                        plan.name,
                        length,
                        phase,
                        1e3 * row["median_s"],
                        row["flops_per_s"],
                        row["compile_s"],
                    )
                    rows.append(row)
            add_ratios(rows, peak)
            io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)  # after each model: partial runs plot
    fits = exponents(rows)
    io.write_csv(path / "exponents.csv", fits, EXPONENT_COLUMNS)
    print(f"time ~ T^k, fitted over the upper half of each model's grid (matmul peak {peak / 1e9:.1f} GFLOP/s):")
    for fit in fits:
        cpu = f"{fit['cpu_exponent']:5.2f}" if fit["cpu_exponent"] != "" else "    -"
        print(
            f"  {fit['model']:<18} {fit['phase']:<8} time k = {fit['time_exponent']:5.2f}   cpu time k = {cpu}   "
            f"flops k = {fit['flops_exponent']:5.2f}   (T {fit['T_min']}..{fit['T_max']})"
        )
    return common.finish_run(path)
