"""What every study shares: config -> objects in one place, the run directory, clean failure.

``resolve_task`` / ``resolve_models`` / ``resolve_train`` turn an ml_collections config into validated
objects *before* anything is written, so a bad setting leaves no half-made run behind.
``main_guard`` turns a :class:`ConfigError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import pathlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import jax
import ml_collections
from absl import flags
from ml_collections import config_flags

from rvt import io, models
from rvt.errors import ConfigError, check, settings_under
from rvt.tasks import Task, make_task
from rvt.tasks.registry import TASKS, task_fields
from rvt.train import TrainConfig


def task_configs() -> ml_collections.ConfigDict:
    """Every registered task's settings with their defaults, so any can be chosen and overridden."""
    return ml_collections.ConfigDict({name: task_fields(name) for name in TASKS})


def model_configs(names=None) -> ml_collections.ConfigDict:
    """Every registered model's settings, defaults overlaid with the parameter-matched presets."""
    names = names or sorted(models.MODELS)
    return ml_collections.ConfigDict({n: {**models.model_settings(n), **models.PRESETS.get(n, {})} for n in names})


def parse_names(value: str | tuple | list, setting: str) -> tuple[str, ...]:
    names = tuple(value.split(",")) if isinstance(value, str) else tuple(value)
    names = tuple(n.strip() for n in names if n.strip())
    check(bool(names), setting, "names no model")
    repeated = sorted({n for n in names if names.count(n) > 1})
    check(not repeated, setting, f"{', '.join(repeated)} listed twice")
    return names


def resolve_task(config: ml_collections.ConfigDict) -> Task:
    name = config.task
    check(name in config.tasks, "task", f"unknown task {name!r}; known: {', '.join(sorted(config.tasks))}")
    with settings_under(f"tasks.{name}"):
        return make_task(name, **config.tasks[name].to_dict())


def describe_task(name: str, task: Task) -> dict[str, Any]:
    """The task's settings plus the sizes they imply, for config.json."""
    return dict(
        dataclasses.asdict(task),
        name=name,
        vocab_size=task.vocab_size,
        length=task.length,
        max_distance=task.max_distance,
    )


def _settings(config: ml_collections.ConfigDict, name: str) -> Mapping[str, Any]:
    return config.model[name].to_dict() if name in config.model else {}


@dataclasses.dataclass(frozen=True)
class ModelPlan:
    name: str
    module: Any
    config: Any
    num_params: int


def resolve_models(config: ml_collections.ConfigDict, task: Task) -> list[ModelPlan]:
    """Build every model in ``config.models`` for ``task`` and count its parameters (shape-only)."""
    plans = []
    for name in parse_names(config.models, "models"):
        module, model_config = models.make_model(
            name, _settings(config, name), vocab_size=task.vocab_size, length=task.length
        )
        shapes = jax.eval_shape(lambda key, m=module: models.init_params(m, key, task.length), jax.random.key(0))
        plans.append(ModelPlan(name, module, model_config, models.count_params(shapes)))
    return plans


def resolve_train(config: ml_collections.ConfigDict) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in config.train:
        check(key in fields, f"train.{key}", f"unknown setting; known: {', '.join(sorted(fields))}")
    train_config = TrainConfig(**config.train.to_dict())
    train_config.validate()
    return train_config


