"""Online-learning figures: prequential accuracy over stream time; segments to recover per rule change."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rvt import io
from rvt.plotting.style import style


def _smooth(values, width: int = 10):
    values = np.asarray(values, float)
    kernel = np.ones(min(width, len(values))) / min(width, len(values))
    return np.convolve(values, kernel, mode="valid")


def accuracy_over_stream(rows):
    fig, ax = plt.subplots(figsize=(8, 4.2))
    models = list(dict.fromkeys(r["model"] for r in rows))
    first = [r for r in rows if r["model"] == models[0]]
    for prev, row in zip(first, first[1:], strict=False):
        if row["regime"] != prev["regime"]:
            ax.axvline(row["stream_step"], color="tab:gray", ls="--", lw=0.8)
            ax.text(row["stream_step"], 1.0, f" lag {row['lag']}", fontsize=7, va="bottom")
    for model in models:
        sel = [r for r in rows if r["model"] == model]
        smooth = _smooth([r["accuracy"] for r in sel])
        ax.plot([r["stream_step"] for r in sel][len(sel) - len(smooth) :], smooth, lw=1.2, **style(model))
    ax.set(
        xlabel="stream time (segments, each scored before it is trained on)",
        ylabel="prequential accuracy (10-segment mean)",
        ylim=(-0.02, 1.08),
        title="Online learning on a drifting rule (dashed: rule changes)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def recovery(rows):
    models = list(dict.fromkeys(r["model"] for r in rows))
    changes = list(dict.fromkeys(r["change_step"] for r in rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        sel = {r["change_step"]: r for r in rows if r["model"] == model}
        xs = np.arange(len(changes)) + i * width
        heights = [sel[c]["recovery_segments"] if sel[c]["recovered"] else 0 for c in changes]
        bars = ax.bar(xs, heights, width, **style(model))
        for bar, c in zip(bars, changes, strict=True):
            if not sel[c]["recovered"]:
                text = "not recovered" if sel[c]["learned_before"] else "old rule not learnt"
                ax.text(bar.get_x() + width / 2, 0, text, rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(changes)) + 0.4 - width / 2, [str(c) for c in changes])
    fraction = rows[0]["target_fraction"]
    ax.set(
        xlabel="rule change at segment",
        ylabel=f"segments to regain {fraction:.0%} of pre-change accuracy",
        title="Recovery after each rule change",
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig


FIGURES = [
    ("accuracy_over_stream.png", io.RESULTS, accuracy_over_stream),
    ("recovery.png", "recovery.csv", recovery),
]
