"""Edge footprint figure: weight bytes at three precisions, FLOPs per token, step latency, state bytes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from rvt import io
from rvt.plotting.style import style


def _colour(row):
    return style(row["base"])["color"]


_MARKERS = {
    "fp32": "o",
    "bf16": "^",
    "int8": "s",
    "XLA cost analysis": "o",
    "closed form (the config's)": "D",
    "median": "o",
    "p99": "v",
}
_MARKERS_FILLED = {
    "fp32": True,
    "bf16": True,
    "int8": True,
    "XLA cost analysis": True,
    "closed form (the config's)": False,
    "median": True,
    "p99": False,
}


def footprint(rows):
    """Dot plots on log axes (a bar's length means nothing on a log scale): each quantity spans decades."""
    names = [r["model"] for r in rows]
    xs = np.arange(len(rows))
    colours = [_colour(r) for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2))
    for field, label, shape in (("bytes_fp32", "fp32", "o"), ("bytes_bf16", "bf16", "^"), ("bytes_int8", "int8", "s")):
        axes[0].scatter(xs, [r[field] for r in rows], c=colours, marker=shape, label=label, zorder=3)
    axes[0].set(ylabel="weight bytes", title="Weights at fp32 / bf16 / int8")
    axes[1].scatter(
        xs, [r["flops_per_token"] for r in rows], c=colours, marker="o", label="XLA cost analysis", zorder=3
    )
    axes[1].scatter(
        xs,
        [r["flops_closed_form"] for r in rows],
        facecolors="none",
        edgecolors=colours,
        marker="D",
        s=60,
        label="closed form (the config's)",
        zorder=3,
    )
    axes[1].set(ylabel="FLOPs per token", title="Compute per generated token")
    axes[2].scatter(xs, [r["latency_s"] * 1e6 for r in rows], c=colours, marker="o", label="median", zorder=3)
    axes[2].scatter(
        xs,
        [r["latency_p99_s"] * 1e6 for r in rows],
        facecolors="none",
        edgecolors=colours,
        marker="v",
        s=40,
        label="p99",
        zorder=3,
    )
    axes[2].axhline(1000, color="tab:red", ls="--", lw=1, label="lesson: 1 ms / step (phone CPU)")
    axes[2].set(ylabel="microseconds per step", title="Batch-1 latency on this machine")
    context = rows[0]["context"]
    axes[3].scatter(xs, [r["state_bytes"] for r in rows], c=colours, marker="o", zorder=3)
    axes[3].set(ylabel="bytes", title=f"State / KV cache at {context} tokens of context")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xticks(xs, names, rotation=40, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.grid(alpha=0.3, which="both", axis="y")
        handles, labels = ax.get_legend_handles_labels()
        if handles:  # markers in black: the colours are the models', the shapes the legend's
            neutral = [
                Line2D([], [], color=h.get_color(), ls="--")
                if isinstance(h, Line2D)
                else Line2D(
                    [],
                    [],
                    ls="",
                    marker=_MARKERS[label],
                    color="black",
                    mfc="black" if _MARKERS_FILLED[label] else "none",
                )
                for h, label in zip(handles, labels, strict=True)
            ]
            if ax is axes[2]:  # latency: room above the highest p99 for the legend
                low, high = ax.get_ylim()
                ax.set_ylim(low, high * 8)
            ax.legend(neutral, labels, fontsize=7, loc="upper left" if ax is axes[2] else "lower right")
    fig.tight_layout()
    return fig


FIGURES = [("edge_footprint.png", io.RESULTS, footprint)]
