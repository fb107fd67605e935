"""A benchmark table as a figure: per setting (and test), each model's accuracy -- mean over seeds (bar, 95%
interval), every seed (dots), the best seed (a dash, what several papers report) -- and the paper's
number where it has one (a black star)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rvt import io, metrics
from rvt.plotting.style import style


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
            mean, half, _ = metrics.mean_interval(values)
            ax.bar(x, mean, width * 0.9, color=kw["color"], alpha=0.55, label=kw["label"] if j == 0 else None)
            if half == half and half > 0:  # the interval, clipped to what an accuracy can be
                low, high = max(mean - half, 0.0), min(mean + half, 100.0)
                ax.errorbar(x, mean, yerr=[[mean - low], [high - mean]], color="black", lw=0.8, capsize=2)
            ax.plot([x] * len(values), values, "o", color=kw["color"], ms=2.5)
            ax.plot([x - width * 0.4, x + width * 0.4], [max(values)] * 2, color=kw["color"], lw=1.5)
            paper = sel[0].get("paper")
            if isinstance(paper, int | float):
                ax.plot([x], [paper], "*", color="black", ms=9, label=None if starred else "paper (%)")
                starred = True
    chance = rows[0].get("chance")
    if isinstance(chance, int | float):
        ax.axhline(100 * chance, color="grey", ls=":", lw=1, label=f"chance ({100 * chance:.0f}%)")
    labels = [" ".join(p for p in column if p) or "-" for column in columns]
    ax.set_xticks(
        np.arange(len(columns)),
        labels,
        rotation=30 if len(columns) > 4 else 0,
        ha="right" if len(columns) > 4 else "center",
        fontsize=8,
    )
    seeds = len({r["seed"] for r in rows})
    ax.set(
        ylim=(0, 102),
        ylabel="accuracy (%)",
        title=f"{rows[0]['benchmark']} ({seeds} seeds): bar = mean, whisker = 95% interval (clipped to 0-100),\n"
        "dash = best seed, dots = seeds, star = the paper's number",
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


FIGURES = [("benchmark.png", io.RESULTS, benchmark)]
