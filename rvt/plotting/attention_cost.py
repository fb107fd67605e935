"""Compiled bytes and FLOPs against T for attention, a Transformer block and an LSTM layer (results.csv)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from rvt import io
from rvt.plotting.style import style

LAYER_STYLE = {
    "attention": dict(color="black", label="attention layer"),
    "block": dict(color="tab:purple", label="Transformer block"),
    "lstm": dict(style("lstm"), label="LSTM layer"),
}
PHASE_LINE = {"fwd": dict(linestyle="-", marker="o"), "fwd_bwd": dict(linestyle="--", marker="s")}


def _series(rows, column):
    """(layer, phase) -> sorted (T, value) pairs, skipping empty cells."""
    out = {}
    for row in sorted(rows, key=lambda r: r["T"]):
        if row[column] != "":
            out.setdefault((row["layer"], row["phase"]), []).append((row["T"], row[column]))
    return out


def _lines(ax, rows, column):
    for (layer, phase), points in _series(rows, column).items():
        kw = dict(LAYER_STYLE.get(layer, dict(label=layer)), **PHASE_LINE.get(phase, {}))
        kw["label"] = f"{kw['label']} ({phase})"
        ax.plot([t for t, _ in points], [v for _, v in points], ms=3, **kw)


def bytes_vs_length(rows: list[dict]):
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    _lines(ax, rows, "total_bytes")
    scores = sorted({(r["T"], r["score_bytes"]) for r in rows if r["score_bytes"] != "" and r["phase"] == "fwd"})
    if scores:
        ax.plot(
            [t for t, _ in scores], [b for _, b in scores], ":", color="grey", label="score matrices T² x 4 B x heads"
        )
    budget = rows[0]["budget_bytes"]
    ax.axhline(budget, color="tab:red", lw=1.2)
    ax.annotate(
        f"budget {budget / 2**30:.1f} GiB", (min(r["T"] for r in rows), budget * 1.4), color="tab:red", fontsize=8
    )
    width, heads, batch = rows[0]["width"], rows[0]["heads"], rows[0]["batch"]
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="sequence length T",
        ylabel="compiled bytes (argument + output + temp)",
        title=f"Memory against T (XLA memory analysis; width {width}, {heads} heads, batch {batch})",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


def flops_vs_length(rows: list[dict]):
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    _lines(ax, rows, "flops")
    for (layer, phase), points in _series(rows, "flops_closed").items():
        ax.plot(
            [t for t, _ in points],
            [v for _, v in points],
            ":",
            color=LAYER_STYLE.get(layer, {}).get("color"),
            lw=1,
            label=f"closed form ({layer}, {phase})" if phase == "fwd" else None,
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="sequence length T",
        ylabel="FLOPs (XLA cost analysis)",
        title="FLOPs against T (dotted: matmul closed forms)",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


FIGURES = [
    ("bytes_vs_T.png", io.RESULTS, bytes_vs_length),
    ("flops_vs_T.png", io.RESULTS, flops_vs_length),
]
