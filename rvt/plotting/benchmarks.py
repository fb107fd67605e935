"""A benchmark table as a figure: per setting (and test), each model's accuracy -- mean over seeds (bar),
every seed (dots), the best seed (a dash, what several papers report) -- and the paper's number where it
has one (a black star). MQAR also gets Zoology's headline figure: accuracy against the recurrent state a
model keeps (bytes), one line per model."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rvt import io
from rvt.plotting.style import marker, mean_band, style


def benchmark(rows: list[dict]):
    columns = list(dict.fromkeys((r["setting"], r["test"]) for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(columns) * len(models) * 0.35 + 2), 4.4))
    width = 0.8 / len(models)
    starred = False
    for i, model in enumerate(models):
        kw = style(model)
        for j, column in enumerate(columns):
            sel = [r for r in rows if r["model"] == model and (r["setting"], r["test"]) == column]
            if not sel:
                continue
            x = j + (i - (len(models) - 1) / 2) * width
            values = [100 * r["accuracy"] for r in sel]
            mean = sum(values) / len(values)
            ax.bar(x, mean, width * 0.9, color=kw["color"], alpha=0.55, label=kw["label"] if j == 0 else None)
            ax.plot([x] * len(values), values, "o", color=kw["color"], ms=2.5)
            ax.plot([x - width * 0.4, x + width * 0.4], [max(values)] * 2, color=kw["color"], lw=1.5)
            paper = sel[0].get("paper")
            if isinstance(paper, int | float):
                ax.plot([x], [paper], "*", color="black", ms=9, label=None if starred else "paper (%)")
                starred = True
    chanced = False
    for j, column in enumerate(columns):  # chance differs between columns (parity 1/2, arithmetic 1/5)
        chance = next(r.get("chance") for r in rows if (r["setting"], r["test"]) == column)
        if isinstance(chance, int | float):
            label = None if chanced else "chance"
            ax.plot([j - 0.45, j + 0.45], [100 * chance] * 2, color="grey", ls=":", lw=1.2, label=label)
            chanced = True
    labels = ["\n".join(p.replace("_", " ") for p in column if p) or "-" for column in columns]
    ax.set_xticks(
        np.arange(len(columns)),
        labels,
        rotation=30 if len(columns) > 6 else 0,
        ha="right" if len(columns) > 6 else "center",
        fontsize=8,
    )
    seeds = len({r["seed"] for r in rows})
    ax.set(
        ylim=(0, 102),
        ylabel="accuracy (%)",
        title=f"{rows[0]['benchmark']} ({seeds} seeds): bar = mean, dots = seeds, dash = best seed,\n"
        "star = the paper's number",
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def state_size(rows: list[dict]):
    """Zoology's Figure 2 layout: per (length, pairs), accuracy against the bytes of state a model keeps
    per sequence at that length (a recurrent state; a Transformer's KV cache), one line per model."""
    rows = [r for r in rows if r["benchmark"] == "mqar" and isinstance(r.get("state_bytes"), int | float)]
    if not rows:
        return None
    points = list(dict.fromkeys(r["setting"].rsplit(",width=", 1)[0] for r in rows))
    fig, axes = plt.subplots(1, len(points), figsize=(5.2 * len(points) + 1.6, 4.2), squeeze=False)
    for ax, point in zip(axes[0], points, strict=True):
        sel = [dict(r, percent=100 * r["accuracy"]) for r in rows if r["setting"].startswith(point + ",")]
        for model in dict.fromkeys(r["model"] for r in sel):
            line = dict(style(model), marker=marker(model), ms=5)
            mean_band(
                ax, [r for r in sel if r["model"] == model], "state_bytes", lambda r: r["percent"], model, line=line
            )
        chance = sel[0].get("chance")
        if isinstance(chance, int | float):
            ax.axhline(100 * chance, color="grey", ls=":", lw=1, label=f"chance ({100 * chance:.0f}%)")
        ax.set(xscale="log", ylim=(0, 102), xlabel="state per sequence (bytes, log)", ylabel="accuracy (%)")
        ax.set_title(point.replace("T=", "T = ").replace(",kv=", ", kv pairs = "), fontsize=10)
        ax.grid(alpha=0.3)
    seeds = len({r["seed"] for r in rows})
    fig.suptitle(f"MQAR: accuracy against state size (widths as set; mean, band: min-max of {seeds} seeds)")
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


FIGURES = [("benchmark.png", io.RESULTS, benchmark), ("state_size.png", io.RESULTS, state_size)]
