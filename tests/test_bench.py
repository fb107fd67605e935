"""Smoke test of scripts/bench_train_step.py: every case runs and the CSV holds what the README quotes."""

import dataclasses

import pytest

from rvt import io
from scripts import bench_train_step as bench

TOY = dataclasses.replace(
    bench.QUICK,
    lengths=(8,),
    batch=2,
    hidden=8,
    embed=8,
    vocab=5,
    tf_length=8,
    tf_batch=2,
    tf_d_model=8,
    tf_layers=1,
    tf_heads=2,
    attention=("vmapped",),
    unfolded=False,
    rounds=1,
    repeats=1,
    peak_size=32,
    torch=False,
)


def test_bench_quick_writes_every_row(tmp_path):
    out = tmp_path / "bench" / "train_step.csv"
    bench.run(TOY, str(out))
    rows = io.read_csv(out)
    assert set(bench.COLUMNS) <= set(rows[0])
    got = {(row["impl"], row["model"]) for row in rows}
    assert got == {("ours", "lstm"), ("flax", "lstm"), ("ours_vmapped", "transformer"), ("xla", "matmul_peak")}
    for row in rows[:-1]:
        assert row["median_s"] > 0 and row["compile_s"] > 0 and row["flops"] > 0
        assert row["peak_fraction"] > 0 and row["ratio_vs_ours"] > 0
    ours, flax = (next(r for r in rows if r["impl"] == impl) for impl in ("ours", "flax"))
    # The column the targets read: ours' time over the row's (<= 0.7 means ours takes <= 0.7x flax's time).
    assert flax["ratio_vs_ours"] == pytest.approx(ours["median_s"] / flax["median_s"], rel=1e-3)
    assert rows[-1]["flops_per_s"] > 0
