"""One colour and label per model, so every figure in the project agrees."""

MODEL_STYLE = {
    "rnn": ("tab:red", "tanh RNN"),
    "lstm": ("tab:blue", "LSTM"),
    "gru": ("tab:green", "GRU"),
    "transformer": ("black", "Transformer"),
}


def style(model: str) -> dict:
    """matplotlib kwargs (color, label) for a model name; unknown names get the default cycle."""
    colour, label = MODEL_STYLE.get(model, (None, model))
    if colour is None:  # a model without a fixed colour: a stable one from its name, not the LSTM's
        colour = f"C{sum(map(ord, model)) % 10}"
    # Dashed so a recurrent model at the same accuracy stays visible underneath.
    dashes = dict(linestyle="--") if model.startswith("transformer") else {}
    return dict(color=colour, label=label, **dashes)
