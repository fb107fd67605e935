"""What every study shares: an ml_collections config -> validated objects, in one place.

``resolve_task`` / ``resolve_models`` / ``resolve_train`` turn an ml_collections config into validated
objects *before* anything is written, so a bad setting leaves no half-made run behind; every list-valued
setting goes through :func:`parse_list`. Nothing here reads flags: the experiment apps
(``experiments/_app.py``) parse them and call a study's ``run(config, workdir, ...)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging
from ml_collections import config_dict

from rvt import io, models, plotting, profiling, train
from rvt.checkpoint import Checkpoints
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


def parse_list(value, setting: str, cast: type = str, minimum: float | None = None) -> tuple:
    """A non-empty list setting, from ``"a,b,c"`` or a sequence: each item cast to ``cast`` (int items
    must be whole numbers; float items finite), at least ``minimum`` where given, none listed twice."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    items = [v for v in items if v != ""]
    check(bool(items), setting, "is empty")
    out = []
    for item in items:
        try:
            parsed = cast(item)
            ok = cast is not int or (not isinstance(item, bool) and str(parsed) == str(item).strip())
            ok = ok and (cast is not float or math.isfinite(parsed))
        except (TypeError, ValueError):
            ok = False
        kind = {int: "integers", float: "finite numbers"}.get(cast, "names")
        check(ok, setting, f"must be comma-separated {kind}, got {value!r}")
        check(minimum is None or parsed >= minimum, setting, f"every item must be >= {minimum}, got {item!r}")
        out.append(parsed)
    repeated = sorted({str(v) for v in out if out.count(v) > 1})
    check(not repeated, setting, f"{', '.join(repeated)} listed twice")
    return tuple(out)


def parse_names(value, setting: str) -> tuple[str, ...]:
    return parse_list(value, setting)


