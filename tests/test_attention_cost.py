"""attention_cost: closed-form FLOPs, the lesson's score counts, end to end at tiny size, bad input."""

import json

import jax
import jax.numpy as jnp
import pytest

from experiments.configs import attention_cost as attention_cost_config
from rvt import io, plotting, profiling
from rvt.studies import attention_cost
from tests.test_readme_tables import check_table


def small_config(**overrides):
    config = attention_cost_config.get_config()
    config.update(width=128, num_heads=2, batch_size=2, **overrides)
    return config


def xla_flops(layer, phase, length, config):
    x = jax.ShapeDtypeStruct((config.batch_size, length, config.width), jnp.float32)
    fn = attention_cost.phase_fn(layer.apply, phase)
    return profiling.cost(fn, *attention_cost.phase_args(layer, phase, x)).flops


@pytest.mark.parametrize("attention", ["vmapped", "fused"])
def test_attention_flops_match_the_closed_form(attention):
    config = small_config(attention=attention)
    b, d, t = config.batch_size, config.width, 64
    # QKV (3 x 2BTD^2) and output (2BTD^2) projections; scores q k^T and weights @ v (2BT^2D each).
    closed = 8 * b * t * d * d + 4 * b * t * t * d
    layer = attention_cost.make_layer("attention", config)
    assert xla_flops(layer, "fwd", t, config) == pytest.approx(closed, rel=0.03)
    # Backward: each matmul's two operand gradients cost one forward matmul each.
    assert xla_flops(layer, "fwd_bwd", t, config) == pytest.approx(3 * closed, rel=0.03)


def test_block_flops_match_the_closed_form():
    config = small_config()
    b, d, t, f = config.batch_size, config.width, 64, config.mlp_ratio * config.width
    closed = 8 * b * t * d * d + 4 * b * t * t * d + 4 * b * t * d * f  # attention + two MLP matmuls
    layer = attention_cost.make_layer("block", config)
    assert xla_flops(layer, "fwd", t, config) == pytest.approx(closed, rel=0.03)


@pytest.mark.parametrize("phase, factor", [("fwd", 1), ("fwd_bwd", 3)])
def test_lstm_flops_match_the_closed_form_counted_on_the_jaxpr(phase, factor):
    config = small_config()
    b, d, t = config.batch_size, config.width, 32
    closed = factor * (2 * b * t * d * 4 * d + 2 * b * t * d * 4 * d)  # W_ih x and W_hh h for 4 gates
    if phase == "fwd_bwd":  # backward through the scan also adds each step's [H, 4H] gradient of W_hh
        closed += t * 4 * d * d
    layer = attention_cost.make_layer("lstm", config)
    assert xla_flops(layer, phase, t, config) < 0.7 * closed  # XLA charges the recurrent matmul of one step
    x = jax.ShapeDtypeStruct((b, t, d), jnp.float32)
    counted = profiling.traced_flops(
        attention_cost.phase_fn(layer.apply, phase), *attention_cost.phase_args(layer, phase, x)
    )
    assert counted == pytest.approx(closed, rel=0.05)  # the gates' elementwise work is the rest


@pytest.mark.parametrize("attention", ["vmapped", "fused"])
def test_traced_score_count_is_the_lessons(attention):
    assert attention_cost.traced_scores_per_head(attention, 512, 4, 16) == 262_144
    count = attention_cost.traced_scores_per_head(attention, 4096, 4, 16)
    assert count == 4096**2 and round(count / 1e6, 1) == 16.8
    assert attention_cost.LESSON_SCORES[4096] == pytest.approx(count, rel=0.005)


def tiny_config():
    config = attention_cost_config.get_config()
    config.update(
        layers="attention,lstm",
        width=8,
        num_heads=2,
        lengths=(8, 32),
        measure_max_length=8,
        repeats=1,
        measure_max_fraction=1.0,
    )
    # Between the attention layer's (~21 KB) and the LSTM's (~13 KB) compiled forward bytes at T = 32.
    config.budget_bytes = 16_000
    return config


