"""The run directory: config.json, streaming metrics.jsonl, tidy results.csv -- and its rules.

* A run directory that already holds a run (any of the files below) is never reused silently:
  :func:`prepare_workdir` refuses it unless ``overwrite`` is set, and then clears those files and, where
  config.json shows an rvt run, its other tables and figures (``*.csv``, ``*.png``); or ``resume``.
* ``results.csv`` and ``config.json`` are written atomically (temp file + rename), so a reader never
  sees half a table; ``metrics.jsonl`` is appended and flushed line by line while training runs.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rvt.errors import ConfigError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
RESULTS = "results.csv"
CHECKPOINTS = "checkpoints"
RUN_FILES = (CONFIG, METRICS, RESULTS, CHECKPOINTS)
OUTPUT_PATTERNS = ("*.csv", "*.png")  # what else a run writes: side tables and figures


def _is_run(config_path: pathlib.Path) -> bool:
    try:
        return "experiment" in read_json(config_path)
    except (OSError, ValueError):
        return False


def prepare_workdir(
    path: str | os.PathLike, overwrite: bool = False, resume: bool = False, resumable: bool = False
) -> pathlib.Path:
    """Create ``path`` and prove it is writable. A run already there is refused, unless ``overwrite``
    (its run files and checkpoints are deleted) or ``resume`` (they are kept, to be continued)."""
    workdir = pathlib.Path(path).expanduser()
    existing = [name for name in RUN_FILES if (workdir / name).exists()]
    if overwrite and resume:
        raise ConfigError("overwrite: cannot be combined with --resume (one replaces the run, one continues it)")
    if existing and not (overwrite or resume):
        raise ConfigError(
            f"workdir: {workdir} already holds a run ({', '.join(existing)}); "
            f"pass --overwrite to replace it{', --resume to continue it' if resumable else ''}, "
            "or choose another --workdir"
        )
    if resume:
        existing = []  # keep everything
    elif overwrite and _is_run(workdir / CONFIG):
        # The old run's side tables and figures too, so none of them sits beside the new results.
        existing += sorted({p.name for pattern in OUTPUT_PATTERNS for p in workdir.glob(pattern)} - set(existing))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=workdir):
            pass
    except OSError as e:
        raise ConfigError(f"workdir: cannot write to {workdir}: {e.strerror or e}") from None
    for name in existing:
        if (workdir / name).is_dir():
            shutil.rmtree(workdir / name)
        else:
            (workdir / name).unlink()
    return workdir


def _atomic_write(path: pathlib.Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: pathlib.Path, data: Mapping[str, Any]) -> None:
    _atomic_write(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: pathlib.Path) -> dict[str, Any]:
    return json.loads(pathlib.Path(path).read_text())


class MetricsWriter:
    """Appends one JSON object per line to metrics.jsonl and flushes it, so ``tail -f`` works."""

    def __init__(self, path: pathlib.Path):
        self._file = open(path, "a")  # noqa: SIM115 -- closed in close()

    def write(self, record: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(dict(record), default=float) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_csv(path: pathlib.Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None):
    """Write tidy rows (one dict each) atomically; columns default to the union in first-seen order."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows({k: _format(v) for k, v in row.items()} for row in rows)
    os.replace(tmp, path)


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
