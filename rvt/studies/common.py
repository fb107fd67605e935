"""What every study shares: an ml_collections config -> validated objects, in one place.

``resolve_task`` / ``resolve_models`` / ``resolve_train`` turn an ml_collections config into validated
objects *before* anything is written, so a bad setting leaves no half-made run behind; every list-valued
setting goes through :func:`parse_list` (:mod:`rvt.studies.parsing`); seeds and the training of every
seed live in :mod:`rvt.studies.seeds`, re-exported here. Nothing here reads flags: the experiment apps
(``experiments/_app.py``) parse them and call a study's ``run(config, workdir, ...)``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
from absl import logging
from ml_collections import config_dict

from rvt import io, models, plotting, profiling, train
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
    return ml_collections.ConfigDict({n: {**models.model_settings(n), **models.PRESETS[n]} for n in names})


from rvt.studies.parsing import parse_choices, parse_list, parse_names  # noqa: E402, F401


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


def model_settings(config: ml_collections.ConfigDict, name: str) -> dict[str, Any]:
    """The settings the experiment's config gives model ``name`` (empty where it gives none)."""
    return config.model[name].to_dict() if name in config.model else {}


@dataclasses.dataclass(frozen=True)
class ModelPlan:
    name: str
    module: Any
    config: Any
    num_params: int
    settings: dict


def resolve_models(config: ml_collections.ConfigDict, task: Task) -> list[ModelPlan]:
    """Build every model in ``config.models`` for ``task`` and count its parameters (shape-only)."""
    plans = []
    for name in parse_names(config.models, "models"):
        settings = model_settings(config, name)
        module, model_config = models.make_model(name, settings, vocab_size=task.vocab_size, length=task.length)
        shapes = jax.eval_shape(lambda key, m=module: models.init_params(m, key, task.length), jax.random.key(0))
        plans.append(ModelPlan(name, module, model_config, models.count_params(shapes), settings))
    return plans


def train_settings(**overrides) -> ml_collections.ConfigDict:
    """Every TrainConfig setting with its default, ``overrides`` applied: an experiment config's ``train``.
    ``learning_rates`` is a string (``"1e-3,3e-3,1e-2"``; empty: ``learning_rate`` alone)."""
    return ml_collections.ConfigDict({**dataclasses.asdict(TrainConfig()), "learning_rates": "", **overrides})


def train_placeholders(**overrides) -> ml_collections.ConfigDict:
    """Every TrainConfig setting as an unset placeholder of its type (``overrides`` set): a ``train`` whose
    settings a study fills from elsewhere (a table's own budget) unless the command line gives them."""
    types = {"learning_rates": str, "schedule": str}
    fields = {
        f.name: config_dict.placeholder(types.get(f.name, type(f.default))) for f in dataclasses.fields(TrainConfig)
    }
    return ml_collections.ConfigDict({**fields, **overrides})


def resolve_train(config: ml_collections.ConfigDict) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in config.train:
        check(key in fields, f"train.{key}", f"unknown setting; known: {', '.join(sorted(fields))}")
    settings = config.train.to_dict()
    rates = settings.get("learning_rates", ())
    settings["learning_rates"] = parse_list(rates, "train.learning_rates", float) if rates not in ("", (), []) else ()
    train_config = TrainConfig(**settings)
    train_config.validate()
    return train_config


from rvt.studies.seeds import (  # noqa: E402, F401  (seeds and their training live there)
    LEARNING_RATES,
    SEED_STRATEGIES,
    Seeds,
    held_out_keys,
    resolve_seeds,
    seed_keys,
    seed_settings,
    seed_slice,
    train_seeds,
    validation_key,
)


def check_memory(
    name: str, module, init_fn, task, settings: TrainConfig, seeds: int = 0, forward=train.lm_forward, sums_fn=None
):
    """Refuse, before anything is allocated or written, a setting whose train or eval step needs more
    memory than this machine (or accelerator) has: XLA's memory analysis of the compiled steps, from
    shapes alone. ``init_fn(key) -> params``; ``seeds`` > 1: the state has a seed axis of that size (one
    seed trains without one, as :func:`train_seeds` does). The
    compiled steps are the ones training then runs (jax's cache), so the check costs no extra compile."""
    budget, source = profiling.memory_budget()
    seeds = seeds if seeds > 1 else 0  # one seed trains without a seed axis (train_seeds)
    key_S = jax.ShapeDtypeStruct((seeds,), jax.random.key(0).dtype) if seeds else jax.random.key(0)
    if seeds:
        params = jax.eval_shape(jax.vmap(init_fn), key_S)
        state = jax.eval_shape(lambda p: train.create_seed_states(module, p, settings), params)
    else:
        params = jax.eval_shape(init_fn, key_S)
        state = jax.eval_shape(lambda p: train.create_state(module, p, settings), params)
    step = train.make_train_step(train.task_sampler(task, settings.batch_size), key_S, forward, seed_axis=bool(seeds))
    needs = {"train.batch_size": profiling.analyse(step.lower(state).compile()).resident_bytes}
    evaluate = train.make_eval_step(task, settings.eval_batch_size, state.apply_fn, forward, sums_fn, bool(seeds))
    eval_params = jax.eval_shape(lambda s: s.params, state)
    needs["train.eval_batch_size"] = profiling.analyse(
        evaluate.lower(eval_params, jax.random.key(0)).compile()
    ).resident_bytes
    for setting, need in needs.items():
        check(
            need <= budget,
            setting,
            f"{name} would need {need / 2**30:.1f} GiB for one step, more than {source} ({budget / 2**30:.1f} GiB); "
            "lower it, the task's length or the model's size",
        )


