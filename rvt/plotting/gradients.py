"""Gradient norm against distance, LSTM forget-gate products, and the tanh RNN's spectral bound (CSV only)."""

from __future__ import annotations

from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np

from rvt import io
from rvt.plotting.style import mean_band, style

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
            sel = [r for r in rows if r["model"] == name and _trained(r) is trained and r["grad_norm"] > 0]
            if sel:
                label = f"{kw['label']} {'trained' if trained else 'init'}"
                mean_band(
                    ax,
                    sel,
                    "distance",
                    lambda r: r["grad_norm"],
                    name,
                    log_y=True,
                    line=dict(color=kw["color"], linestyle=line, label=label),
                )
        ax.set_yscale("log")
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
    seeds = len({r.get("seed", 0) for r in rows})
    fig.suptitle(
        "gradient of the last position's loss w.r.t. the input embedding k positions earlier\n"
        f"(mean over {seeds} seed{'s' if seeds != 1 else ''}; band: seeds min-max)"
    )
    fig.tight_layout()
    return fig


def _seed_mean(rows: list[dict], keys: tuple[str, ...], fields: tuple[str, ...]) -> list[dict]:
    """One row per value of ``keys``: ``fields`` averaged over seeds."""
    grouped = defaultdict(list)
    for row in rows:
        grouped[tuple(row[k] for k in keys)].append(row)
    return [
        dict(zip(keys, k, strict=True), **{f: float(np.mean([r[f] for r in rs])) for f in fields})
        for k, rs in grouped.items()
    ]


def forget_products(rows: list[dict]):
    seeds = len({r.get("seed", 0) for r in rows})
    rows = _seed_mean(rows, ("forget_bias", "trained", "distance"), ("forget_product", "cell_path_grad"))
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
        title="LSTM forget-gate products (lines) = autodiff cell-path gradient dc_T/dc_{T-k} (x)\n"
        f"mean over units and {seeds} seed{'s' if seeds != 1 else ''}",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def _number(value) -> float:
    return float(value) if value not in ("", None) else np.nan


def spectral(rows: list[dict]):
    """Left: every model's fitted per-step log rate of its gradient norm, at init and trained. Right: the
    tanh RNN's rate beside its bounds (Pascanu et al. 2013): slope <= mean ln||diag(tanh') W|| <= ln
    sigma_max(W). Bars are means over seeds, error bars the seeds' min-max."""
    from rvt import metrics

    def stat(sel, field):
        values = [_number(r[field]) for r in sel]
        values = [v for v in values if np.isfinite(v)]
        mean, low, high, _ = metrics.mean_range(values)
        return (mean, (mean - low, high - mean)) if values else (np.nan, (0.0, 0.0))

    names = list(dict.fromkeys(r["model"] for r in rows))
    rnn_rows = [r for r in rows if np.isfinite(_number(r.get("log_sigma_max")))]
    fig, axes = plt.subplots(1, 2 if rnn_rows else 1, figsize=(11, 4), squeeze=False)
    ax = axes[0, 0]
    x = np.arange(len(names))
    for i, (trained, hatch) in enumerate(((False, "//"), (True, ""))):
        stats = [stat([r for r in rows if r["model"] == n and _trained(r) is trained], "slope") for n in names]
        means, halves = np.array([m for m, _ in stats]), np.nan_to_num(np.array([h for _, h in stats]).T)
        colours = [style(n)["color"] for n in names]
        ax.bar(
            x + (i - 0.5) * 0.38,
            means,
            0.38,
            yerr=halves,
            color=colours,
            alpha=0.55 if not trained else 0.95,
            hatch=hatch,
            edgecolor="black",
            lw=0.5,
            capsize=3,
            label="trained" if trained else "init",
        )
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(x, [style(n)["label"] for n in names], fontsize=8)
    ax.set(
        ylabel="fitted slope of ln grad norm per step",
        title="gradient decay per step (mean over seeds; whiskers: min-max)",
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    if rnn_rows:
        ax = axes[0, 1]
        fields = (
            ("slope", "fitted slope"),
            ("jacobian_log_norm", "mean ln ||diag(tanh') W||"),
            ("log_sigma_max", "ln sigma_max(W)"),
        )
        for i, trained in enumerate((False, True)):
            sel = [r for r in rnn_rows if _trained(r) is trained]
            stats = [stat(sel, f) for f, _ in fields]
            xs = np.arange(len(fields)) + (i - 0.5) * 0.38
            bars = ax.bar(
                xs,
                [m for m, _ in stats],
                0.38,
                yerr=np.nan_to_num(np.array([h for _, h in stats]).T),
                capsize=3,
                color="tab:red",
                alpha=0.55 if not trained else 0.95,
                hatch="//" if not trained else "",
                edgecolor="black",
                lw=0.5,
                label="trained" if trained else "init",
            )
            ax.bar_label(bars, [f"{m:+.3f}" for m, _ in stats], fontsize=7, padding=2)  # 0.000 stays readable
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xticks(np.arange(len(fields)), [label for _, label in fields], fontsize=8)
        ax.set(ylabel="per-step log rate", title="tanh RNN: the rate and its bounds (slope <= Jacobian <= sigma)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


FIGURES = [
    ("gradient_vs_distance.png", io.RESULTS, gradient_vs_distance),
    ("forget_products.png", "gates.csv", forget_products),
    ("spectral.png", "summary.csv", spectral),
]
