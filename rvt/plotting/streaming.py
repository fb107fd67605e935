"""Streaming figures: latency and bytes against context position; memory needed at very long T."""

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


def _per_mode(rows, solid: str, thin: str, thin_ls: str, xlabel: str, ylabel: str, title: str):
    """One line per (model, mode) against position: ``solid`` with markers, ``thin`` beside it."""
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for (model, mode), sel in _by_mode(rows).items():
        xs = [r["position"] for r in sel]
        kw = mode_style(model, mode)
        ax.plot(xs, [r[solid] for r in sel], marker="o", ms=3, **kw)
        ax.plot(xs, [r[thin] for r in sel], ls=thin_ls, lw=1, color=kw["color"])
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
    )


def long_sequence(rows):
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.6))
    labels = [f"{r['model']} {r['mode']}" for r in rows]
    colours = ["tab:green" if r["ran"] else ("tab:red" if not r["fits"] else "tab:gray") for r in rows]
    ax.barh(labels, [r["required_bytes"] for r in rows], color=colours)
    budget = rows[0]["budget_bytes"]
    ax.axvline(budget, color="black", ls="--", label=f"memory budget {budget / 2**30:.1f} GiB")
    for i, r in enumerate(rows):
        text = f"ran: {r['measured_s']:.3g} s" if r["ran"] else ("does not fit" if not r["fits"] else "not run")
        ax.text(r["required_bytes"], i, f"  {text}", va="center", fontsize=8)
    ax.set(
        xscale="log",
        xlabel="bytes XLA's memory analysis says the compiled function needs",
        title=f"T = {rows[0]['T']:,}: what fits (green ran, red does not fit)",
    )
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    return fig


FIGURES = [
    ("latency_vs_position.png", io.RESULTS, latency_vs_position),
    ("bytes_vs_position.png", io.RESULTS, bytes_vs_position),
    ("long_sequence.png", "long_sequence.csv", long_sequence),
]
