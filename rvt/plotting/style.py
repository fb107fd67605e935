"""One colour, marker and label per model, so every figure in the project agrees."""

import contextlib

MODEL_STYLE = {
    "rnn": ("tab:red", "tanh RNN"),
    "lstm": ("tab:blue", "LSTM"),
    "gru": ("tab:green", "GRU"),
    "transformer": ("black", "Transformer"),
    "lru": ("tab:purple", "LRU"),
    "mingru": ("tab:orange", "minGRU"),
    "minlstm": ("tab:brown", "minLSTM"),
    "s6": ("tab:cyan", "selective SSM (S6)"),
    # the benchmarks' Transformer variants (positions fixed per variant)
    "transformer_sinusoidal": ("dimgray", "Transformer, sinusoidal"),
    "transformer_rope": ("mediumvioletred", "Transformer, RoPE"),
    "transformer_learned": ("darkkhaki", "Transformer, learned positions"),
}
# Colours for models registered by users: none of them is a built-in model's colour.
SPARE_COLOURS = ("tab:pink", "tab:olive", "tab:gray", "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4")


RUN_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (1, 3)))
_OVERLAID_RUNS: list[str] = []  # set by overlay_runs while one figure overlays several runs


@contextlib.contextmanager
def overlay_runs(runs: list[str]):
    """While drawing a figure of several runs, models named ``<run>/<model>`` keep their model's colour and
    marker, and each run gets its own line style."""
    _OVERLAID_RUNS[:] = runs
    try:
        yield
    finally:
        _OVERLAID_RUNS.clear()


def style(model: str) -> dict:
    """matplotlib kwargs (color, label) for a model name; unregistered names get a stable colour from their name."""
    if "/" in model and model.split("/", 1)[0] in _OVERLAID_RUNS:
        run, base = model.split("/", 1)
        kwargs = style(base)
        ls = RUN_LINESTYLES[_OVERLAID_RUNS.index(run) % len(RUN_LINESTYLES)]
        return dict(kwargs, label=f"{run}: {kwargs['label']}", linestyle=ls)
    colour, label = MODEL_STYLE.get(model, (None, model))
    if colour is None:  # a model without a fixed colour: a stable one from its name, not the LSTM's
        colour = SPARE_COLOURS[sum(map(ord, model)) % len(SPARE_COLOURS)]
    # Dashed so a recurrent model at the same accuracy stays visible underneath.
    dashes = dict(linestyle="--") if model.startswith("transformer") else {}
    return dict(color=colour, label=label, **dashes)


MARKERS = {
    "rnn": "v",
    "lstm": "s",
    "gru": "D",
    "transformer": "o",
    "lru": "^",
    "mingru": "P",
    "minlstm": "X",
    "s6": "*",
}
SPARE_MARKERS = ("h", "p", "<", ">", "d", "8")


def marker(model: str) -> str:
    """One marker per model (unregistered names: a stable spare one), so lines differ in print too."""
    if "/" in model and model.split("/", 1)[0] in _OVERLAID_RUNS:
        return marker(model.split("/", 1)[1])
    return MARKERS.get(model) or SPARE_MARKERS[sum(map(ord, model)) % len(SPARE_MARKERS)]


def mean_band(
    ax, rows: list[dict], x_key: str, value, model: str, log_y: bool = False, line: dict | None = None, **kwargs
) -> int:
    """Draw ``model``'s mean over seeds of ``value(row)`` against ``row[x_key]``, the min-max range of its
    seeds as a band and every seed as a dot (rvt.metrics.mean_range); the label gains the seed count.
    Returns it. ``line``: matplotlib kwargs replacing the model's own style and marker."""
    import numpy as np

    from rvt import metrics

    by_x: dict = {}
    for row in rows:
        by_x.setdefault(row[x_key], []).append(value(row))
    xs = sorted(by_x)
    stats = [metrics.mean_range(by_x[x]) for x in xs]
    mean = np.array([s[0] for s in stats])
    low, high = np.array([s[1] for s in stats]), np.array([s[2] for s in stats])
    n = max(s[3] for s in stats)
    kw = dict(line if line is not None else dict(style(model), marker=marker(model), ms=4), **kwargs)
    if kw.get("label"):
        kw["label"] = f"{kw['label']} (n={n})"
    ax.plot(xs, mean, **kw)
    if n > 1:
        ax.fill_between(xs, low, high, color=kw["color"], alpha=0.18, lw=0)
        seeds_x = [x for x in xs for v in by_x[x] if v == v]
        seeds_y = [v for x in xs for v in by_x[x] if v == v]
        ax.plot(seeds_x, seeds_y, ".", color=kw["color"], ms=2.5, alpha=0.6, zorder=kw.get("zorder", 2))
    return n
