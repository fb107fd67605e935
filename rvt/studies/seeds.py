"""Seeds and the training of every seed: which seeds, their keys, the held-out (validation / test) keys,
and :func:`train_seeds`, which trains every seed of a model (and, with a learning-rate grid, every rate,
keeping the one validation chooses). Re-exported by :mod:`rvt.studies.common`."""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from rvt import io, train
from rvt.checkpoint import Checkpoints
from rvt.errors import check
from rvt.studies.parsing import parse_list
from rvt.train import TrainConfig

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
