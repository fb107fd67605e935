"""Edge footprint: parameters, weight bytes, FLOPs and single-stream latency per generated token.

For each entry of ``config.models`` -- a registered model with its preset settings, or a named variant
from ``config.variants`` (e.g. the lesson's "2-layer LSTM with 256 hidden units") -- at vocabulary
``config.vocab_size``:

* ``params`` counted from the initialised tree; ``bytes_fp32 / bf16 / int8`` the weights at 4 / 2 / 1
  bytes each (int8 adds one fp32 scale per tensor, per-tensor symmetric quantisation);
* ``flops_per_token``: XLA's cost analysis of the jitted batch-1 step; ``flops_closed_form``: the
  model config's own cost model (``flops_per_token``, 2 FLOPs per multiply-add);
* ``latency_s``: median of ``repeats`` timed batch-1 steps on this machine (p99 beside it), after
  ``context - 1`` tokens of context (a Transformer attends over a KV cache of ``context`` slots);
* ``state_bytes``: what the model keeps between tokens at that context (RNN carry, KV cache).
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from rvt import io, models, profiling
from rvt.errors import check, check_positive_int, settings_under
from rvt.models import stepping
from rvt.studies import common

EXPERIMENT = "edge"
RESULT_COLUMNS = (
    "model",
    "base",
    "params",
    "bytes_fp32",
    "bytes_bf16",
    "bytes_int8",
    "flops_per_token",
    "flops_closed_form",
    "latency_s",
    "latency_p99_s",
    "state_bytes",
    "context",
    "compile_s",
    "settings",
)
LESSON = dict(params=500_000, latency_s=1e-3)  # "~500K parameters and 1 ms per step on a phone CPU"


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    base: str  # the registered model it is built from
    module: object
    config: object  # the model's frozen config dataclass
    settings: dict


def resolve(config: ml_collections.ConfigDict) -> list[Entry]:
    """Every entry built (shapes only) and validated before anything is written."""
    check(
        isinstance(config.vocab_size, int) and config.vocab_size >= 2,
        "vocab_size",
        f"must be an integer >= 2, got {config.vocab_size!r}",
    )
    for field in ("context", "repeats"):
        value = config[field]
        check_positive_int(value, field)
    entries = []
    for name in common.parse_names(config.models, "models"):
        if name in config.variants:
            variant = config.variants[name].to_dict()
            check("model" in variant, f"variants.{name}.model", "names no registered model to build from")
            base = variant.pop("model")
            check(base in models.MODELS, f"variants.{name}.model", f"unknown model {base!r}")
            settings = {**(config.model[base].to_dict() if base in config.model else {}), **variant}
        else:
            check(
                name in models.MODELS,
                "models",
                f"unknown model {name!r}; known: {', '.join(sorted(models.MODELS))} and variants "
                f"{', '.join(sorted(config.variants))}",
            )
            base, settings = name, (config.model[name].to_dict() if name in config.model else {})
        # A variant's bad setting is named as the user typed it: variants.<name>.<field>, not model.<base>.<field>.
        renamed = settings_under(f"variants.{name}", was=f"model.{base}") if name in config.variants else nullcontext()
        with renamed:
            module, model_config = models.make_model(
                base, settings, vocab_size=config.vocab_size, length=config.context
            )
        common.check_state_fits("context", name, model_config, config.context)
        entries.append(Entry(name, base, module, model_config, settings))
    names = [e.name for e in entries]
    check(
        config.lesson_model in names + [""],
        "lesson_model",
        f"{config.lesson_model!r} is not among the models measured ({', '.join(names)}); '' for none",
    )
    return entries


def weight_bytes(params) -> dict[str, int]:
    count, tensors = models.count_params(params), len(jax.tree.leaves(params))
    return dict(bytes_fp32=4 * count, bytes_bf16=2 * count, bytes_int8=count + 4 * tensors)


def measure(entry: Entry, config, key) -> dict:
    """Step-mode cost after ``context - 1`` tokens of context (prefilled in one pass), then ``repeats``
    timed steps: the same code for every model, whatever it keeps between tokens."""
    params = models.init_params(entry.module, key, 1)
    prompt_key, token_key = jax.random.split(key)
    prompt = jax.random.randint(prompt_key, (1, config.context - 1), 0, config.vocab_size)
    state = (
        stepping.prefill(entry.module, params, prompt)
        if config.context > 1
        else models.init_state(entry.module, params)
    )
    step, compile_s, cost = stepping.compile_step(entry.module, params, state)
    tokens = np.asarray(jax.random.randint(token_key, (config.repeats,), 0, config.vocab_size))
    # Each timing runs twice and keeps the second: the first steps of a process (or after another
    # model) pay for thread-pool start-up and cold caches, which made whichever model came first ~4x slower.
    for _ in range(2):
        seconds, _ = stepping.timed_steps(step, params, jax.tree.map(jnp.copy, state), tokens)
    return dict(
        model=entry.name,
        base=entry.base,
        params=models.count_params(params),
        **weight_bytes(params),
        flops_per_token=cost.flops,
        flops_closed_form=entry.config.flops_per_token(config.vocab_size, config.context),
        latency_s=float(np.median(seconds)),
        latency_p99_s=float(np.quantile(seconds, 0.99)),
        state_bytes=profiling.tree_bytes(state),
        context=config.context,
        compile_s=compile_s,
        settings=" ".join(f"{k}={v}" for k, v in sorted(entry.settings.items())),
    )


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    entries = resolve(config)
    resolved = dict(models={e.name: dict(base=e.base, **dataclasses.asdict(e.config)) for e in entries}, lesson=LESSON)
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)
    key = jax.random.key(config.seed)
    rows = []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for entry in entries:
            start = time.perf_counter()
            rows.append(measure(entry, config, key))
            writer.write(dict(kind="edge", **rows[-1]))
            io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)
            r = rows[-1]
            logging.info(
                "%-18s %9d params  %7.1f kB int8  %9.3g FLOPs/token  %7.1f us/step  %8d state bytes (%.1fs)",
                r["model"],
                r["params"],
                r["bytes_int8"] / 1e3,
                r["flops_per_token"],
                r["latency_s"] * 1e6,
                r["state_bytes"],
                time.perf_counter() - start,
            )
        for r in rows:
            if r["model"] == config.lesson_model:
                lesson = dict(
                    kind="lesson",
                    model=r["model"],
                    params=r["params"],
                    lesson_params=LESSON["params"],
                    params_ratio=r["params"] / LESSON["params"],
                    latency_s=r["latency_s"],
                    lesson_latency_s=LESSON["latency_s"],
                )
                writer.write(lesson)
                logging.info(
                    "lesson check %s: %d params (lesson: ~500K), %.3g ms per step here (lesson: 1 ms on a phone CPU)",
                    r["model"],
                    r["params"],
                    r["latency_s"] * 1e3,
                )
    return common.finish_run(path)
