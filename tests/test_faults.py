"""Faults a run must survive: SIGKILL, Ctrl-C, a non-finite loss, a second process, corrupt state."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import pytest

from rvt import io
from rvt.errors import ConfigError
from rvt.studies import copy_distance
from tests.test_experiment import tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
SETTINGS = dict(steps=40, checkpoint_every=5, log_every=5)
FLAGS = [
    "--config.models=rnn",
    "--config.seeds=1",
    "--config.model.rnn.hidden_size=8",
    "--config.tasks.variable_copy.min_distance=1",
    "--config.tasks.variable_copy.max_distance=6",
    "--config.tasks.variable_copy.num_symbols=1",
    "--config.train.batch_size=4",
    "--config.train.eval_batches=1",
    "--config.train.eval_batch_size=16",
    *(f"--config.train.{k}={v}" for k, v in SETTINGS.items()),
]


def _start(workdir, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.copy_distance", f"--workdir={workdir}", *FLAGS, *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_step(workdir: pathlib.Path, step: int, process, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        metrics = workdir / io.METRICS
        if metrics.exists() and any(r.get("step", 0) >= step for r in io.read_jsonl(metrics) if r["kind"] == "train"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the run never reached step {step}: {process.poll()}")


def test_sigkill_then_the_same_command_gives_the_uninterrupted_results(tmp_path):
    config = tiny_config("rnn")
    config.model.rnn.hidden_size = 8
    config.train.update(**SETTINGS)
    copy_distance.run(config, str(tmp_path / "whole"))
    expected = (tmp_path / "whole" / io.RESULTS).read_bytes()

    workdir = tmp_path / "killed"
    process = _start(workdir)
    _wait_for_step(workdir, random.Random(os.getpid()).choice([10, 15, 20, 25]), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (workdir / io.RESULTS).exists()  # killed mid-training: no half-made table
    rerun = _start(workdir)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr[-2000:]
    assert (workdir / io.RESULTS).read_bytes() == expected
    assert not list(workdir.glob(".*.csv.*"))  # no stray temporary file


def test_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    workdir = tmp_path / "run"
    out = _start(workdir, "--config.train.learning_rate=1e30", "--config.train.grad_clip=1e30")
    _, stderr = out.communicate(timeout=300)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and "Traceback" not in stderr, stderr[-2000:]
    assert len(errors) == 1 and errors == stderr.strip().splitlines()[-1:]
    assert errors[0].startswith("error: rnn seed 0: the loss became ") and " at step " in errors[0]
    assert not (workdir / io.RESULTS).exists()  # nothing non-finite written as a result
    checkpoints = workdir / io.CHECKPOINTS / "rnn" / "seeds_0-0"
    assert not checkpoints.exists() or all(
        p.name.isdigit() for p in checkpoints.iterdir() if not p.name.startswith(".")
    )


def test_ctrl_c_is_one_line_and_the_rerun_continues(tmp_path):
    workdir = tmp_path / "run"
    process = _start(workdir)
    _wait_for_step(workdir, 10, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == f"interrupted; rerun the same command to continue the run in {workdir}"
    assert "Traceback" not in stderr


def test_a_second_run_on_a_held_workdir_is_refused(tmp_path):
    """Another process holds the workdir (as a running run does): this one is refused in one line."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(workdir / io.LOCK)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match="^workdir: .* is in use by another run"):
            copy_distance.run(tiny_config("rnn"), str(workdir))
    finally:
        holder.kill()
        holder.wait()


HOLD_LOCK = """
import fcntl, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("content", ["", "{not json", '{"no": "experiment"}'])
def test_a_corrupt_config_json_is_one_line_and_nothing_is_touched(tmp_path, content):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / io.CONFIG).write_text(content)
    (workdir / io.RESULTS).write_text("the old results\n")
    with pytest.raises(ConfigError, match="^workdir: .*config.json is unreadable"):
        copy_distance.run(tiny_config("rnn"), str(workdir))
    assert (workdir / io.RESULTS).read_text() == "the old results\n"


def test_non_finite_settings_are_refused_up_front(tmp_path):
    for setting in ("learning_rate", "weight_decay", "grad_clip"):
        config = tiny_config("rnn")
        config.train[setting] = float("inf")
        with pytest.raises(ConfigError, match=rf"^train.{setting}: must be a finite number"):
            copy_distance.run(config, str(tmp_path / "run"))
        assert not (tmp_path / "run").exists()


def test_an_empty_workdir_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="^workdir: is empty"):
        copy_distance.run(tiny_config("rnn"), "")
    assert list(tmp_path.iterdir()) == []


# Files may not grow past argv[1] bytes (EFBIG, as a full disk gives ENOSPC), then exec the command: set in a
# launcher process, not a preexec_fn, which would fork this multithreaded (JAX) process.
LIMIT_THEN_EXEC = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
os.execv(sys.argv[2], sys.argv[2:])
"""


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_temporary_file(tmp_path):
    """Files may not exceed 40 kB: the figure cannot be written. One line names it; no stray temp file;
    the same command without the limit then finishes the run from its checkpoints."""
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "experiments.copy_distance", f"--workdir={workdir}", *FLAGS]
    limited = [sys.executable, "-c", LIMIT_THEN_EXEC, "40000", *command]
    full = subprocess.run(limited, cwd=ROOT, capture_output=True, text=True)
    assert full.returncode == 2, full.stderr[-2000:]
    errors = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {workdir / 'accuracy_vs_distance.png'}: cannot be written: File too large"]
    assert "Traceback" not in full.stderr
    assert sorted(p.name for p in workdir.glob(".*")) == [".lock"]  # no temporary file left behind
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (workdir / "accuracy_vs_distance.png").stat().st_size > 0