def start_run(
    workdir: str,
    overwrite: bool,
    experiment: str,
    config,
    resolved: Mapping[str, Any],
    resume: bool = False,
    resumable: bool = False,  # the experiment offers --resume (its message says so)
):
    """Create the run directory and write config.json: the config as given plus what it resolved to.

    ``resume`` continues a run already in ``workdir`` (from its checkpoints): only with the same
    experiment and the same config, which it checks before anything is touched.
    """
    if overwrite and resume:
        raise ConfigError("overwrite: cannot be combined with --resume (one replaces the run, one continues it)")
    if resume and (pathlib.Path(workdir).expanduser() / io.CONFIG).exists():
        saved = io.read_json(pathlib.Path(workdir).expanduser() / io.CONFIG)
        given = json.loads(json.dumps(dict(experiment=experiment, config=config.to_dict()), default=str))
        for key in ("experiment", "config"):
            if saved.get(key) != given[key]:
                differ = _first_difference(saved.get(key), given[key], key)
                raise ConfigError(f"resume: {workdir} holds a different run ({differ}); resume it with its own config")
    path = io.prepare_workdir(workdir, overwrite, resume, resumable=resumable)
    io.write_json(
        path / io.CONFIG,
        dict(
            experiment=experiment,
            config=config.to_dict(),
            resolved=resolved,
            backend=jax.default_backend(),
            devices=[str(d) for d in jax.devices()],
        ),
    )
    return path


def _first_difference(saved: Any, given: Any, where: str) -> str:
    """The first setting at which two JSON trees differ, as ``where.a.b: saved -> given``."""
    if isinstance(saved, dict) and isinstance(given, dict):
        for key in sorted(set(saved) | set(given)):
            if saved.get(key) != given.get(key):
                return _first_difference(saved.get(key), given.get(key), f"{where}.{key}")
    return f"{where}: {saved!r} -> {given!r}"


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _unknown_setting(error: Exception, argv: Sequence[str]) -> NoReturn:
    key = str(error).strip("'\"")
    culprit = next((a.split("=")[0] for a in argv[1:] if key in a.split("=")[0].split(".")), key)
    _fail(f"{culprit.removeprefix('--')}: unknown setting (the config file lists the known ones)")


def config_flag(config_file: str | os.PathLike):
    """``--config``, an ml_collections config file, for an experiment script. ml_collections applies the
    ``--config.<setting>=...`` overrides while defining the flag (at import); an override of a setting the
    config lacks becomes one line ``error: ...`` and exit status 2 instead of a traceback.

    ``--import=my_pkg.cells`` modules are imported first, so what they register is in the config:
    ``--import=my_cells --config.models=leaky --config.model.leaky.leak=0.9`` works from the shell."""
    flags.DEFINE_multi_string(
        "import", [], "Modules to import before the config is built: they may register models, cells or tasks."
    )
    for module in _imports(sys.argv[1:]):
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 -- any failure of the user's module is one line
            _fail(f"import: cannot import {module!r}: {type(e).__name__}: {e}")
    try:
        return config_flags.DEFINE_config_file("config", str(config_file), "Experiment config.")
    except (AttributeError, KeyError) as e:
        _unknown_setting(e, sys.argv)


def _imports(args: Sequence[str]) -> list[str]:
    """The modules named by ``--import=a.b`` / ``--import a.b`` (repeatable), in order."""
    modules = []
    for i, arg in enumerate(args):
        if arg.startswith("--import="):
            modules.append(arg.split("=", 1)[1])
        elif arg == "--import" and i + 1 < len(args):
            modules.append(args[i + 1])
    return modules


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing for the experiments (``app.run(main, flags_parser=common.parse_flags)``): a bad
    flag, an unknown config setting, a value of the wrong type or a stray argument becomes one line
    ``error: ...`` and exit status 2, like every other bad setting."""
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "no TPU here", on every start
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as e:
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    except (AttributeError, KeyError) as e:  # ml_collections: an override of a setting the config lacks
        _unknown_setting(e, argv)
    except (TypeError, ValueError) as e:  # ml_collections: a value of the wrong type
        _fail(f"config: {str(e).splitlines()[0]}")
    if len(rest) > 1:
        _fail(f"unexpected arguments: {' '.join(rest[1:])} (settings are --config.<name>=<value>)")
    return rest


def main_guard(run: Callable[[], Any]) -> Any:
    """Run ``run()``; a ConfigError becomes ``error: <message>`` on stderr and exit status 2."""
    try:
        return run()
    except ConfigError as e:
        _fail(str(e))
