"""long_sequence: the bytes each computation needs at one very long T, against the memory budget."""

import matplotlib.pyplot as plt

from rvt import io


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


FIGURES = [("long_sequence.png", io.RESULTS, long_sequence)]
