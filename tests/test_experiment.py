"""copy_distance end to end: the run's files, bad input, no silent overwrite, and adding a model."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax.numpy as jnp
import pytest

from experiments.configs import copy_distance as copy_distance_config
from rvt import io, models
from rvt.errors import ConfigError
from rvt.studies import copy_distance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(models_="rnn,transformer"):
    config = copy_distance_config.get_config()
    config.models = models_
    config.seeds = 1
    config.tasks.variable_copy.update(min_distance=1, max_distance=6, num_symbols=1)
    config.model.rnn.hidden_size = 8
    config.model.transformer.update(d_model=8, num_heads=2)
    config.train.update(steps=3, batch_size=4, log_every=2, eval_batches=1, eval_batch_size=16)
    return config


def test_end_to_end_writes_every_file(tmp_path):
    workdir = tmp_path / "run"
    copy_distance.run(tiny_config(), str(workdir))
    for name in ("config.json", "metrics.jsonl", "results.csv", "summary.csv", "accuracy_vs_distance.png"):
        assert (workdir / name).stat().st_size > 0, name
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["experiment"] == "copy_distance"
    assert saved["resolved"]["task"]["max_distance"] == 6
    assert set(saved["resolved"]["models"]) == {"rnn", "transformer"}
    records = io.read_jsonl(workdir / "metrics.jsonl")
    assert {r["kind"] for r in records} == {"train", "eval"}
    assert [p.stat().st_size > 0 for p in (workdir / "tensorboard").glob("events.out.tfevents.*")] == [True]
    assert [r["step"] for r in records if r["kind"] == "train" and r["model"] == "rnn"] == [2, 3]
    rows = io.read_csv(workdir / "results.csv")
    assert list(rows[0]) == list(copy_distance.RESULT_COLUMNS)
    assert all(r["in_distribution"] is True and r["train_max_distance"] == 6 for r in rows)
    assert all(r["chance"] == pytest.approx(1 / 9) for r in rows)  # vocab 11 - blank - 1 cue: 9 symbols
    assert {r["model"] for r in rows} == {"rnn", "transformer"}
    for model in ("rnn", "transformer"):
        counts = [r["count"] for r in rows if r["model"] == model]
        assert sum(counts) == 16  # one labelled target per eval example
        assert all(1 <= r["distance"] <= 6 for r in rows)
    # The figure is redrawn from the CSV alone by the plot script.
    (workdir / "accuracy_vs_distance.png").unlink()
    out = subprocess.run(
        [sys.executable, "-m", "scripts.plot", str(workdir)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert (workdir / "accuracy_vs_distance.png").stat().st_size > 0
    # Several runs in one figure: the same experiment's CSVs, overlaid.
    shutil.copytree(workdir, tmp_path / "again")
    out = subprocess.run(
        [sys.executable, "-m", "scripts.plot", str(workdir), str(tmp_path / "again"), f"--overlay={tmp_path / 'both'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "both" / "accuracy_vs_distance.png").stat().st_size > 0


# Bad settings: each must fail with one ConfigError naming it, writing nothing (tests/test_bad_input.py).
def test_extrapolation_evaluates_beyond_the_trained_distances(tmp_path):
    """Trained on distances 1..6, evaluated on 1..24: every row says whether it was in the trained range."""
    config = tiny_config("transformer")
    config.eval_max_distance = 24
    copy_distance.run(config, str(tmp_path / "run"))
    rows = io.read_csv(tmp_path / "run" / io.RESULTS)
    assert all(r["train_max_distance"] == 6 for r in rows)
    assert all(r["in_distribution"] is (r["distance"] <= 6) for r in rows)
    assert max(r["distance"] for r in rows) > 6 and min(r["distance"] for r in rows) <= 6
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["resolved"]
    assert (saved["task"]["max_distance"], saved["eval_task"]["max_distance"]) == (6, 24)


BAD_INPUTS = [
    (lambda c: c.train.update(batch_size=10**9), "train.batch_size:"),
    (lambda c: setattr(c, "eval_max_distance", 3), "eval_max_distance: 3 is below"),
    (lambda c: setattr(c, "eval_max_distance", -1), "eval_max_distance:"),
    (lambda c: setattr(c, "models", "rnn,bogus"), "models:"),
    (lambda c: setattr(c, "models", "rnn,lstm,rnn"), "models: rnn listed twice"),
    (lambda c: c.train.update(checkpoint_every=-1), "train.checkpoint_every:"),
    (lambda c: setattr(c, "task", "bogus"), "task:"),
    (lambda c: c.model.rnn.update(hidden_size=0), "model.rnn.hidden_size:"),
    (lambda c: c.train.update(steps=-1), "train.steps:"),
    (lambda c: c.train.update(batch_size=0), "train.batch_size:"),
    (lambda c: c.tasks.variable_copy.update(length=5), "tasks.variable_copy.length:"),
    (lambda c: c.tasks.variable_copy.update(min_distance=7), "tasks.variable_copy.max_distance:"),
    (lambda c: c.tasks.variable_copy.update(vocab_size=3), "tasks.variable_copy.vocab_size:"),
    (lambda c: c.model.transformer.update(num_heads=3), "model.transformer.num_heads:"),
]


def test_existing_run_is_not_overwritten_without_flag(tmp_path):
    workdir = tmp_path / "run"
    copy_distance.run(tiny_config("rnn"), str(workdir))
    before = (workdir / "results.csv").read_text()
    with pytest.raises(ConfigError, match=r"^workdir: .*holds a different run \(config.models: 'rnn' -> 'gru'\)"):
        copy_distance.run(tiny_config("gru"), str(workdir))
    assert (workdir / "results.csv").read_text() == before
    (workdir / "old_figure.png").write_bytes(b"stale")
    (workdir / "notes.txt").write_text("the user's")
    copy_distance.run(tiny_config("transformer"), str(workdir), overwrite=True)
    assert {r["model"] for r in io.read_csv(workdir / "results.csv")} == {"transformer"}
    assert not (workdir / "old_figure.png").exists()  # nothing of the old run stays beside the new one
    assert (workdir / "notes.txt").read_text() == "the user's"  # what the run did not write stays


def test_unwritable_workdir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="^workdir: cannot write"):
        copy_distance.run(tiny_config("rnn"), str(blocker / "run"))


def _cli(*args, experiment="copy_distance"):
    return subprocess.run(
        [sys.executable, "-m", f"experiments.{experiment}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    out = _cli(f"--workdir={tmp_path / 'run'}", "--config.models=rnn,nope")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [  # exactly one line: no log line before it
        "error: models: unknown model 'nope'; known: " + ", ".join(sorted(models.MODELS))
    ]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


EXPERIMENTS = sorted(p.stem for p in pathlib.Path(ROOT, "experiments").glob("*.py") if not p.stem.startswith("_"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_cli_unknown_setting_is_one_line_and_exit_2(tmp_path, experiment):
    # ml_collections applies overrides while the flag is defined, before absl's app starts.
    out = _cli(f"--workdir={tmp_path / 'run'}", "--config.bogus.size=1", experiment=experiment)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: bogus.size: unknown setting"]
    assert not (tmp_path / "run").exists()


def test_cli_mistyped_setting_suggests_the_right_name(tmp_path):
    out = _cli(f"--workdir={tmp_path / 'run'}", "--config.train.stpes=5")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: train.stpes: unknown setting; did you mean train.steps?"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--config.train.steps=1.5",), "error: flag --config.train.steps=1.5: invalid literal for int()"),
        (("stray",), "error: unexpected arguments: stray"),
        (("--nope",), "error: Unknown command line flag 'nope'"),
    ],
)
def test_cli_flag_errors_are_one_line_and_exit_2(tmp_path, args, message):
    out = _cli(f"--workdir={tmp_path / 'run'}", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
    assert not (tmp_path / "run").exists()


class LeakyCell(models.Cell):
    """A cell defined outside rvt: h' = (1 - a) h + a tanh(W x + U h), a = leak."""

    leak: float = 0.5

    def step(self, h_BxH, xp_BxH):
        h_BxH = (1.0 - self.leak) * h_BxH + self.leak * jnp.tanh(xp_BxH + self.hh(h_BxH))
        return h_BxH, h_BxH


