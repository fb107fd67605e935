"""What every study shares: config -> objects in one place, the run directory, clean failure.

``resolve_task`` / ``resolve_models`` / ``resolve_train`` turn an ml_collections config into validated
objects *before* anything is written, so a bad setting leaves no half-made run behind.
``main_guard`` turns a :class:`ConfigError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from typing import Any

import jax
import ml_collections

from rvt import io, models
from rvt.errors import ConfigError, check
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
    return names


def resolve_task(config: ml_collections.ConfigDict) -> Task:
    name = config.task
    check(name in config.tasks, "task", f"unknown task {name!r}; known: {', '.join(sorted(config.tasks))}")
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


def start_run(workdir: str, overwrite: bool, experiment: str, config, resolved: Mapping[str, Any]):
    """Create the run directory and write config.json: the config as given plus what it resolved to."""
    path = io.prepare_workdir(workdir, overwrite)
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


def main_guard(run: Callable[[], Any]) -> Any:
    """Run ``run()``; a ConfigError becomes ``error: <message>`` on stderr and exit status 2."""
    try:
        return run()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
