"""throughput: end to end at tiny size, the loop-corrected FLOP count, the exponent fit, bad input."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import throughput as throughput_config
from rvt import io, models, plotting, profiling
from rvt.errors import ConfigError
from rvt.studies import common, throughput
from tests.test_readme_tables import check_table


def tiny_config():
    config = throughput_config.get_config()
    config.models = "rnn,transformer_fused"
    config.lengths = (1, 4)
    config.max_length = {"transformer_fused": 1}
    config.model.rnn.hidden_size = 8
    config.model.transformer.update(d_model=8, num_heads=2)
    config.update(batch_size=2, repeats=1, min_time_s=0.0, peak_size=64)
    return config


def test_end_to_end_writes_every_file(tmp_path):
    workdir = tmp_path / "run"
    throughput.run(tiny_config(), str(workdir))
    check_table("throughput", workdir)  # the README's table generator works on this run
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["experiment"] == "throughput"
    assert saved["resolved"]["models"]["transformer_fused"]["lengths"] == [1]  # capped by max_length
    assert saved["resolved"]["models"]["transformer_fused"]["attention"] == "fused"
    rows = io.read_csv(workdir / "results.csv")
    assert list(rows[0]) == list(throughput.RESULT_COLUMNS)
    assert {(r["model"], r["T"]) for r in rows} == {("rnn", 1), ("rnn", 4), ("transformer_fused", 1)}
    assert {r["phase"] for r in rows} == {"fwd", "fwd_bwd"} and len(rows) == 6
    for r in rows:
        assert r["median_s"] > 0 and r["cpu_s"] > 0 and r["flops"] > 0 and r["batch"] == 2
        assert r["peak_fraction"] == pytest.approx(r["flops"] / r["median_s"] / r["peak_flops_per_s"])
        assert r["ratio_to_T1"] == 1.0 if r["T"] == 1 else r["ratio_to_T1"] > 0
        assert r["attention"] == ("fused" if r["model"] == "transformer_fused" else "")
    by = {(r["phase"], r["T"]): r["flops"] for r in rows if r["model"] == "rnn"}
    assert by[("fwd_bwd", 4)] > by[("fwd", 4)] > by[("fwd", 1)]  # backward costs more; more T, more FLOPs
    fits = io.read_csv(workdir / "exponents.csv")  # one point is no fit: no transformer_fused rows
    assert [(f["model"], f["phase"], f["T_min"], f["T_max"], f["points"]) for f in fits] == [
        ("rnn", "fwd", 1, 4, 2),
        ("rnn", "fwd_bwd", 1, 4, 2),
    ]
    records = io.read_jsonl(workdir / "metrics.jsonl")
    assert records[0]["kind"] == "peak" and len(records) == 7
    for png in ("time_vs_T.png", "utilisation_vs_T.png", "ratio_to_T1.png"):
        (workdir / png).unlink()
    plotting.plot_workdir(workdir)  # figures come back from the CSV alone
    for png in ("time_vs_T.png", "utilisation_vs_T.png", "ratio_to_T1.png"):
        assert (workdir / png).stat().st_size > 0


def test_traced_flops_count_every_step_of_a_scan_where_xla_counts_one():
    """XLA charges a loop body once whatever the trip count; the jaxpr count charges every trip, and
    agrees with XLA where no loop is left (a full unroll)."""
    n, length = 32, 12
    a = jax.ShapeDtypeStruct((n, n), jnp.float32)

    def scan(u):
        return lambda x, w: jax.lax.scan(lambda c, _: (c @ w, None), x, None, length=length, unroll=u)[0]

    truth = length * 2 * n**3
    assert profiling.cost(scan(1), a, a).flops == pytest.approx(truth / length, rel=1e-3)  # XLA: one matmul
    assert profiling.traced_flops(scan(1), a, a) == pytest.approx(truth, rel=1e-3)
    assert profiling.cost(scan(length), a, a).flops == pytest.approx(truth, rel=1e-3)  # no loop left


def test_recurrent_flops_are_linear_in_T():
    config = throughput_config.get_config()
    config.update(models="lstm", lengths=(16, 32))
    plan = throughput.resolve(config)[0][0]
    params = models.init_params(plan.module, jax.random.key(0), 1)
    batch, hidden = config.batch_size, config.model.lstm.hidden_size
    flops = {}
    for t in config.lengths:
        data = throughput.random_batch(jax.random.key(t), batch, t, config.vocab_size)
        flops[t] = profiling.traced_flops(throughput.loss_function(plan.module, "fwd"), params, data)
    # Doubling T adds 16 steps: 16 recurrent matmuls and 16 x the head, plus (unless the input projection
    # is one lookup in a projected table, as RecurrentLM does for small vocabularies) 16 input projections.
    recurrent_and_head = 2 * batch * hidden * 4 * hidden + 2 * batch * hidden * config.vocab_size
    projection = 2 * batch * hidden * 4 * hidden
    assert 16 * recurrent_and_head * 0.98 < flops[32] - flops[16] < 16 * (recurrent_and_head + projection) * 1.08


def test_exponent_fit_recovers_known_exponents():
    rng = np.random.default_rng(0)
    xs = [4.0**k for k in range(8)]
    noisy = [3.0 * x**1.7 * np.exp(rng.normal(0, 0.02)) for x in xs]
    assert profiling.fit_exponent(xs, noisy) == pytest.approx(1.7, abs=0.03)
    # A constant overhead hides the growth at small T; the upper half of the grid recovers it.
    ys = [1e3 + x**2 for x in xs]
    assert profiling.fit_exponent(xs, ys) < 1.6
    assert profiling.fit_exponent(*profiling.upper_half(xs, ys)) == pytest.approx(2.0, abs=0.02)
    rows = [dict(model="m", phase="fwd", T=x, median_s=y, cpu_s=x**1.5, flops=x) for x, y in zip(xs, ys, strict=True)]
    (fit,) = throughput.exponents(rows)
    assert fit["time_exponent"] == pytest.approx(2.0, abs=0.02) and fit["flops_exponent"] == pytest.approx(1.0)
    assert fit["cpu_exponent"] == pytest.approx(1.5)
    assert (fit["T_min"], fit["points"]) == (xs[4], 4)


def test_lengths_parse_from_a_string():
    assert common.parse_list("16, 4,1", "lengths", int, minimum=1) == (16, 4, 1)
    with pytest.raises(ConfigError, match="^lengths:"):
        common.parse_list("4,x", "lengths", int)
    with pytest.raises(ConfigError, match="^lengths:"):
        common.parse_list("4,4", "lengths", int)


# Bad settings: each must fail with one ConfigError naming it, writing nothing (tests/test_bad_input.py).
BAD_INPUTS = [
    (lambda c: setattr(c, "min_time_s", float("inf")), "min_time_s:"),
    (lambda c: setattr(c, "lengths", ()), "lengths:"),
    (lambda c: setattr(c, "lengths", (4, 0)), "lengths:"),
    (lambda c: setattr(c, "lengths", (4, 2.5)), "lengths:"),
    (lambda c: setattr(c, "batch_size", 0), "batch_size:"),
    (lambda c: setattr(c, "repeats", 0), "repeats:"),
    (lambda c: setattr(c, "min_time_s", -1.0), "min_time_s:"),
    (lambda c: setattr(c, "models", "rnn,bogus"), "models:"),
    (lambda c: c.max_length.update(transformer_fused=-1), "max_length.transformer_fused:"),
    (lambda c: setattr(c, "lengths", (8, 16)), "max_length.transformer_fused:"),  # cap 1 leaves nothing
    (lambda c: c.model.rnn.update(hidden_size=0), "model.rnn.hidden_size:"),
]
