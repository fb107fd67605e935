"""The one app helper every experiment script uses: flags, config, clean failure.

    # experiments/<name>.py
    from experiments import _app
    from rvt.studies import <name>

    if __name__ == "__main__":
        _app.main(<name>)

gives ``python -m experiments.<name> [--workdir DIR] [--overwrite] [--import MOD]
[--config.<setting>=VALUE ...]``, with ``experiments/configs/<name>.py`` as the config. Flags are read here
and nowhere else: the study receives a locked ml_collections config and plain arguments. Every bad input
-- a bad flag, an unknown or mistyped setting, a value of the wrong type, a stray argument, a setting the
study refuses (:class:`rvt.errors.ConfigError`) -- is one line ``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import logging
import pathlib
import re
import sys
import time
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

import jax
from absl import app, flags
from ml_collections import config_flags

from rvt import checkpoint
from rvt.errors import ConfigError
from rvt.io import RunComplete
from rvt.studies import common

CONFIGS = pathlib.Path(__file__).parent / "configs"


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _unknown_setting(error: Exception, argv: Sequence[str]) -> NoReturn:
    """ml_collections' KeyError for a missing key -> ``error: train.stpes: unknown setting; did you mean
    train.steps?`` naming the key as typed (its message holds a quoted key and, maybe, a suggestion)."""
    text = str(error.args[0] if error.args else error)
    while isinstance(text, str) and text[:1] in "'\"" and text[-1:] in "'\"":  # KeyError repr, maybe nested
        text = text[1:-1].encode().decode("unicode_escape")
    key = re.split(r"['\"\n]", text.strip("'\""))[0]
    typed = next((a.split("=")[0].removeprefix("--") for a in argv[1:] if key in a.split("=")[0].split(".")), key)
    typed = typed.removeprefix("config.")
    suggestion = re.search(r'Did you mean "([^"]+)"', text)
    hint = ""
    if suggestion:
        hint = f"; did you mean {typed.rsplit('.', 1)[0] + '.' if '.' in typed else ''}{suggestion.group(1)}?"
    fail(f"{typed}: unknown setting{hint}")


def _imports(args: Sequence[str]) -> list[str]:
    """The modules named by ``--import=a.b`` / ``--import a.b`` (repeatable), in order."""
    modules = []
    for i, arg in enumerate(args):
        if arg.startswith("--import="):
            modules.append(arg.split("=", 1)[1])
        elif arg == "--import" and i + 1 < len(args):
            modules.append(args[i + 1])
    return modules


def define_flags(name: str):
    """``--config`` (ml_collections applies the ``--config.<setting>`` overrides while defining it),
    ``--workdir``, ``--overwrite``, ``--import``.

    ``--import=my_pkg.cells`` modules are imported first, so what they register is in the config:
    ``--import=my_cells --config.models=leaky --config.model.leaky.leak=0.9`` works from the shell."""
    flags.DEFINE_multi_string(
        "import", [], "Modules to import before the config is built: they may register models, cells or tasks."
    )
    for module in _imports(sys.argv[1:]):
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 -- any failure of the user's module is one line
            fail(f"import: cannot import {module!r}: {type(e).__name__}: {e}")
    try:
        config = config_flags.DEFINE_config_file("config", str(CONFIGS / f"{name}.py"), "Experiment config.")
    except (AttributeError, KeyError) as e:
        _unknown_setting(e, sys.argv)
    workdir = flags.DEFINE_string(
        "workdir", f"runs/{name}", "Where the run's files go. Rerunning the same command there continues the run."
    )
    overwrite = flags.DEFINE_bool("overwrite", False, "Replace a run already in --workdir (after every check passes).")
    flags.DEFINE_bool("log_checkpoints", False, "Show the checkpoint library's INFO lines (hidden by default).")
    flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first (multi-host: one process a host).")
    return config, workdir, overwrite


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every failure as one line ``error: ...`` and exit status 2."""
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "no TPU here", on every start
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "Did you mean" in str(e) or "Unknown" in message:
            match = re.search(r"--config\.([\w.]+)", " ".join(argv))
            if match and isinstance(e.__cause__ or e.__context__, KeyError | AttributeError):
                _unknown_setting(e.__cause__ or e.__context__, argv)
        fail(message)
    except (AttributeError, KeyError) as e:  # ml_collections: an override of a setting the config lacks
        _unknown_setting(e, argv)
    except (TypeError, ValueError) as e:  # ml_collections: a value of the wrong type
        fail(f"config: {str(e).splitlines()[0]}")
    if len(rest) > 1:
        fail(f"unexpected arguments: {' '.join(rest[1:])} (settings are --config.<name>=<value>)")
    return rest