@pytest.fixture
def leaky_registered():
    models.register_cell("leaky_test", LeakyCell)
    yield
    del models.MODELS["leaky_test"], models.CELLS["leaky_test"]


def test_a_cell_defined_outside_rvt_trains_through_the_experiment(tmp_path, leaky_registered):
    config = tiny_config("leaky_test")
    config.model = config.model.to_dict() | {"leaky_test": dict(hidden_size=16, leak=0.9)}
    config.train.update(steps=150, batch_size=32, learning_rate=1e-2, eval_batch_size=256)
    config.tasks.variable_copy.update(max_distance=4)
    copy_distance.run(config, str(tmp_path / "run"))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["resolved"]["models"]["leaky_test"]["cell_options"] == [["leak", 0.9]]
    summary = io.read_csv(tmp_path / "run" / "summary.csv")
    assert summary[0]["model"] == "leaky_test"
    assert summary[0]["accuracy"] >= 0.9  # chance is 1/8: the new cell really trained


USER_MODULE = """
import jax.numpy as jnp
from rvt import models


class LeakyCell(models.Cell):
    leak: float = 0.5

    def step(self, h, xp):
        h = (1 - self.leak) * h + self.leak * jnp.tanh(xp + self.hh(h))
        return h, h


models.register_cell("leaky", LeakyCell)
"""


def test_cli_imports_a_users_cell_and_sets_its_fields(tmp_path):
    """The README's recipe from the shell: --import registers the cell before the config is built."""
    (tmp_path / "my_cells.py").write_text(USER_MODULE)
    tiny = [
        "--config.model.leaky.hidden_size=8",
        "--config.tasks.variable_copy.min_distance=1",
        "--config.tasks.variable_copy.max_distance=6",
        "--config.tasks.variable_copy.num_symbols=1",
        "--config.train.steps=3",
        "--config.train.eval_batches=1",
    ]
    args = [
        "--import=my_cells",
        f"--workdir={tmp_path / 'run'}",
        "--config.models=leaky",
        "--config.model.leaky.leak=0.9",
    ]
    out = subprocess.run(
        [sys.executable, "-m", "experiments.copy_distance", *args, *tiny],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    resolved = io.read_json(tmp_path / "run" / "config.json")["resolved"]["models"]
    assert resolved["leaky"]["cell_options"] == [["leak", 0.9]] and resolved["leaky"]["hidden_size"] == 8
    assert {r["model"] for r in io.read_csv(tmp_path / "run" / "results.csv")} == {"leaky"}

    missing = _cli(f"--workdir={tmp_path / 'other'}", "--import=no_such_module")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "error: import: cannot import 'no_such_module': ModuleNotFoundError: No module named 'no_such_module'"
    ]
