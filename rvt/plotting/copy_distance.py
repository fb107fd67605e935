"""Accuracy against dependency distance, one line per model (from results.csv)."""

from __future__ import annotations

from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter, ScalarFormatter

from rvt import io, metrics
from rvt.plotting.style import marker, style


def distance_edges(distances, num_buckets: int = 16) -> tuple[np.ndarray, bool]:
    """Integer bucket edges covering every distance, and whether they are log-spaced.

    Distances spanning more than a decade get geometric buckets (and a log axis), so short distances
    -- where recurrent models differ most -- are not squeezed into one bucket.
    """
    lo, hi = int(min(distances)), int(max(distances)) + 1
    log_scale = hi / max(lo, 1) >= 20
    spacing = np.geomspace(max(lo, 1), hi, num_buckets + 1) if log_scale else np.linspace(lo, hi, num_buckets + 1)
    return np.unique(np.concatenate([[lo], spacing.round().astype(int), [hi]])), log_scale


def seed_curves(rows: list[dict], edges) -> dict[str, dict[int, list[dict]]]:
    """Per model, per seed: count-weighted accuracy in the distance buckets ``edges``."""
    grouped = defaultdict(lambda: defaultdict(list))
    for row in rows:
        grouped[row["model"]][row.get("seed", 0)].append(row)
    return {
        model: {
            seed: metrics.bucket(
                [r["distance"] for r in sel], [r["accuracy"] for r in sel], [r["count"] for r in sel], edges
            )
            for seed, sel in by_seed.items()
        }
        for model, by_seed in grouped.items()
    }


DODGE = 0.025  # sideways shift between models: a fraction of a log unit (or of the linear axis's span)


def accuracy_vs_distance(rows: list[dict]):
    """Mean accuracy over seeds per distance bucket, the seeds' min-max range as a band, each seed a dot."""
    edges, log_scale = distance_edges([row["distance"] for row in rows])
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    seeds_per_model = []
    curves = seed_curves(rows, edges)
    for index, (model, by_seed) in enumerate(curves.items()):
        spans = sorted({(b["lo"], b["hi"]) for buckets in by_seed.values() for b in buckets})
        stats, seed_points = [], []
        for lo, hi in spans:
            values = [b["accuracy"] for buckets in by_seed.values() for b in buckets if (b["lo"], b["hi"]) == (lo, hi)]
            centre = np.sqrt(lo * (hi - 1)) if log_scale else (lo + hi - 1) / 2
            stats.append((centre, *metrics.mean_range(values)[:3]))
            seed_points.append((len(stats) - 1, values))
        x, mean, low, high = (np.asarray(v) for v in zip(*stats, strict=True))
        # Dodge: each model's points shift a little sideways, so models at the same accuracy (several
        # at 1.00) stay visible side by side instead of one hiding the others.
        shift = (index - (len(curves) - 1) / 2) * DODGE
        x = x * np.exp(shift) if log_scale else x + shift * (edges[-1] - edges[0])
        kw = style(model)
        kw["label"] = f"{kw['label']} (n={len(by_seed)})"
        hollow = dict(mfc="white", zorder=3) if kw.get("linestyle", "-") != "-" else {}  # what lies below shows
        ax.plot(x, mean, marker=marker(model), ms=4, **hollow, **kw)
        ax.fill_between(x, low, high, color=kw["color"], alpha=0.18, lw=0)
        for i, values in seed_points:
            ax.plot([x[i]] * len(values), values, ".", color=kw["color"], ms=2.5, alpha=0.6)
        seeds_per_model.append(len(by_seed))
    trained = rows[0].get("train_max_distance")
    if isinstance(trained, int) and any(r.get("in_distribution") is False for r in rows):
        ax.axvspan(edges[0], trained + 0.5, color="grey", alpha=0.12, lw=0, label=f"trained distances (<= {trained})")
    task, step = rows[0]["task"], rows[0]["step"]
    chance = rows[0].get("chance")
    if isinstance(chance, int | float):  # older runs have no column; undefined chance is an empty cell
        ax.axhline(chance, color="grey", lw=1, ls=":", label=f"chance ({chance:.2g})")
    seeds = min(seeds_per_model) if seeds_per_model else 0
    ax.set(
        xlabel="dependency distance (positions between source token and target)",
        ylabel="accuracy (mean over seeds; band: min-max; dots: seeds)",
        ylim=(-0.02, 1.02),
        title=f"{task}: accuracy vs distance after {step} steps ({seeds} seed{'s' if seeds != 1 else ''})\n"
        "(points dodged sideways so equal values stay visible)",
    )
    if log_scale:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())  # only the labelled ticks below, no 3x10^0 clutter
        ax.set_xticks([t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000) if edges[0] <= t <= edges[-1]])
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


FIGURES = [("accuracy_vs_distance.png", io.RESULTS, accuracy_vs_distance)]