def _flatten(config, prefix: str = "") -> list[tuple[str, object]]:
    items = []
    for key, value in sorted(config.items()):
        if hasattr(value, "items"):
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _comments(source: str) -> dict[str, str]:
    """``name -> comment`` for the config file's lines ``...name = value  # comment`` / ``name=value,  # c``."""
    found = {}
    for line in source.splitlines():
        match = re.search(r"(\w+)\s*=\s*[^#]*#\s*(.+)$", line)
        if match:
            found.setdefault(match.group(1), match.group(2).strip())
    return found


def print_help(name: str, script_doc: str) -> None:
    """``--help``: what the experiment does, its flags, and every config setting with its default."""
    module = importlib.import_module(f"experiments.configs.{name}")
    comments = _comments((CONFIGS / f"{name}.py").read_text())
    print((script_doc or "").strip(), end="\n\n")
    print((module.__doc__ or "").strip(), end="\n\n")
    print("Flags:")
    for flag, meaning in (
        ("--workdir=DIR", f"where the run's files go (default runs/{name}); rerunning the same command continues"),
        ("--overwrite", "replace a run already in --workdir (nothing is deleted before every check passes)"),
        ("--import=MODULE", "import a module first (repeatable): it may register models, cells or tasks"),
        ("--log_checkpoints", "show the checkpoint library's INFO lines"),
        ("--distributed", "call jax.distributed.initialize() first (one process per host)"),
    ):
        print(f"  {flag:<20} {meaning}")
    print("\nConfig settings (--config.<setting>=VALUE), with their defaults:")
    for setting, value in _flatten(module.get_config()):
        meaning = comments.get(setting.rsplit(".", 1)[-1], "")
        print(f"  {setting} = {value!r}" + (f"    # {meaning}" if meaning else ""))


def main(study: ModuleType) -> None:
    """Run ``study.run(config, workdir, overwrite)`` as an absl app: a bad setting, a fault of the run
    (non-finite loss, a file that cannot be written) or Ctrl-C is one line; a finished run is a no-op."""
    if any(arg in ("-h", "--help", "--helpshort", "--helpfull") for arg in sys.argv[1:]):
        print_help(study.EXPERIMENT, sys.modules["__main__"].__doc__)
        sys.exit(0)
    config, workdir, overwrite = define_flags(study.EXPERIMENT)

    def run(argv):
        del argv  # parse_flags has refused stray arguments
        settings = config.value
        settings.lock()  # a typo in code (config.trian = ...) fails too, not just on the command line
        if flags.FLAGS.distributed:
            jax.distributed.initialize()  # every host: the mesh (rvt.sharding) then spans all devices
        checkpoint.quiet_checkpoint_logs(not flags.FLAGS.log_checkpoints)
        common.APP_STARTED["time"] = time.time()  # the run's wall time includes its checks and compiles
        try:
            study.run(settings, workdir.value, overwrite.value)
        except RunComplete as e:
            print(str(e), file=sys.stderr)
        except ConfigError as e:
            fail(str(e))
        except OSError as e:  # a file the run could not write or read (a full disk, permissions)
            fail(f"{e.filename or 'a file of the run'}: {e.strerror or e}")
        except KeyboardInterrupt:
            print(f"interrupted; rerun the same command to continue the run in {workdir.value}", file=sys.stderr)
            sys.exit(130)

    app.run(run, flags_parser=parse_flags)
