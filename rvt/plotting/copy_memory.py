"""Copying memory problem: loss / memoryless baseline against delay, and copied-symbol accuracy (CSV only)."""

from __future__ import annotations

from collections import defaultdict

import matplotlib.pyplot as plt

from rvt import io
from rvt.plotting.style import mean_band


def loss_vs_delay(rows: list[dict]):
    by_model = defaultdict(list)
    for row in rows:
        by_model[row["model"]].append(row)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for model, model_rows in by_model.items():
        mean_band(ax_loss, model_rows, "delay", lambda r: r["loss"] / r["baseline"], model, log_y=True)
        mean_band(ax_acc, model_rows, "delay", lambda r: r["accuracy"], model)
    # Runs before these columns existed were Arjovsky's setting: 10 symbols from an alphabet of 8.
    symbols, alphabet = rows[0].get("num_symbols", 10), rows[0].get("alphabet", 8)
    ax_loss.axhline(1.0, color="grey", ls="--", label=f"memoryless: {symbols} ln {alphabet} / (T + {2 * symbols})")
    ax_loss.set_xscale("log")
    ax_loss.set_yscale("log")  # loss > 0: ratios from ~1e-3 (learnt) to ~1 (memoryless)
    ax_loss.set(
        xlabel="delay T",
        ylabel="final loss / memoryless baseline (mean; band: seeds min-max)",
        title=f"copying memory problem after {rows[0]['steps']} steps",
    )
    ax_acc.axhline(1 / alphabet, color="grey", ls="--", label=f"chance (1/{alphabet})")
    ax_acc.set_xscale("log")
    ax_acc.set(
        xlabel="delay T",
        ylabel="accuracy on the copied symbols",
        ylim=(-0.02, 1.02),
        title=f"recall of the {symbols} symbols",
    )
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


FIGURES = [("loss_vs_delay.png", io.RESULTS, loss_vs_delay)]
