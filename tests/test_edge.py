"""Edge study: the lesson's LSTM counted by hand; end to end (FLOPs by hand vs XLA there); bad input."""

import jax

from experiments.configs import edge as edge_config
from rvt import io, models
from rvt.studies import edge
from tests.test_readme_tables import check_table


def test_two_layer_lstm_256_counted_by_hand():
    module, _ = models.make_model("lstm", dict(hidden_size=256, num_layers=2), vocab_size=256, length=1)
    shapes = jax.eval_shape(lambda k: models.init_params(module, k, 1), jax.random.key(0))
    h, v = 256, 256
    layer = 4 * h * (h + h) + 4 * h  # W_ih, W_hh for four gates; one bias vector (rvt keeps b_ih only)
    assert layer == 525_312  # one such layer is the lesson's "~500K"; two are twice that
    assert models.count_params(shapes) == v * h + 2 * layer + h * v + v == 1_181_952
    _, config = models.make_model("lstm", dict(hidden_size=256, num_layers=2), vocab_size=256, length=1)
    assert config.num_params(v) == 1_181_952
    matmuls = 2 * (2 * 4 * h * (h + h)) + 2 * h * v
    assert matmuls == 2_228_224  # the matmuls by hand; the cost model adds the gates' pointwise work
    assert config.flops_per_token(v, 1024) == matmuls + 2 * 10 * h


def tiny_config():
    config = edge_config.get_config()
    config.models = "transformer,lstm_2x32"
    config.variants = dict(lstm_2x32=dict(model="lstm", hidden_size=32, num_layers=2))
    config.lesson_model = "lstm_2x32"
    config.model.transformer.update(d_model=32, num_heads=2)
    config.update(vocab_size=16, context=8, repeats=5)
    return config


def test_end_to_end_writes_every_file(tmp_path):
    workdir = tmp_path / "run"
    edge.run(tiny_config(), str(workdir))
    check_table("edge", workdir)  # the README's table generator works on this run
    for name in ("config.json", "metrics.jsonl", "results.csv", "edge_footprint.png"):
        assert (workdir / name).stat().st_size > 0, name
    rows = {r["model"]: r for r in io.read_csv(workdir / "results.csv")}
    assert list(next(iter(rows.values()))) == list(edge.RESULT_COLUMNS)
    assert set(rows) == {"transformer", "lstm_2x32"}
    two = rows["lstm_2x32"]
    assert two["base"] == "lstm" and two["params"] == 16 * 32 + 2 * (4 * 32 * 64 + 4 * 32) + 32 * 16 + 16
    for r in rows.values():
        assert r["bytes_fp32"] == 2 * r["bytes_bf16"] == 4 * r["params"]
        assert r["params"] < r["bytes_int8"] < r["bytes_bf16"]
        assert r["latency_s"] > 0
        # XLA also counts the gates, norms and softmax that the closed form (matmuls only) leaves out.
        assert r["flops_closed_form"] <= r["flops_per_token"] <= 1.25 * r["flops_closed_form"]
    assert two["state_bytes"] == 2 * 2 * 32 * 4  # two layers of (c, h), 32 floats each
    # The KV cache at 8 tokens: 1 layer x (keys + values) x 8 slots x 32 floats, + int32 positions.
    assert rows["transformer"]["state_bytes"] == 2 * 8 * 32 * 4 + 8 * 4 + 4
    lessons = [r for r in io.read_jsonl(workdir / "metrics.jsonl") if r["kind"] == "lesson"]
    assert [r["model"] for r in lessons] == ["lstm_2x32"]


# Bad settings: each must fail with one ConfigError naming it, writing nothing (tests/test_bad_input.py).
BAD_INPUTS = [
    (lambda c: setattr(c, "context", 10**12), "context:"),
    (lambda c: c.variants.lstm_2x32.update(hidden_size=-1), "variants.lstm_2x32.hidden_size:"),
    (lambda c: setattr(c, "models", "lstm,nope"), "models:"),
    (lambda c: c.variants.lstm_2x32.update(model="nope"), "variants.lstm_2x32.model:"),
    (lambda c: setattr(c, "context", 0), "context:"),
    (lambda c: setattr(c, "repeats", 0), "repeats:"),
    (lambda c: setattr(c, "vocab_size", 1), "vocab_size:"),
    (lambda c: setattr(c, "lesson_model", "gru"), "lesson_model:"),
]
