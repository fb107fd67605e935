"""The one error type for settings that cannot work, shared by models, tasks and experiments.

Experiments catch :class:`ConfigError` and print its message as one line with a non-zero exit, so every
message must name the offending setting first: ``task.length: 50 cannot hold max_distance 60 + ...``.
"""


class ConfigError(ValueError):
    """A setting that cannot work. The message starts with the setting's dotted name."""


def check(condition: bool, setting: str, message: str) -> None:
    """Raise :class:`ConfigError` naming ``setting`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{setting}: {message}")
