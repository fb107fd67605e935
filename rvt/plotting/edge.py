"""Edge footprint figure: weight bytes at three precisions, FLOPs per token, step latency, state bytes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rvt import io
from rvt.plotting.style import style


def _colour(row):
    return style(row["base"])["color"]


def footprint(rows):
    names = [r["model"] for r in rows]
    xs = np.arange(len(rows))
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2))
    for i, (field, label) in enumerate((("bytes_fp32", "fp32"), ("bytes_bf16", "bf16"), ("bytes_int8", "int8"))):
        axes[0].bar(
            xs + (i - 1) * 0.27,
            [r[field] for r in rows],
            0.27,
            label=label,
            alpha=1 - 0.25 * i,
            color=[_colour(r) for r in rows],
            edgecolor="black",
            lw=0.4,
        )
    axes[0].set(yscale="log", ylabel="weight bytes", title="Weights: fp32 / bf16 / int8 (left to right)")
    axes[1].bar(
        xs - 0.2, [r["flops_per_token"] for r in rows], 0.4, label="XLA cost analysis", color=[_colour(r) for r in rows]
    )
    axes[1].bar(
        xs + 0.2,
        [r["flops_closed_form"] for r in rows],
        0.4,
        label="closed form (matmuls)",
        color="white",
        edgecolor=[_colour(r) for r in rows],
        hatch="//",
    )
    axes[1].set(yscale="log", ylabel="FLOPs per token", title="Compute per generated token")
    axes[1].legend(fontsize=7)
    axes[2].bar(xs, [r["latency_s"] * 1e6 for r in rows], color=[_colour(r) for r in rows])
    axes[2].errorbar(
        xs,
        [r["latency_s"] * 1e6 for r in rows],
        yerr=[[0] * len(rows), [(r["latency_p99_s"] - r["latency_s"]) * 1e6 for r in rows]],
        fmt="none",
        ecolor="black",
        capsize=3,
    )
    axes[2].axhline(1000, color="tab:red", ls="--", lw=1, label="lesson: 1 ms / step (phone CPU)")
    axes[2].set(yscale="log", ylabel="microseconds per step (median, bar to p99)", title="Batch-1 latency here")
    axes[2].legend(fontsize=7)
    context = rows[0]["context"]
    axes[3].bar(xs, [r["state_bytes"] for r in rows], color=[_colour(r) for r in rows])
    axes[3].set(yscale="log", ylabel="bytes", title=f"State / KV cache at {context} tokens of context")
    for ax in axes:
        ax.set_xticks(xs, names, rotation=40, ha="right", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


FIGURES = [("edge_footprint.png", io.RESULTS, footprint)]