def parse_choices(value, setting: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    """A list setting whose every item is one of ``choices``."""
    items = parse_list(value, setting)
    for item in items:
        check(item in choices, setting, f"unknown {item!r}; known: {', '.join(choices)}")
    return items


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


SEED_STRATEGIES = ("auto", "vmap", "loop")


@dataclasses.dataclass(frozen=True)
class Seeds:
    """Which seeds to train and how: ``chunks`` of seeds, each trained as one vmapped program."""

    seeds: tuple[int, ...]
    strategy: str  # "vmap": every seed in one program; "loop": one seed after another

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        return (self.seeds,) if self.strategy == "vmap" else tuple((s,) for s in self.seeds)


def resolve_seeds(config: ml_collections.ConfigDict) -> Seeds:
    """``seeds``: a count N (seeds ``seed .. seed + N - 1``) or a list; ``seed_strategy``: ``vmap`` (one
    program, seeds on a vmapped axis: far faster on GPUs and TPUs), ``loop`` (one seed after another:
    faster on XLA's CPU backend, where batched small matmuls in a scan are slower than plain ones), or
    ``auto`` (vmap on accelerators, loop on CPU)."""
    raw = config.seeds
    if isinstance(raw, int) and not isinstance(raw, bool):
        check(raw >= 1, "seeds", f"must be a count >= 1 or a list of seeds, got {raw!r}")
        seeds = tuple(range(config.seed, config.seed + raw))
    else:
        seeds = parse_list(raw, "seeds", int, minimum=0)
    strategy = config.seed_strategy
    check(strategy in SEED_STRATEGIES, "seed_strategy", f"must be one of {SEED_STRATEGIES}, got {strategy!r}")
    if strategy == "auto":
        strategy = "loop" if jax.default_backend() == "cpu" else "vmap"
    return Seeds(seeds, strategy)


def seed_keys(seeds: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Per seed: (init key, train data key), stacked on a seed axis. Seed s always gets the same keys,
    however the seeds are grouped, so a seed's result does not depend on the strategy."""
    keys = [jax.random.split(jax.random.key(s), 3) for s in seeds]
    return jnp.stack([k[0] for k in keys]), jnp.stack([k[1] for k in keys])


def seed_settings(seeds: int = 2, **extra) -> dict:
    """The seed settings every training experiment's config has (``seeds``: a count or a list)."""
    return dict(seed=0, seeds=seeds, seed_strategy="auto", **extra)


LEARNING_RATES = "learning_rates.csv"  # with a grid: every (model, setting, rate, seed)'s validation score


def held_out_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """``(validation_key, test_key)`` of a run: held-out batch i is ``fold_in(key, i)``. Test batches are
    what a study reports; validation batches are what a learning-rate grid is chosen on, never the test
    ones (a run's training data comes from its seeds' own keys, :func:`seed_keys`)."""
    test = jax.random.split(jax.random.key(seed), 3)[2]
    return validation_key(test), test


def validation_key(test_key: jax.Array) -> jax.Array:
    """The validation batches beside a test key's: ``fold_in(test_key, 2**32 - 1)``, which no test batch
    index (``fold_in(test_key, i)``, i < eval_batches) reaches."""
    return jax.random.fold_in(test_key, 2**32 - 1)


def train_seeds(
    name: str,
    module,
    init_fn,
    task,
    settings: TrainConfig,
    seeds: Seeds,
    path,
    writer,
    tags: dict,
    forward=train.lm_forward,
    checkpoint_tag: str | None = None,
    validation_key=None,
    sums_fn=None,
):
    """Train every seed of ``seeds`` on ``task``, chunk by chunk: yields ``(chunk, TrainResult)`` with the
    state stacked on a seed axis (``jax.tree.map(lambda x: x[i], ...)`` reads seed ``chunk[i]``).

    Seed s draws its init and data keys from :func:`seed_keys` (the same however seeds are chunked).
    With ``settings.checkpoint_every`` > 0 each chunk checkpoints under
    ``path/checkpoints/<checkpoint_tag or name>/seeds_<first>-<last>`` and a rerun of the same command
    continues from there. Training curves go to ``writer`` with ``tags`` and the chunk's seeds.

    With a learning-rate grid (``settings.learning_rates``), every seed trains at every rate and the rate
    whose mean accuracy over the seeds on ``task``'s validation batches (``validation_key``, scored with
    ``sums_fn``'s ``correct / count``) is highest is kept: the yielded results are that rate's, each with
    its ``learning_rate``. Every score goes to ``path/learning_rates.csv``. Test batches are never read.
    """
    grid = settings.grid
    if len(grid) == 1:
        for chunk, result in _train_chunks(
            name, module, init_fn, task, grid[0], seeds, path, writer, tags, forward, checkpoint_tag
        ):
            yield chunk, dataclasses.replace(result, learning_rate=grid[0].learning_rate)
        return
    check(validation_key is not None, "train.learning_rates", "this experiment cannot choose a learning rate")
    trained, scores = {}, {}
    for config in grid:
        rate = config.learning_rate
        tag = f"{checkpoint_tag or name}/lr{rate:g}"
        trained[rate] = list(
            _train_chunks(
                f"{name} lr {rate:g}",
                module,
                init_fn,
                task,
                config,
                seeds,
                path,
                writer,
                dict(tags, learning_rate=rate),
                forward,
                tag,
            )
        )
        for chunk, result in trained[rate]:
            sums = train.evaluate(result.state, task, config, validation_key, forward, sums_fn, seed_axis=True)
            for i, seed in enumerate(chunk):
                scores[rate, seed] = float(sums["correct"][i] / max(sums["count"][i], 1.0))
    mean = {r: sum(scores[r, s] for s in seeds.seeds) / len(seeds.seeds) for r in trained}
    best = max(trained, key=lambda r: (mean[r], -r))  # a tie goes to the smaller rate
    rows = [
        dict(tags, learning_rate=r, seed=s, validation_accuracy=scores[r, s], chosen=r == best)
        for r in trained
        for s in seeds.seeds
    ]
    _record_selection(path, rows, tags)
    writer.write(dict(kind="learning_rate", **tags, chosen=best, validation_accuracy=mean))
    logging.info(
        "%s: learning rate %g chosen on validation (%s)",
        name,
        best,
        ", ".join(f"{r:g}: {m:.3f}" for r, m in mean.items()),
    )
    for chunk, result in trained[best]:
        yield chunk, dataclasses.replace(result, learning_rate=best)


def _record_selection(path, rows: list[dict], tags: dict) -> None:
    """Add one model's grid to learning_rates.csv (a rerun's rows replace the same model's)."""
    file = pathlib.Path(path) / LEARNING_RATES
    kept = [r for r in io.read_csv(file) if any(r.get(k) != v for k, v in tags.items())] if file.exists() else []
    io.write_csv(file, kept + rows)


def _train_chunks(name, module, init_fn, task, settings, seeds, path, writer, tags, forward, checkpoint_tag):
    for chunk in seeds.chunks:
        init_keys, train_keys = seed_keys(chunk)
        # one seed trains without a seed axis: vmapping a scan body over a size-1 axis doubles some
        # models' step on XLA's CPU backend (S6: 126 -> 260 ms); its state gains the axis afterwards
        single = len(chunk) == 1
        params = init_fn(init_keys[0]) if single else jax.vmap(init_fn)(init_keys)
        checkpoints = None
        if settings.checkpoint_every:
            folder = path / io.CHECKPOINTS / (checkpoint_tag or name) / f"seeds_{chunk[0]}-{chunk[-1]}"
            checkpoints = Checkpoints(folder, settings.checkpoint_every, tag=io.config_digest(path))
        label = f"{name} seed{'s' if len(chunk) > 1 else ''} {','.join(map(str, chunk))}"
        try:
            result = train.train(
                module,
                params,
                task,
                settings,
                train_keys[0] if single else train_keys,
                name=label,
                on_log=lambda record, c=chunk: writer.write(dict(kind="train", **tags, seeds=list(c), **record)),
                checkpoints=checkpoints,
                forward=forward,
                seed_axis=not single,
            )
        finally:
            if checkpoints is not None:
                checkpoints.close()
        if single:
            result = dataclasses.replace(result, state=jax.tree.map(lambda x: x[None], result.state))
        yield chunk, result


def seed_slice(tree, i: int):
    """Seed ``i`` of a tree stacked on a seed axis."""
    return jax.tree.map(lambda x: x[i], tree)


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
