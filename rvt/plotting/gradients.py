"""Gradient norm against distance, LSTM forget-gate products, and the tanh RNN's spectral bound (CSV only)."""

from __future__ import annotations

from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np

from rvt import io
from rvt.plotting.style import style

LESSON_GATE, LESSON_STEPS = 0.99, 500  # the lesson: 0.99^500 ~ 0.0066


def _curves(rows, key, *fields):
    """{key value: (distances, field values...)} sorted by distance."""
    grouped = defaultdict(list)
    for row in rows:
        grouped[key(row)].append(row)
    return {
        k: tuple(
            np.array([r[f] for r in sorted(rs, key=lambda r: r["distance"])], float) for f in ("distance", *fields)
        )
        for k, rs in grouped.items()
    }


def _trained(row) -> bool:
    return row["trained"] is True


def gradient_vs_distance(rows: list[dict]):
    curves = _curves(rows, lambda r: (r["model"], _trained(r)), "grad_norm")
    names = list(dict.fromkeys(r["model"] for r in rows))
    cols = min(len(names), 2)
    fig, axes = plt.subplots(
        (len(names) + cols - 1) // cols,
        cols,
        figsize=(5.2 * cols, 3.4 * ((len(names) + 1) // 2)),
        squeeze=False,
        sharex=True,
    )
    for ax, name in zip(axes.flat, names, strict=False):
        kw = style(name)
        for trained, line in ((False, ":"), (True, "-")):
            if (name, trained) in curves:
                k, g = curves[(name, trained)]
                ax.semilogy(
                    k,
                    np.where(g > 0, g, np.nan),
                    line,
                    color=kw["color"],
                    label=f"{kw['label']} {'trained' if trained else 'init'}",
                )
        target = int(rows[0].get("target_distance", -1) or -1)
        if target >= 0:
            ax.axvline(target, color="grey", lw=0.8, ls="--", label=f"target's source (k = {target})")
        ax.set(title=kw["label"], ylabel="||d loss_T / d x_{T-k}||")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("distance k (positions before the last)")
    fig.suptitle("gradient of the last position's loss w.r.t. the input embedding k positions earlier")
    fig.tight_layout()
    return fig


def forget_products(rows: list[dict]):
    curves = _curves(rows, lambda r: (float(r["forget_bias"]), _trained(r)), "forget_product", "cell_path_grad")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    sweep = sorted(b for b, trained in curves if not trained)
    colours = plt.cm.viridis(np.linspace(0.0, 0.9, max(len(sweep), 1)))
    for colour, bias in zip(colours, sweep, strict=True):
        k, prod, path = curves[(bias, False)]
        gate = 1.0 / (1.0 + np.exp(-bias))
        ax.semilogy(
            k,
            np.where(prod > 0, prod, np.nan),
            color=colour,
            label=f"init, forget bias {bias:g} (sigmoid = {gate:.3f})",
        )
        every = max(len(k) // 12, 1)
        ax.semilogy(k[::every], np.where(path > 0, path, np.nan)[::every], "x", color=colour, ms=5)
    for (bias, trained), (k, prod, _) in curves.items():
        if trained:
            ax.semilogy(
                k,
                np.where(prod > 0, prod, np.nan),
                "-",
                lw=2.2,
                color="tab:blue",
                label=f"trained LSTM (bias {bias:g} at init)",
            )
    k_max = max(float(c[0].max()) for c in curves.values())
    ref_k = np.arange(0, max(k_max, LESSON_STEPS) + 1)
    ax.semilogy(ref_k, LESSON_GATE**ref_k, "--", color="grey", label=f"{LESSON_GATE}^k")
    ax.plot([LESSON_STEPS], [LESSON_GATE**LESSON_STEPS], "o", color="tab:red")
    ax.annotate(
        f"lesson: {LESSON_GATE}^{LESSON_STEPS} = {LESSON_GATE**LESSON_STEPS:.4f}",
        (LESSON_STEPS, LESSON_GATE**LESSON_STEPS),
        xytext=(-150, -30),
        textcoords="offset points",
        arrowprops=dict(arrowstyle="->", color="tab:red"),
        color="tab:red",
    )
    ax.set(
        xlabel="distance k",
        ylabel="mean over units of prod f over the last k steps",
        ylim=(1e-8, 2),
        title="LSTM forget-gate products (lines) = autodiff cell-path gradient dc_T/dc_{T-k} (x)",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def _number(value) -> float:
    return float(value) if value not in ("", None) else np.nan


def spectral(rows: list[dict]):
    """Per-step log rates of every model; for the tanh RNN beside its bounds (Pascanu et al. 2013):
    fitted slope <= mean ln||diag(tanh') W|| <= ln sigma_max(W)."""
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2.5, 3.8))
    labels = [f"{style(r['model'])['label']}\n{'trained' if _trained(r) else 'init'}" for r in rows]
    x = np.arange(len(rows))
    bars = (
        ("slope", "fitted slope of ln grad norm"),
        ("jacobian_log_norm", "tanh RNN: mean ln ||diag(tanh') W||"),
        ("log_sigma_max", "tanh RNN: ln sigma_max(W)"),
    )
    for i, (field, label) in enumerate(bars):
        values = [_number(r[field]) for r in rows]
        container = ax.bar(x + (i - 1) * 0.27, values, 0.27, label=label)
        ax.bar_label(container, [f"{v:+.3f}" if np.isfinite(v) else "" for v in values], fontsize=6, padding=2)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set(ylabel="per-step log rate", title="gradient decay per step, and the tanh RNN's bounds")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig


FIGURES = [
    ("gradient_vs_distance.png", io.RESULTS, gradient_vs_distance),
    ("forget_products.png", "gates.csv", forget_products),
    ("spectral.png", "summary.csv", spectral),
]
