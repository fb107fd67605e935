"""long_sequence: nothing that does not fit is run; what fits runs, for any registered model."""

from experiments.configs import long_sequence as long_config
from rvt import io
from rvt.studies import long_sequence
from tests.test_readme_tables import check_table


def test_rows_never_run_what_does_not_fit():
    ran = []
    row = long_sequence._row("transformer", "infer", 10, 200, 100, lambda: ran.append(1) or 1.0, "")
    assert (row["fits"], row["ran"], row["measured_s"], ran) == (False, False, "", [])
    row = long_sequence._row("lstm", "infer", 10, 50, 100, lambda: 0.5, "")
    assert (row["fits"], row["ran"], row["measured_s"]) == (True, True, 0.5)


def tiny_config():
    config = long_config.get_config()
    config.models = "lstm,transformer"
    config.model.lstm.hidden_size = 8
    config.model.transformer.update(d_model=8, num_heads=2)
    config.update(length=24, train_steps=1, repeats=2)
    return config


def test_end_to_end_writes_every_file(tmp_path):
    workdir = tmp_path / "run"
    long_sequence.run(tiny_config(), str(workdir))
    check_table("long_sequence", workdir)  # the README's table generator works on this run
    for name in ("config.json", "metrics.jsonl", "results.csv", "long_sequence.png"):
        assert (workdir / name).stat().st_size > 0, name
    rows = io.read_csv(workdir / "results.csv")
    assert list(rows[0]) == list(long_sequence.RESULT_COLUMNS)
    assert {(r["model"], r["mode"]) for r in rows} == {
        (m, k) for m in ("lstm", "transformer") for k in long_sequence.MODES
    }
    assert all(r["T"] == 24 and r["fits"] and r["ran"] and r["measured_s"] > 0 for r in rows)


def test_a_budget_too_small_runs_nothing(tmp_path):
    config = tiny_config()
    config.update(memory_budget_bytes=1, modes="infer")
    long_sequence.run(config, str(tmp_path / "run"))
    rows = io.read_csv(tmp_path / "run" / "results.csv")
    assert rows and not any(r["fits"] or r["ran"] for r in rows)


# Bad settings: each must fail with one ConfigError naming it, writing nothing (tests/test_bad_input.py).
BAD_INPUTS = [
    (lambda c: c.update(modes="infer,bogus"), "modes:"),
    (lambda c: c.update(length=10), "length:"),
    (lambda c: c.update(memory_budget_bytes=-1), "memory_budget_bytes:"),
    (lambda c: c.update(models="lstm,nope"), "models:"),
]
