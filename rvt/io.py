"""The run directory: config.json, streaming metrics.jsonl, tidy results.csv -- and its rules.

* A run directory is locked while a run holds it; a run already there is continued only with the same
  experiment and config (:func:`rvt.studies.common.start_run`), replaced only with ``overwrite`` (which
  deletes nothing until every setting has passed its checks), and never reused silently.
* Every table and config.json is written atomically (temp file + rename, mode 0644), so a reader never
  sees half a table and a killed run leaves no stray file; ``metrics.jsonl`` is appended and flushed
  line by line while training runs.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io as io_lib
import json
import os
import pathlib
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rvt.errors import ConfigError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
RESULTS = "results.csv"
CHECKPOINTS = "checkpoints"
LOCK = ".lock"
TENSORBOARD = "tensorboard"
RUN_FILES = (CONFIG, METRICS, RESULTS, CHECKPOINTS, TENSORBOARD)
OUTPUT_PATTERNS = ("*.csv", "*.png")  # what else a run writes: side tables and figures


class RunComplete(Exception):
    """The workdir already holds this finished run (same experiment and config): nothing to do."""


_LOCKS: dict[pathlib.Path, Any] = {}


def lock_workdir(workdir: pathlib.Path) -> None:
    """Hold an exclusive lock on ``workdir`` until :func:`unlock_workdir` or the process ends (the OS drops
    it even on SIGKILL): a second run on the same workdir is refused in one line. This process taking up
    a run it already holds (an interrupted ``run()`` called again, in a notebook) keeps its lock."""
    if workdir.resolve() in _LOCKS:
        return
    handle = open(workdir / LOCK, "a+")  # noqa: SIM115 -- held open for the run's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigError(
            f"workdir: {workdir} is in use by another run; wait for it or choose another --workdir"
        ) from None
    _LOCKS[workdir.resolve()] = handle


def unlock_workdir(workdir: pathlib.Path) -> None:
    handle = _LOCKS.pop(pathlib.Path(workdir).resolve(), None)
    if handle is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def read_run(workdir: pathlib.Path) -> dict | None:
    """The config.json of the run in ``workdir``; None where there is none; ConfigError where it is
    unreadable (a run we cannot compare with is never continued or silently replaced)."""
    if not (workdir / CONFIG).exists():
        if any((workdir / name).exists() for name in RUN_FILES):
            raise ConfigError(
                f"workdir: {workdir} holds part of a run but no {CONFIG}; pass --overwrite to replace it, "
                "or choose another --workdir"
            )
        return None
    try:
        saved = read_json(workdir / CONFIG)
    except (OSError, ValueError):
        saved = None
    if not isinstance(saved, dict) or "experiment" not in saved:
        raise ConfigError(
            f"workdir: {workdir / CONFIG} is unreadable; pass --overwrite to replace the run, "
            "or choose another --workdir"
        )
    return saved


def config_digest(workdir: pathlib.Path) -> str:
    """sha256 of the experiment and config in the run's config.json: what checkpoints are tied to."""
    saved = read_json(workdir / CONFIG)
    given = dict(experiment=saved.get("experiment"), config=saved.get("config"))
    return hashlib.sha256(json.dumps(given, sort_keys=True, default=str).encode()).hexdigest()


def prepare_workdir(path: str | os.PathLike, clear: bool) -> pathlib.Path:
    """Create ``path``, prove it is writable and lock it; with ``clear``, delete the previous run's files
    (its run files, checkpoints, tables and figures; nothing else)."""
    workdir = pathlib.Path(path).expanduser()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=workdir):
            pass
    except OSError as e:
        raise ConfigError(f"workdir: cannot write to {workdir}: {e.strerror or e}") from None
    lock_workdir(workdir)
    if clear:
        existing = [name for name in RUN_FILES if (workdir / name).exists()]
        existing += sorted({p.name for pattern in OUTPUT_PATTERNS for p in workdir.glob(pattern)} - set(existing))
        for name in existing:
            if (workdir / name).is_dir():
                shutil.rmtree(workdir / name)
            else:
                (workdir / name).unlink()
    return workdir


def _atomic_write(path: pathlib.Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # readable by others, like the figures (mkstemp makes 0600)
        os.replace(tmp, path)
    except OSError as e:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot be written: {e.strerror or e}") from None


def save_figure(figure, path: pathlib.Path, dpi: int = 130) -> None:
    """A matplotlib figure as PNG, atomically (temp file, then rename; 0644), like every table."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            figure.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot be written: {e.strerror or e}") from None


def write_text(path: pathlib.Path, text: str) -> None:
    """Write a text file atomically (a report, a table)."""
    _atomic_write(path, text)


def write_json(path: pathlib.Path, data: Mapping[str, Any]) -> None:
    _atomic_write(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: pathlib.Path) -> dict[str, Any]:
    return json.loads(pathlib.Path(path).read_text())


_NOT_SCALARS = ("step", "stream_step", "seed")


def _tag(text: str) -> str:
    """A TensorBoard-legal tag part (letters, digits, ``_ - .``)."""
    return re.sub(r"[^\w.-]+", "_", text).strip("_")


class MetricsWriter:
    """Appends one JSON object per line to metrics.jsonl and flushes it, so ``tail -f`` works; and writes
    the same numbers as TensorBoard scalars under ``<workdir>/tensorboard`` (tensorboardX, no TensorFlow):
    ``tensorboard --logdir <workdir>/tensorboard``. A record's tag is its kind and labels (model, seeds,
    ...), its x-axis its ``step``."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self._file = open(path, "a")  # noqa: SIM115 -- closed in close()
        from tensorboardX import SummaryWriter  # here: importing it costs a second; only runs need it

        self._events = SummaryWriter(str(pathlib.Path(path).parent / TENSORBOARD), flush_secs=10)

    def write(self, record: Mapping[str, Any]) -> None:
        try:
            self._file.write(json.dumps(dict(record), default=float) + "\n")
            self._file.flush()
        except OSError as e:
            raise ConfigError(f"{self.path}: cannot be written: {e.strerror or e}") from None
        step = record.get("step", record.get("stream_step"))
        if not isinstance(step, int):
            return
        labels = [_tag(f"{k}_{v}") for k, v in record.items() if isinstance(v, str | list) and k != "kind"]
        prefix = "/".join([str(record.get("kind", "metrics")), *labels])
        for key, value in record.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and key not in _NOT_SCALARS:
                self._events.add_scalar(f"{prefix}/{key}", value, step)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a failed flush was reported by write; closing must not hide it
            self._file.close()
        self._events.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_csv(path: pathlib.Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None):
    """Write tidy rows (one dict each) atomically; columns default to the union in first-seen order."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io_lib.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows({k: _format(v) for k, v in row.items()} for row in rows)
    _atomic_write(path, buffer.getvalue())


def _format(value: Any) -> Any:
    """Booleans one way in every table: ``true`` / ``false`` (read back as bool)."""
    return ("true" if value else "false") if isinstance(value, bool) else value


def read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a table, typed: numbers back to int / float, ``true`` / ``false`` to bool, the rest str."""
    with open(path, newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _parse(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def read_jsonl(path: str | os.PathLike) -> Iterable[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