def test_end_to_end_writes_every_file(tmp_path):
    workdir = tmp_path / "run"
    attention_cost.run(tiny_config(), str(workdir))
    check_table("attention_cost", workdir)  # the README's table generator works on this run
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["experiment"] == "attention_cost" and saved["resolved"]["budget_bytes"] == 16_000
    rows = io.read_csv(workdir / "results.csv")
    assert list(rows[0]) == list(attention_cost.RESULT_COLUMNS)
    assert len(rows) == 2 * 2 * 2
    for r in rows:
        assert r["total_bytes"] == r["argument_bytes"] + r["output_bytes"] + r["temp_bytes"] > 0
        assert r["fits"] is (r["total_bytes"] <= 16_000)  # CSV holds true / false, read back as bool
        assert (r["measured_s"] != "") == (r["T"] == 8)
        assert r["flops_closed"] <= r["flops"] < 2 * r["flops_closed"]  # tiny width: elementwise ops weigh in
        if r["layer"] == "lstm":
            assert r["scores_per_head"] == ""
        else:
            assert r["scores_per_head"] == r["T"] ** 2 and r["score_bytes"] == r["T"] ** 2 * 4 * 2
    at32 = {(r["layer"], r["phase"]): r for r in rows if r["T"] == 32}
    assert (at32[("attention", "fwd")]["fits"], at32[("lstm", "fwd")]["fits"]) == (False, True)
    limits = {(f["layer"], f["phase"]): f for f in io.read_csv(workdir / "limits.csv")}
    assert set(limits) == {(layer, p) for layer in ("attention", "lstm") for p in attention_cost.PHASES}
    assert limits[("lstm", "fwd")]["crossing_T"] > limits[("attention", "fwd")]["crossing_T"]
    assert limits[("attention", "fwd")]["first_failing_T"] == 32
    for png in ("bytes_vs_T.png", "flops_vs_T.png"):
        (workdir / png).unlink()
    plotting.plot_workdir(workdir)
    for png in ("bytes_vs_T.png", "flops_vs_T.png"):
        assert (workdir / png).stat().st_size > 0


def test_default_budget_is_this_machines_memory():
    budget, source = profiling.memory_budget()
    assert budget > 2**30 and source


# Bad settings: each must fail with one ConfigError naming it, writing nothing (tests/test_bad_input.py).
BAD_INPUTS = [
    (lambda c: setattr(c, "min_time_s", float("inf")), "min_time_s:"),
    (lambda c: setattr(c, "lengths", ()), "lengths:"),
    (lambda c: setattr(c, "lengths", (128, -4)), "lengths:"),
    (lambda c: setattr(c, "layers", "attention,bogus"), "layers:"),
    (lambda c: setattr(c, "phases", "bwd"), "phases:"),
    (lambda c: setattr(c, "num_heads", 3), "num_heads:"),
    (lambda c: setattr(c, "width", 0), "width:"),
    (lambda c: setattr(c, "attention", "flash"), "attention:"),
    (lambda c: setattr(c, "budget_bytes", -1), "budget_bytes:"),
    (lambda c: setattr(c, "measure_max_fraction", 0.0), "measure_max_fraction:"),
]


@pytest.mark.parametrize("name", ["s6", "mingru"])
def test_any_registered_model_is_a_layer(name):
    """--config.layers takes registered models too: one block at the width, output shaped like its input,
    its closed-form FLOPs within 10% of the count on its traced forward."""
    config = tiny_config()
    layer = attention_cost.make_layer(name, config)
    x = jnp.ones((config.batch_size, 16, config.width))
    params = layer.init(jax.random.key(0))
    assert layer.apply(params, x).shape == x.shape
    traced = profiling.traced_flops(layer.apply, params, x)
    assert traced == pytest.approx(layer.closed_fwd(16), rel=0.1)
