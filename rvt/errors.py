"""The one error type for settings that cannot work, shared by models, tasks and experiments.

Experiments catch :class:`ConfigError` and print its message as one line with a non-zero exit, so every
message must name the offending setting first: ``task.length: 50 cannot hold max_distance 60 + ...``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ConfigError(ValueError):
    """A setting that cannot work. The message starts with the setting's dotted name."""


def check(condition: bool, setting: str, message: str) -> None:
    """Raise :class:`ConfigError` naming ``setting`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{setting}: {message}")


def is_positive_int(value) -> bool:
    """An int (not a bool) above zero."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_positive_int(value, setting: str) -> None:
    """Raise ``<setting>: must be a positive integer, got <value>`` unless ``value`` is one."""
    check(is_positive_int(value), setting, f"must be a positive integer, got {value!r}")


@contextlib.contextmanager
def settings_under(prefix: str, was: str = "task") -> Iterator[None]:
    """Re-name the settings of ConfigErrors raised inside: ``task.length: ...`` becomes
    ``<prefix>.length: ...``, the name the user typed (``tasks.variable_copy``, ``stream``, ...), or
    ``length: ...`` with an empty prefix (the setting sits at the top of the experiment's config)."""
    try:
        yield
    except ConfigError as e:
        message = str(e)
        if message.startswith(was + "."):
            field = message[len(was) + 1 :]
            raise ConfigError(f"{prefix}.{field}" if prefix else field) from None
        raise
