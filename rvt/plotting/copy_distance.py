"""Accuracy against dependency distance, one line per model (from results.csv)."""

from __future__ import annotations

from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np

from rvt import io, metrics
from rvt.plotting.style import style


def distance_edges(distances, num_buckets: int = 16) -> tuple[np.ndarray, bool]:
    """Integer bucket edges covering every distance, and whether they are log-spaced.

    Distances spanning more than a decade get geometric buckets (and a log axis), so short distances
    -- where recurrent models differ most -- are not squeezed into one bucket.
    """
    lo, hi = int(min(distances)), int(max(distances)) + 1
    log_scale = hi / max(lo, 1) >= 20
    spacing = np.geomspace(max(lo, 1), hi, num_buckets + 1) if log_scale else np.linspace(lo, hi, num_buckets + 1)
    return np.unique(np.concatenate([[lo], spacing.round().astype(int), [hi]])), log_scale


def accuracy_vs_distance(rows: list[dict]):
    by_model = defaultdict(list)
    for row in rows:
        by_model[row["model"]].append(row)
    edges, log_scale = distance_edges([row["distance"] for row in rows])
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for model, model_rows in by_model.items():
        buckets = metrics.bucket(
            [r["distance"] for r in model_rows],
            [r["accuracy"] for r in model_rows],
            [r["count"] for r in model_rows],
            edges,
        )
        centres = [np.sqrt(b["lo"] * (b["hi"] - 1)) if log_scale else (b["lo"] + b["hi"] - 1) / 2 for b in buckets]
        ax.plot(centres, [b["accuracy"] for b in buckets], marker="o", ms=3, **style(model))
    task, step = rows[0]["task"], rows[0]["step"]
    chance = rows[0].get("chance")
    if isinstance(chance, int | float):  # older runs have no column; undefined chance is an empty cell
        ax.axhline(chance, color="grey", lw=1, ls=":", label=f"chance ({chance:.2g})")
    ax.set(
        xlabel="dependency distance (positions between source token and target)",
        ylabel="accuracy",
        ylim=(-0.02, 1.02),
        title=f"{task}: accuracy vs distance after {step} steps",
    )
    if log_scale:
        ax.set_xscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return fig


FIGURES = [("accuracy_vs_distance.png", io.RESULTS, accuracy_vs_distance)]
