"""The O(T^2) cost: FLOPs and compiled memory of one attention layer, one block and one LSTM layer.

For every length T of the grid and every layer (``attention``: multi-head self-attention with its QKV and
output projections; ``block``: a pre-LN Transformer block; ``lstm``: one LSTM layer over the sequence, all
at the same width), the layer's forward (``fwd``) and forward+backward (``fwd_bwd``: gradient with
respect to parameters and input) are compiled on ShapeDtypeStructs -- nothing of size T is allocated --
and XLA's cost and memory analyses give FLOPs and argument / output / temp bytes. Where the total is well
under the memory budget and T is small, the layer is also run and timed. Each FLOP count sits beside its
closed form; the attention-score count T^2 per head per layer is read from the traced computation and
checked against the lesson's 262,144 (T = 512) and 16.8 million (T = 4096).

Writes config.json, metrics.jsonl, results.csv, limits.csv (per layer and phase: the largest T of the
grid that fits the budget, the fitted exponents and the length where the fit crosses the budget), then
the figures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from rvt import io, models, profiling
from rvt.errors import check, check_positive_int
from rvt.models.attention import ATTENTION
from rvt.models.cells import LSTMCell
from rvt.models.recurrent import RecurrentLayer
from rvt.models.transformer import Block, SelfAttention
from rvt.studies import common

EXPERIMENT = "attention_cost"
LAYERS = ("attention", "block", "lstm")
PHASES = ("fwd", "fwd_bwd")
LESSON_SCORES = {512: 262_144, 4096: 16_800_000}  # "262,144" and "16.8 million" per head per layer
RESULT_COLUMNS = (
    "layer",
    "phase",
    "T",
    "batch",
    "width",
    "heads",
    "flops",
    "flops_closed",
    "argument_bytes",
    "output_bytes",
    "temp_bytes",
    "total_bytes",
    "score_bytes",
    "scores_per_head",
    "lesson_scores",
    "measured_s",
    "compile_s",
    "peak_bytes",
    "fits",
    "budget_bytes",
)
LIMIT_COLUMNS = (
    "layer",
    "phase",
    "largest_fitting_T",
    "first_failing_T",
    "bytes_exponent",
    "flops_exponent",
    "time_exponent",
    "crossing_T",
    "extrapolated",
    "budget_bytes",
)


@dataclasses.dataclass(frozen=True)
class Layer:
    name: str
    apply: Callable  # (params, x_BxTxD) -> y_BxTxD
    params: Any  # ShapeDtypeStructs
    init: Callable  # key -> params
    closed_fwd: Callable[[int], float]  # T -> matmul FLOPs of the forward pass


def make_layer(name: str, config) -> Layer:
    """One layer at ``config.width``, with its closed-form forward FLOPs (2 per multiply-add)."""
    b, d, h = config.batch_size, config.width, config.num_heads
    x4 = jnp.zeros((1, 4, d), jnp.float32)
    if name == "lstm":
        module = RecurrentLayer(LSTMCell(hidden_size=d))
        closed = lambda t: 2 * b * t * d * 4 * d + 2 * b * t * d * 4 * d  # input and recurrent matmuls
        init = lambda key: module.init(key, x4)
        return Layer(name, lambda p, x: module.apply(p, x)[1], jax.eval_shape(init, jax.random.key(0)), init, closed)
    if name not in LAYERS:  # any registered model: one block of it at this width, between embedding and head
        return model_layer(name, config)
    if name == "attention":
        module = SelfAttention(h, d // h, d, config.attention)
        closed = lambda t: 8 * b * t * d * d + 4 * b * t * t * d  # QKV + out; scores + weighted values
    else:
        module = Block(h, d, config.mlp_ratio, config.attention)
        closed = lambda t: (8 + 4 * config.mlp_ratio) * b * t * d * d + 4 * b * t * t * d
    init = lambda key: module.init(key, x4, jnp.arange(4))  # causal, no cache
    return Layer(
        name,
        lambda p, x: module.apply(p, x, jnp.arange(x.shape[1]))[1],
        jax.eval_shape(init, jax.random.key(0)),
        init,
        closed,
    )


def model_layer(name: str, config) -> Layer:
    """A registered model (lru, s6, ...) as a layer: one block of width ``config.width`` on embeddings
    [B, T, D] (``from_embeddings``; its head maps back to D, so the output is shaped like the input), with
    the config's own FLOPs per token."""
    known = models.model_settings(name)
    width = next(f for f in ("d_model", "hidden_size") if f in known)
    settings = {width: config.width, **({"num_layers": 1} if "num_layers" in known else {})}
    model_config = models.make_config(name, settings)
    module = model_config.build(config.width, 4)
    x4 = jnp.zeros((1, 4, config.width), jnp.float32)
    init = lambda key: module.init(key, x4, method="from_embeddings")
    apply = lambda p, x: module.apply(p, x, method="from_embeddings")[1]
    closed = lambda t: config.batch_size * t * model_config.flops_per_token(config.width, t)
    return Layer(name, apply, jax.eval_shape(init, jax.random.key(0)), init, closed)


