"""Smoke test of scripts/bench.py: tiny shapes, one round; every case row, positive times, ratio = ours / peer."""

import dataclasses
import importlib.util

import jax
import pytest

from rvt import io
from scripts import bench

TOY = dataclasses.replace(
    bench.QUICK,
    rnn_lengths=(8,),
    batch=2,
    hidden=8,
    embed=8,
    vocab=5,
    attn_lengths=(8,),
    heads=2,
    head_dim=4,
    scan_lengths=(2,),
    rounds=1,
    min_time_s=0.0,
    peak_size=32,
    unfolded=False,
    tf_length=0,
    scan_models=("lru",),
    fast_compile=True,
)


def expected_rows(torch: bool) -> set[tuple[str, str, str]]:
    rnn_peers = ["flax", "torch"] if torch else ["flax"]
    attention_peers = ["jax_dpa", "torch_sdpa"] if torch else ["jax_dpa"]
    rows = {(cell, "ours", peer) for cell in ("lstm", "gru") for peer in rnn_peers}
    rows |= {(f"attention_{a}", a, peer) for a in ("vmapped", "fused") for peer in attention_peers}
    return rows | {(model, "associative", "sequential") for model in TOY.scan_models}


def test_bench_quick_writes_every_row(tmp_path):
    out = tmp_path / "bench" / "bench.csv"
    bench.run(TOY, str(out))
    rows = io.read_csv(out)
    assert {"case", "shape", "ours_s", "peer", "peer_s", "ratio", "flops", "peak_fraction"} <= set(rows[0])
    torch = importlib.util.find_spec("torch") is not None
    assert {(row["case"], row["ours"], row["peer"]) for row in rows} == expected_rows(torch)
    for row in rows:
        assert row["ours_s"] > 0 and row["peer_s"] > 0 and row["flops"] > 0 and row["peak_fraction"] > 0
        assert row["ratio"] == pytest.approx(row["ours_s"] / row["peer_s"], rel=1e-3)
    meta = io.read_json(out.parent / "bench_meta.json")
    assert meta["backend"] == jax.default_backend() and meta["device_kind"] and meta["jax"] == jax.__version__
    assert meta["matmul_peak_flops"] > 0 and meta["cpu_count"] > 0