MAX_POSITION = 2**31 - 1  # positions are int32 on device


def check_state_fits(setting: str, name: str, model_config, context: int, batch_size: int = 1) -> None:
    """Refuse a context whose positions overflow int32 or whose step-mode state (an RNN carry, a KV cache
    of ``context`` slots) alone exceeds the memory budget; shapes only, nothing allocated."""
    check(context <= MAX_POSITION, setting, f"{context} exceeds the largest position a step can take ({MAX_POSITION})")
    budget, source = profiling.memory_budget()
    need = model_config.state_bytes(context, batch_size)
    check(
        need <= budget,
        setting,
        f"{name} would keep {need / 2**30:.1f} GiB of state at {context} tokens, more than {source} "
        f"({budget / 2**30:.1f} GiB)",
    )


def start_run(workdir: str, overwrite: bool, experiment: str, config, resolved: Mapping[str, Any]) -> pathlib.Path:
    """Claim the run directory (locked while the run lasts) and write config.json; called after every
    setting has passed its checks, so a bad setting leaves nothing behind and deletes nothing.

    A run already in ``workdir`` with the same experiment and config is *continued*: rerunning the same
    command after an interruption (preemption, SIGKILL, Ctrl-C) picks up its checkpoints; if it had
    finished, :class:`rvt.io.RunComplete` says there is nothing to do. A different run there is refused
    with one line naming the first setting that differs; ``overwrite`` replaces it.
    """
    check(bool(str(workdir).strip()), "workdir", "is empty; name a directory for the run's files")
    path = pathlib.Path(workdir).expanduser()
    given = json.loads(json.dumps(dict(experiment=experiment, config=config.to_dict()), default=str))
    saved = None if overwrite else io.read_run(path)
    if saved is not None:
        for key in ("experiment", "config"):
            if saved.get(key) != given[key]:
                differ = _first_difference(saved.get(key), given[key], key)
                raise ConfigError(
                    f"workdir: {path} holds a different run ({differ}); rerun it with its own config, "
                    "pass --overwrite to replace it, or choose another --workdir"
                )
    path = io.prepare_workdir(path, clear=saved is None)
    if saved is not None and saved.get("complete"):
        io.unlock_workdir(path)
        raise io.RunComplete(f"workdir: {path} already holds this finished run; nothing to do (--overwrite reruns it)")
    _STARTED[str(path)] = (APP_STARTED.pop("time", time.time()), saved is not None)
    if saved is None:
        record = dict(given, resolved=resolved, complete=False)
        record.update(backend=jax.default_backend(), devices=[str(d) for d in jax.devices()])
        io.write_json(path / io.CONFIG, record)
    return path


APP_STARTED: dict[str, float] = {}  # set by the experiment app when it starts: wall_s then counts checks too
_STARTED: dict[str, tuple[float, bool]] = {}  # workdir -> (when this process took it up, whether it continued it)


def finish_run(path: pathlib.Path) -> pathlib.Path:
    """Draw the run's figures from its CSVs, mark it complete in config.json (with ``wall_s``, the seconds
    this process took, and whether it continued an interrupted run), release the workdir."""
    figures = plotting.plot_workdir(path)
    logging.info("wrote %s", ", ".join(str(f) for f in figures))
    saved = io.read_json(path / io.CONFIG)
    started, continued = _STARTED.pop(str(path), (time.time(), False))
    wall_s = time.time() - started
    io.write_json(path / io.CONFIG, dict(saved, complete=True, wall_s=wall_s, continued=continued))
    io.unlock_workdir(path)
    return path


def _first_difference(saved: Any, given: Any, where: str) -> str:
    """The first setting at which two JSON trees differ, as ``where.a.b: saved -> given``."""
    if isinstance(saved, dict) and isinstance(given, dict):
        for key in sorted(set(saved) | set(given)):
            if saved.get(key) != given.get(key):
                return _first_difference(saved.get(key), given.get(key), f"{where}.{key}")
    return f"{where}: {saved!r} -> {given!r}"