def phase_fn(apply: Callable, phase: str) -> Callable:
    """``fwd``: the layer, ``(params, x) -> y``. ``fwd_bwd``: ``(params, x, dy) -> (y, (dparams, dx))``.

    The output is returned too, as a train step needs it for its loss; returning the gradients alone lets
    XLA drop the last projection's forward matmul. The cotangent is an argument, not ``grad(sum(...))``:
    with an all-ones cotangent XLA rewrites the first backward matmul as a reduction.
    """
    if phase == "fwd":
        return apply

    def forward_backward(params, x, dy):
        y, vjp = jax.vjp(apply, params, x)
        return y, vjp(dy)

    return forward_backward


def phase_args(layer: Layer, phase: str, x):
    """The arguments of :func:`phase_fn`: params, input and (fwd_bwd) a cotangent shaped like the output."""
    return (layer.params, x) if phase == "fwd" else (layer.params, x, x)


def traced_scores_per_head(attention: str, length: int, heads: int, head_dim: int) -> int:
    """Elements of the [T, S] score matrices in the traced attention, per head per example.

    Read from the jaxpr (shapes only), so it counts what the code builds, not what a formula says.
    """
    q = jax.ShapeDtypeStruct((1, length, heads, head_dim), jnp.float32)
    mask = jax.ShapeDtypeStruct((1, length, length), jnp.bool_)
    # The first matmul with two T-sized axes is q k^T (the fused path adds a group axis: [B, H, T, 1, S]).
    found = [
        math.prod(v.aval.shape)
        for v in _dot_outputs(jax.make_jaxpr(ATTENTION[attention])(q, q, q, mask).jaxpr)
        if v.aval.shape[-1] == length and v.aval.shape.count(length) >= 2
    ]
    check(bool(found), "attention", f"found no [T, T] score matrix in the traced {attention!r} attention")
    return found[0] // heads


def _dot_outputs(jaxpr):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            yield from eqn.outvars
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", value)
            if hasattr(inner, "eqns"):
                yield from _dot_outputs(inner)


