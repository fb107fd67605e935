"""Information bottleneck figures: accuracy vs source length (results.csv) and by position (per_position.csv)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rvt import io
from rvt.plotting.style import mean_band, style

_STYLE = {
    "final_state": dict(color="tab:red", label="RNN enc-dec, final state only", marker="o"),
    "attention": dict(color="tab:blue", label="RNN enc-dec + attention", marker="s"),
    "transformer": dict(marker="^", ms=5, lw=1),  # thinner, so the attention line beneath shows
}
_LINESTYLES = ("-", "--", ":", "-.")


def _style(model: str) -> dict:
    return {"marker": "o", **style(model), **_STYLE.get(model, {})}


def _sorted_unique(rows, key):
    return sorted({r[key] for r in rows}, key=lambda v: (str(type(v)), v))


def _models(rows):
    return list(dict.fromkeys(r["model"] for r in rows))  # run order: final_state, attention, ...


def accuracy_vs_length(rows: list[dict]):
    tasks, hiddens = list(dict.fromkeys(r["task"] for r in rows)), _sorted_unique(rows, "hidden")
    fig, axes = plt.subplots(2, len(tasks), figsize=(6.5 * len(tasks), 7), squeeze=False, sharex=True)
    for col, task in enumerate(tasks):
        for row_i, metric in enumerate(("accuracy", "seq_accuracy")):
            ax = axes[row_i, col]
            for model in _models(rows):
                for h_i, hidden in enumerate(hiddens):
                    sel = sorted(
                        (r for r in rows if (r["task"], r["model"], r["hidden"]) == (task, model, hidden)),
                        key=lambda r: r["src_len"],
                    )
                    if not sel:
                        continue
                    kw = _style(model)
                    if len(hiddens) > 1:  # hidden sizes by line style, models by colour
                        kw["label"] = f"{kw['label']}, hidden {hidden}"
                        kw["linestyle"] = _LINESTYLES[h_i % len(_LINESTYLES)]
                    mean_band(ax, sel, "src_len", lambda r, m=metric: r[m], model, line=kw)
            task_rows = [r for r in rows if r["task"] == task]
            if metric == "accuracy":
                ax.axhline(task_rows[0]["chance"], color="grey", ls=":", lw=1, label="chance (1 / alphabet)")
                ax.set_title(task)
            lengths = _sorted_unique(task_rows, "src_len")
            bits = {r["src_len"]: r["bits"] for r in task_rows}
            ax.set_xscale("log", base=2)
            ax.set_xticks(lengths, [f"{n}\n{bits[n]:g} bits" for n in lengths])
            ax.minorticks_off()
            ylabel = "token accuracy" if metric == "accuracy" else "sequence accuracy"
            ax.set(ylim=(-0.02, 1.02), ylabel=f"{ylabel} (mean; band: seeds min-max)")
            ax.grid(alpha=0.3)
        axes[-1, col].set_xlabel("source length L  (bits in the source: L log2 alphabet)")
    axes[0, 0].legend(fontsize=8, loc="center left")
    steps = rows[0]["steps"]
    seeds = len({r.get("seed", 0) for r in rows})
    fig.suptitle(
        f"Information bottleneck: teacher-forced accuracy vs source length ({steps} steps per run, {seeds} seeds)"
    )
    fig.tight_layout()
    return fig


def accuracy_by_position(rows: list[dict]):
    panels = [(t, h) for t in dict.fromkeys(r["task"] for r in rows) for h in _sorted_unique(rows, "hidden")]
    models = _models(rows)
    fig, axes = plt.subplots(
        len(panels), len(models), figsize=(4.2 * len(models), 3.4 * len(panels)), squeeze=False, sharey=True
    )
    lengths = _sorted_unique(rows, "src_len")
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(lengths)))
    for p_i, (task, hidden) in enumerate(panels):
        for m_i, model in enumerate(models):
            ax = axes[p_i, m_i]
            for colour, length in zip(colours, lengths, strict=True):
                sel = sorted(
                    (
                        r
                        for r in rows
                        if (r["task"], r["hidden"], r["model"], r["src_len"]) == (task, hidden, model, length)
                    ),
                    key=lambda r: r["position"],
                )
                if sel:
                    sel = [dict(r, x=(r["position"] + 0.5) / length) for r in sel]
                    line = dict(color=colour, marker=".", ms=3, label=f"L={length}")
                    mean_band(ax, sel, "x", lambda r: r["accuracy"], model, line=line)
            ax.set(
                title=f"{_style(model)['label']}\n{task}, hidden {hidden}",
                ylim=(-0.02, 1.02),
                xlim=(0, 1),
                xlabel="target position / L (0 = first output)",
            )
            ax.grid(alpha=0.3)
        axes[p_i, 0].set_ylabel("token accuracy (mean over seeds; band: min-max)")
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


FIGURES = [
    ("accuracy_vs_length.png", io.RESULTS, accuracy_vs_length),
    ("accuracy_by_position.png", "per_position.csv", accuracy_by_position),
]