@pytest.mark.parametrize("where", ["checkpoint", "metrics"])
def test_a_write_that_fails_mid_run_is_one_error_naming_the_file(tmp_path, monkeypatch, where):
    """ENOSPC while saving a checkpoint (orbax wraps it) or appending to metrics.jsonl: a ConfigError
    (one line, exit 2 in the app) that names the directory or file."""
    from rvt import checkpoint

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if where == "checkpoint":
        monkeypatch.setattr(checkpoint.Checkpoints, "_save", no_space)
        expected = r"checkpoints/rnn/seeds_0-0: checkpoint 5 cannot be written: \[Errno 28\] No space left"
    else:

        class FullFile:
            write = flush = no_space

            def close(self):
                pass

        original = io.MetricsWriter.__init__

        def init(self, path):
            original(self, path)
            self._file.close()
            self._file = FullFile()

        monkeypatch.setattr(io.MetricsWriter, "__init__", init)
        expected = r"metrics.jsonl: cannot be written: No space left on device"
    config = tiny_config("rnn")
    config.model.rnn.hidden_size = 8
    config.train.update(**SETTINGS)
    with pytest.raises(ConfigError, match=expected):
        copy_distance.run(config, str(tmp_path / "run"))


def _resume_cases():
    from experiments.configs import online as online_config
    from rvt.studies import bottleneck, copy_memory, gradients, online
    from tests.test_bottleneck import tiny_config as bottleneck_config
    from tests.test_copy_memory import tiny_config as copy_memory_config
    from tests.test_gradients import tiny_config as gradients_config

    def online_tiny():
        config = online_config.get_config()
        config.num_segments, config.num_streams, config.window = 12, 2, 8
        config.stream.update(segment_length=4, segments_per_rule=5, lags=(1, 2))
        config.models = "lstm"
        config.model.lstm.hidden_size = 8
        config.checkpoint_every = 5
        return config

    def with_checkpoints(make):
        def build():
            config = make()
            config.train.update(steps=6, checkpoint_every=2, log_every=2)
            return config

        return build

    return {
        "copy_memory": (copy_memory, with_checkpoints(lambda: copy_memory_config("rnn"))),
        "bottleneck": (bottleneck, with_checkpoints(bottleneck_config)),
        "gradients": (gradients, with_checkpoints(gradients_config)),
        "online": (online, online_tiny),
    }


TIMINGS = {"compile_s", "train_s", "seconds", "checkpoint_s", "steps_per_s", "start_step"}


@pytest.mark.parametrize("experiment", ["copy_memory", "bottleneck", "gradients", "online"])
def test_every_training_experiment_resumes_where_it_was_interrupted(tmp_path, monkeypatch, experiment):
    """Interrupted at its second checkpoint, the same call again continues the run: its results (timings
    aside) equal an uninterrupted run's."""
    from rvt import checkpoint

    study, make_config = _resume_cases()[experiment]
    study.run(make_config(), str(tmp_path / "whole"))
    expected = io.read_csv(tmp_path / "whole" / io.RESULTS)

    saves, original = [], checkpoint.Checkpoints.save

    def save_then_die(self, step, state, steps=None):
        original(self, step, state, steps)
        saves.append(step)
        if len(saves) == 2:
            raise KeyboardInterrupt  # what a SIGTERM between steps becomes

    monkeypatch.setattr(checkpoint.Checkpoints, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        study.run(make_config(), str(tmp_path / "cut"))
    monkeypatch.setattr(checkpoint.Checkpoints, "save", original)
    from rvt import train

    starts, run_steps = [], train.run_steps

    def recording(*args, **kwargs):
        result = run_steps(*args, **kwargs)
        starts.append(result.start_step)
        return result

    monkeypatch.setattr(train, "run_steps", recording)
    study.run(make_config(), str(tmp_path / "cut"))
    assert starts[0] > 0  # the interrupted training continued from its checkpoint, not from scratch
    resumed = io.read_csv(tmp_path / "cut" / io.RESULTS)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]
    assert strip(resumed) == strip(expected)
