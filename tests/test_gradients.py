"""gradients end to end at tiny size: the run's files and numbers, the figures, and bad input."""

import json

import jax
import numpy as np
import pytest

from experiments.configs import gradients as gradients_config
from rvt import io
from rvt.studies import gradients
from tests.test_readme_tables import check_table


def tiny_config():
    config = gradients_config.get_config()
    config.models = "rnn,lstm"  # the transformer probe is tested in test_probes.py
    config.task = "copy_memory"
    config.seeds = 2
    config.tasks.copy_memory.update(delay=6, num_symbols=2, alphabet=3)  # T = 10
    config.model.rnn.hidden_size = 8
    config.model.lstm.hidden_size = 8
    config.model.transformer.update(d_model=8, num_heads=2)
    config.train.update(steps=3, batch_size=4, log_every=2, eval_batches=1, eval_batch_size=16)
    config.probe.batch_size = 4
    config.forget.update(biases="0,5", length=30, batch_size=2)
    return config


def test_end_to_end_writes_every_file(tmp_path, capsys):
    workdir = tmp_path / "run"
    gradients.run(tiny_config(), str(workdir))
    check_table("gradients", workdir)  # the README's table generator works on this run
    for name in (
        "config.json",
        "metrics.jsonl",
        "results.csv",
        "gates.csv",
        "summary.csv",
        "gradient_vs_distance.png",
        "forget_products.png",
        "spectral.png",
    ):
        assert (workdir / name).stat().st_size > 0, name
    assert json.loads((workdir / "config.json").read_text())["experiment"] == "gradients"

    rows = io.read_csv(workdir / "results.csv")
    assert list(rows[0]) == ["model", "trained", "distance", "grad_norm", "seed", "target_distance"]
    for model in ("rnn", "lstm"):
        for trained in (False, True):
            for seed in (0, 1):  # a curve per seed
                curve = [r for r in rows if (r["model"], r["trained"], r["seed"]) == (model, trained, seed)]
                assert [r["distance"] for r in curve] == list(range(10))
                assert all(r["grad_norm"] > 0 for r in curve)

    gates = io.read_csv(workdir / "gates.csv")
    sweep = {b: [r for r in gates if (r["forget_bias"], r["trained"], r["seed"]) == (b, False, 0)] for b in (0, 5)}
    for bias, curve in sweep.items():
        assert [r["distance"] for r in curve] == list(range(30))
        assert curve[0]["forget_product"] == 1.0
        for r in curve:
            assert r["cell_path_grad"] == pytest.approx(r["forget_product"], rel=1e-4, abs=1e-30)
        # At init f ~ sigmoid(bias): the product decays at about that rate.
        rate = np.exp(np.log(curve[20]["forget_product"]) / 20)
        assert rate == pytest.approx(1 / (1 + np.exp(-bias)), abs=0.05)
    assert {r["trained"] for r in gates if r["forget_bias"] == 1} == {True}  # the trained LSTM's curve

    summary = io.read_csv(workdir / "summary.csv")
    rnn = [r for r in summary if r["model"] == "rnn"]
    assert len(rnn) == 4 and all(r["slope"] <= r["jacobian_log_norm"] + 0.05 for r in rnn)
    assert all(r["sigma_max"] == "" for r in summary if r["model"] != "rnn")
    printed = capsys.readouterr().out
    assert "ln sigma_max" in printed and "lstm forget_bias 5 trained=false: mean prod f k=10" in printed


def test_variable_copy_is_probed_with_every_delay_at_its_longest():
    """Trained on delays 2..12, probed where the last position recalls the last symbol from 12 back."""
    from rvt.tasks import make_task

    task = make_task("variable_copy", min_distance=2, max_distance=12, num_symbols=2, vocab_size=8, distractors=True)
    probe = gradients.probe_task(task)
    batch = probe.sample(jax.random.key(0), 16)
    assert probe.length == task.length == 14
    assert (np.asarray(batch.distance[:, -1]) == 12).all() and (np.asarray(batch.mask[:, -1]) == 1).all()
    assert (np.asarray(batch.targets[:, -1]) == np.asarray(batch.inputs[:, 1])).all()  # symbol 1, 12 back
    copy_memory = make_task("copy_memory", delay=6, num_symbols=2, alphabet=3)
    assert gradients.probe_task(copy_memory) is copy_memory


# Bad settings: each must fail with one ConfigError naming it, writing nothing (tests/test_bad_input.py).
BAD_INPUTS = [
    (lambda c: setattr(c, "models", "rnn,bogus"), "models:"),
    (lambda c: c.tasks.copy_memory.update(delay=0), "tasks.copy_memory.delay:"),
    (lambda c: c.train.update(steps=0), "train.steps:"),
    (lambda c: c.probe.update(batch_size=0), "probe.batch_size:"),
    (lambda c: c.forget.update(biases="1,x"), "forget.biases:"),
    (lambda c: c.forget.update(biases=""), "forget.biases:"),
    (lambda c: c.forget.update(length=0), "forget.length:"),
    (lambda c: c.model.lstm.update(hidden_size=0), "model.lstm.hidden_size:"),
]
