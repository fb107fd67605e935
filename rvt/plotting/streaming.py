"""Streaming figures: latency and state bytes against context position."""

from __future__ import annotations

import matplotlib.pyplot as plt

from rvt import io
from rvt.plotting.style import style

MODE_STYLE = {
    "window": ("tab:gray", "Transformer, sliding window"),
    "kv_cache": ("black", "Transformer, KV cache (max slots)"),
    "kv_bucket": ("tab:purple", "Transformer, KV cache sized to context"),
    "naive": ("tab:orange", "Transformer, re-encode prefix"),
}


def mode_style(model: str, mode: str) -> dict:
    if mode == "state":
        base = style(model)
        return dict(color=base["color"], label=f"{base['label']}, state")
    colour, label = MODE_STYLE.get(mode, (None, f"{model} {mode}"))
    return dict(color=colour, label=label)


def _by_mode(rows):
    modes = {}
    for row in rows:
        modes.setdefault((row["model"], row["mode"]), []).append(row)
    return modes


def _per_mode(rows, solid: str, thin: str, thin_ls: str, xlabel: str, ylabel: str, title: str, thin_label: str):
    """One line per (model, mode) against position: ``solid`` with markers, ``thin`` beside it (its line
    style explained by one legend entry of its own)."""
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for (model, mode), sel in _by_mode(rows).items():
        xs = [r["position"] for r in sel]
        kw = mode_style(model, mode)
        ax.plot(xs, [r[solid] for r in sel], marker="o", ms=3, **kw)
        ax.plot(xs, [r[thin] for r in sel], ls=thin_ls, lw=1, color=kw["color"])
    ax.plot([], [], ls=thin_ls, lw=1, color="black", label=thin_label)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def latency_vs_position(rows):
    return _per_mode(
        rows,
        "latency_median_s",
        "latency_p99_s",
        ":",
        xlabel="context position (tokens, including the new one)",
        ylabel="seconds per token (batch 1)",
        title="Per-token latency: median (solid), p99 (dotted)",
        thin_label="p99 (each mode's colour)",
    )


def bytes_vs_position(rows):
    return _per_mode(
        rows,
        "state_bytes",
        "state_bytes_used",
        "--",
        xlabel="context position (tokens)",
        ylabel="bytes kept between tokens",
        title="State bytes: allocated (solid), filled (dashed)",
        thin_label="filled (each mode's colour)",
    )


FIGURES = [
    ("latency_vs_position.png", io.RESULTS, latency_vs_position),
    ("bytes_vs_position.png", io.RESULTS, bytes_vs_position),
]
