"""Online-learning figures: prequential accuracy over stream time; segments to recover per rule change."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rvt import io
from rvt.plotting.style import mean_band, style


def _smooth(values, width: int = 10):
    values = np.asarray(values, float)
    kernel = np.ones(min(width, len(values))) / min(width, len(values))
    return np.convolve(values, kernel, mode="valid")


def accuracy_over_stream(rows):
    fig, ax = plt.subplots(figsize=(8, 4.2))
    models = list(dict.fromkeys(r["model"] for r in rows))
    first = [r for r in rows if r["model"] == models[0] and r.get("seed", 0) == rows[0].get("seed", 0)]
    for prev, row in zip(first, first[1:], strict=False):
        if row["regime"] != prev["regime"]:
            ax.axvline(row["stream_step"], color="tab:gray", ls="--", lw=0.8)
            ax.text(row["stream_step"], 1.0, f" lag {row['lag']}", fontsize=7, va="bottom")
    if first:
        ax.text(0, 1.0, f" lag {first[0]['lag']}", fontsize=7, va="bottom")
    for model in models:
        smoothed = []  # each seed's 10-segment means, then the mean over seeds with their range
        for seed in dict.fromkeys(r.get("seed", 0) for r in rows if r["model"] == model):
            sel = [r for r in rows if r["model"] == model and r.get("seed", 0) == seed]
            steps = [r["stream_step"] for r in sel]
            curve = _smooth([r["accuracy"] for r in sel])
            smoothed += [dict(x=x, y=y) for x, y in zip(steps[len(sel) - len(curve) :], curve, strict=True)]
        line = dict(style(model), lw=1.2)
        mean_band(ax, smoothed, "x", lambda r: r["y"], model, line=line)
    seeds = len({r.get("seed", 0) for r in rows})
    ax.set(
        xlabel="stream time (segments, each scored before it is trained on)",
        ylabel="prequential accuracy (10-segment mean)",
        ylim=(-0.02, 1.08),
        title=f"Online learning on a drifting rule (dashed: rule changes; mean of {seeds} seeds, band 95%)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def recovery(rows):
    """Per regime: segments from its start until the learner reaches its own level (mean over the seeds
    that did, dots: each seed); a hollow marker at the top where a seed never did in that regime."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    regimes = sorted({r["regime"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(models)
    top = max([r["recovery_segments"] for r in rows if r["recovered"]] + [1])
    for i, model in enumerate(models):
        kw = style(model)
        for j, regime in enumerate(regimes):
            sel = [r for r in rows if r["model"] == model and r["regime"] == regime]
            done = [r["recovery_segments"] for r in sel if r["recovered"]]
            x = j + (i - (len(models) - 1) / 2) * width
            ax.bar(
                x,
                np.mean(done) if done else 0,
                width,
                color=kw["color"],
                alpha=0.6,
                label=f"{kw['label']} (n={len(sel)})" if j == 0 else None,
            )
            ax.plot([x] * len(done), done, "o", color=kw["color"], ms=3)
            missed = len(sel) - len(done)
            if missed:
                ax.plot([x], [top * 1.08], marker="v", mfc="white", color=kw["color"], ms=7)
                ax.text(x, top * 1.12, f"{missed}/{len(sel)} never", ha="center", fontsize=6, color=kw["color"])
    lags = {r["regime"]: r["lag"] for r in rows}
    ax.set_xticks(range(len(regimes)), [f"{r}\n(lag {lags[r]})" for r in regimes])
    fraction = rows[0]["target_fraction"]
    ax.set(
        xlabel="regime (rule)",
        ylabel=f"segments to reach {fraction:.0%} of own best level",
        ylim=(0, top * 1.25),
        title="Segments to learn each rule (bar: mean over seeds that did; dots: seeds)",
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig


FIGURES = [
    ("accuracy_over_stream.png", io.RESULTS, accuracy_over_stream),
    ("recovery.png", "recovery.csv", recovery),
]
