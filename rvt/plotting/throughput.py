"""Time, utilisation and time relative to T = 1 against sequence length (from results.csv)."""

from __future__ import annotations

from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from rvt import io
from rvt.plotting.style import marker, style

PHASE_TITLE = {"fwd": "forward (loss)", "fwd_bwd": "forward + backward (gradient)"}


def model_style(model: str) -> dict:
    """Each model's colour and marker; the two Transformers differ in colour, line and marker."""
    if model == "transformer_fused":
        return dict(color="tab:gray", label="Transformer (fused attention)", linestyle=":", marker="s")
    kw = dict(style(model), marker=marker(model))
    if model == "transformer":
        kw["label"] = "Transformer (vmapped attention)"
    return kw


def _series(rows: list[dict], phase: str) -> dict[str, list[dict]]:
    series = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["T"]):
        if row["phase"] == phase:
            series[row["model"]].append(row)
    return series


def _slope(xs, ys) -> float:
    """Log-log slope over the upper half of the points, as rvt.profiling fits it."""
    half = len(xs) // 2 if len(xs) > 2 else 0
    return float(np.polyfit(np.log(xs[half:]), np.log(ys[half:]), 1)[0])


def _phases(rows):
    return [p for p in PHASE_TITLE if any(r["phase"] == p for r in rows)]


def time_vs_length(rows: list[dict]):
    phases = _phases(rows)
    fig, axes = plt.subplots(1, len(phases), figsize=(6 * len(phases), 4.4), squeeze=False, sharey=True)
    for ax, phase in zip(axes[0], phases, strict=True):
        for model, sel in _series(rows, phase).items():
            ts = np.array([r["T"] for r in sel], float)
            med = np.array([r["median_s"] for r in sel])
            kw = model_style(model)
            if len(ts) > 1:
                kw["label"] += f"  (k = {_slope(ts, med):.2f})"
            ax.plot(ts, med, ms=3, **kw)
            ax.fill_between(ts, [r["p10_s"] for r in sel], [r["p90_s"] for r in sel], color=kw["color"], alpha=0.15)
        _guides(ax, rows, phase)
        ax.set(xscale="log", yscale="log", xlabel="sequence length T", title=PHASE_TITLE[phase])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel(f"median time per call (s), batch {rows[0]['batch']}")
    fig.suptitle("Time against T (k: log-log slope over the upper half of the grid; band: 10-90% of runs)")
    return fig


def _guides(ax, rows, phase):
    """Dotted lines of slope 1 and 2 through the median of the largest common T, for the eye."""
    sel = [r for r in rows if r["phase"] == phase]
    top = max(r["T"] for r in sel)
    anchor = float(np.median([r["median_s"] for r in sel if r["T"] == top]))
    ts = np.array(sorted({r["T"] for r in sel}), float)
    ts = ts[ts >= max(1.0, top / 256)]
    for power in (1, 2):
        ax.plot(ts, anchor * (ts / top) ** power, ":", color="grey", lw=1)
        ax.annotate(f"T^{power}", (ts[0], anchor * (ts[0] / top) ** power), fontsize=7, color="grey")


def utilisation_vs_length(rows: list[dict]):
    phases = _phases(rows)
    fig, axes = plt.subplots(1, len(phases), figsize=(6 * len(phases), 4.4), squeeze=False, sharey=True)
    for ax, phase in zip(axes[0], phases, strict=True):
        for model, sel in _series(rows, phase).items():
            ax.plot([r["T"] for r in sel], [100 * r["peak_fraction"] for r in sel], ms=3, **model_style(model))
        # utilisation spans decades (a T = 1 call is launch-bound): a log axis with plain percent labels
        ax.set(xscale="log", yscale="log", xlabel="sequence length T", title=PHASE_TITLE[phase])
        ax.yaxis.set_major_locator(FixedLocator([0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100]))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    peak = rows[0]["peak_flops_per_s"]
    axes[0][0].set_ylabel(f"% of matmul peak ({peak / 1e9:.0f} GFLOP/s, measured in the run)")
    fig.suptitle("Utilisation: XLA-counted FLOPs / median time / measured matmul peak")
    return fig


def ratio_vs_length(rows: list[dict]):
    rows = [r for r in rows if r["ratio_to_T1"] != ""]
    if not rows:  # the grid had no T = 1
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no T = 1 in the grid: no ratio to show", ha="center", va="center")
        ax.set_axis_off()
        return fig
    phases = _phases(rows)
    fig, axes = plt.subplots(1, len(phases), figsize=(6 * len(phases), 4.4), squeeze=False, sharey=True)
    for ax, phase in zip(axes[0], phases, strict=True):
        for model, sel in _series(rows, phase).items():
            ax.plot([r["T"] for r in sel], [r["ratio_to_T1"] for r in sel], ms=3, **model_style(model))
        ts = sorted({r["T"] for r in rows})
        ax.plot(ts, ts, ":", color="grey", lw=1, label="T (no parallelism over time)")
        ax.axhline(1.0, color="grey", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="sequence length T", title=PHASE_TITLE[phase])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("time at T / time at T = 1")
    fig.suptitle('"A 512-token sequence is nearly as fast as 1 token": time relative to T = 1')
    return fig


FIGURES = [
    ("time_vs_T.png", io.RESULTS, time_vs_length),
    ("utilisation_vs_T.png", io.RESULTS, utilisation_vs_length),
    ("ratio_to_T1.png", io.RESULTS, ratio_vs_length),
]