def resolve(config: ml_collections.ConfigDict) -> dict:
    """Validate every setting before anything is written; returns the resolved settings."""
    lengths = tuple(sorted(set(common.parse_list(config.lengths, "lengths", int, minimum=1))))
    layers = common.parse_names(config.layers, "layers")
    for name in layers:
        known = (*LAYERS, *sorted(n for n in models.MODELS if n not in LAYERS))
        check(name in known, "layers", f"unknown layer {name!r}; known: {', '.join(known)}")
    phases = common.parse_names(config.phases, "phases")
    for name in phases:
        check(name in PHASES, "phases", f"unknown phase {name!r}; known: {', '.join(PHASES)}")
    for setting in ("width", "num_heads", "mlp_ratio", "batch_size", "repeats"):
        value = config[setting]
        check_positive_int(value, setting)
    check(
        math.isfinite(config.min_time_s) and config.min_time_s >= 0,
        "min_time_s",
        f"must be a finite number >= 0 (seconds of timed runs), got {config.min_time_s}",
    )
    check(config.width % config.num_heads == 0, "num_heads", f"{config.num_heads} does not divide width {config.width}")
    check(config.attention in ATTENTION, "attention", f"must be one of {tuple(ATTENTION)}, got {config.attention!r}")
    check(
        isinstance(config.budget_bytes, int) and config.budget_bytes >= 0,
        "budget_bytes",
        f"must be an integer >= 0 (0: this machine's memory), got {config.budget_bytes!r}",
    )
    check(
        isinstance(config.measure_max_length, int) and config.measure_max_length >= 0,
        "measure_max_length",
        f"must be an integer >= 0, got {config.measure_max_length!r}",
    )
    check(
        0 < config.measure_max_fraction <= 1,
        "measure_max_fraction",
        f"must be in (0, 1], got {config.measure_max_fraction}",
    )
    budget, source = (
        (config.budget_bytes, "--config.budget_bytes") if config.budget_bytes else profiling.memory_budget()
    )
    return dict(lengths=lengths, layers=layers, phases=phases, budget_bytes=budget, budget_source=source)


def closed_flops(layer: Layer, phase: str, length: int) -> float:
    """Matmuls only. Backward costs two more matmuls per forward matmul (one per operand): fwd_bwd = 3x fwd.

    Not counted: elementwise work (softmax, gates, LayerNorm: ~1-2% here) and, for the LSTM backward, the
    per-step accumulation of W_hh's gradient (4 H^2 adds per step: 1 / (12 B) of the matmuls, 8% at B = 1).
    """
    return layer.closed_fwd(length) * (1 if phase == "fwd" else 3)


def analyse(layer: Layer, phase: str, length: int, config, budget: int, key) -> dict:
    """Cost and memory from the compiler; a timed run only where it is small and well under the budget."""
    x = jax.ShapeDtypeStruct((config.batch_size, length, config.width), jnp.float32)
    fn = phase_fn(layer.apply, phase)
    cost = profiling.cost(fn, *phase_args(layer, phase, x))
    row = dict(measured_s="", compile_s="", peak_bytes="")
    if length <= config.measure_max_length and cost.total_bytes <= config.measure_max_fraction * budget:
        x_key, g_key = jax.random.split(key)
        args = (layer.init(key), jax.random.normal(x_key, x.shape), jax.random.normal(g_key, x.shape))
        timing, cost = profiling.profile(
            fn, *args[: 2 if phase == "fwd" else 3], repeats=config.repeats, min_time_s=config.min_time_s
        )
        stats = jax.devices()[0].memory_stats() or {}
        row.update(
            measured_s=timing.median_s, compile_s=timing.compile_s, peak_bytes=stats.get("peak_bytes_in_use", "")
        )  # a process high-water mark; GPU only
    flops = profiling.traced_flops(fn, *phase_args(layer, phase, x))  # the LSTM's scan: every step counted
    row.update(
        layer=layer.name,
        phase=phase,
        T=length,
        batch=config.batch_size,
        width=config.width,
        heads=config.num_heads,
        flops=flops,
        flops_closed=closed_flops(layer, phase, length),
        argument_bytes=cost.argument_bytes,
        output_bytes=cost.output_bytes,
        temp_bytes=cost.temp_bytes,
        total_bytes=cost.total_bytes,
        fits=cost.total_bytes <= budget,
        budget_bytes=budget,
        **score_columns(layer.name, length, config),
    )
    return row


def score_columns(layer: str, length: int, config) -> dict:
    """Attention scores per head per layer (traced), their float32 bytes over all heads, the lesson's count."""
    if layer == "lstm":
        return dict(scores_per_head="", score_bytes="", lesson_scores="")
    scores = traced_scores_per_head(config.attention, length, config.num_heads, config.width // config.num_heads)
    return dict(
        scores_per_head=scores,
        score_bytes=scores * 4 * config.num_heads * config.batch_size,
        lesson_scores=LESSON_SCORES.get(length, ""),
    )


def limits(rows: list[dict], budget: int) -> list[dict]:
    """Per layer and phase: where the memory stops fitting, from the grid and from the fitted power law."""
    out = []
    for layer, phase in dict.fromkeys((r["layer"], r["phase"]) for r in rows):
        sel = sorted((r for r in rows if (r["layer"], r["phase"]) == (layer, phase)), key=lambda r: r["T"])
        if len(sel) < 2:
            continue
        fitting = [r["T"] for r in sel if r["fits"]]
        failing = [r["T"] for r in sel if not r["fits"]]
        xs, ys = profiling.upper_half([r["T"] for r in sel], [r["total_bytes"] for r in sel])
        k = profiling.fit_exponent(xs, ys)
        c = sum(math.log(y) - k * math.log(x) for x, y in zip(xs, ys, strict=True)) / len(xs)
        crossing = math.exp((math.log(budget) - c) / k) if k > 0 else ""
        _, fs = profiling.upper_half([r["T"] for r in sel], [r["flops"] for r in sel])
        timed = [r for r in sel if r["measured_s"] != ""]
        tx, ty = profiling.upper_half([r["T"] for r in timed], [r["measured_s"] for r in timed])
        out.append(
            dict(
                layer=layer,
                phase=phase,
                largest_fitting_T=max(fitting, default=""),
                first_failing_T=min(failing, default=""),
                bytes_exponent=k,
                flops_exponent=profiling.fit_exponent(xs, fs),
                time_exponent=profiling.fit_exponent(tx, ty) if len(tx) >= 2 else "",
                crossing_T=crossing,
                extrapolated=not failing,
                budget_bytes=budget,
            )
        )
    return out


def report(fits: list[dict], rows: list[dict], resolved: dict) -> None:
    budget = resolved["budget_bytes"]
    print(f"memory budget {budget / 2**30:.1f} GiB ({resolved['budget_source']})")
    for f in fits:
        how = (
            "extrapolated from the fit: every grid length fits"
            if f["extrapolated"]
            else f"largest grid T that fits {f['largest_fitting_T']}"
        )
        timed = f"  time ~ T^{f['time_exponent']:.2f}" if f["time_exponent"] != "" else ""
        crossing = f"{f['crossing_T']:,.0f}" if f["crossing_T"] != "" else "?"
        print(
            f"  {f['layer']:<9} {f['phase']:<7} bytes ~ T^{f['bytes_exponent']:.2f}  "
            f"flops ~ T^{f['flops_exponent']:.2f}{timed}  fits up to T ~ {crossing} ({how})"
        )
    for r in rows:
        if r["lesson_scores"] != "" and r["phase"] == "fwd":
            agrees = "agrees" if abs(r["scores_per_head"] / r["lesson_scores"] - 1) < 0.005 else "DISAGREES"
            print(
                f"  T={r['T']}: {r['scores_per_head']:,} scores per head per layer ({agrees} with the lesson's "
                f"{r['lesson_scores']:,}); {r['layer']} temp bytes = {r['temp_bytes'] / r['score_bytes']:.2f} x "
                "the score matrices"
            )


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    resolved = resolve(config)
    layers = [make_layer(name, config) for name in resolved["layers"]]
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)
    budget, key, rows = resolved["budget_bytes"], jax.random.key(config.seed), []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for layer in layers:
            for phase in resolved["phases"]:
                for length in resolved["lengths"]:
                    row = analyse(layer, phase, length, config, budget, jax.random.fold_in(key, length))
                    writer.write(dict(kind="cost", **row))
                    logging.info(
                        "%-9s %-7s T=%-8d %.3g FLOPs  %.3g B total  %s",
                        layer.name,
                        phase,
                        length,
                        row["flops"],
                        row["total_bytes"],
                        "fits" if row["fits"] else "does not fit",
                    )
                    rows.append(row)
            io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)
    fits = limits(rows, budget)
    io.write_csv(path / "limits.csv", fits, LIMIT_COLUMNS)
    report(fits, rows, resolved)
    return common.finish_run(path)
