"""Streaming inference: per-token latency and state bytes against context position.

Modes (``config.modes``), each timed one token at a time at batch 1 on a geometric grid of positions
(``position`` = tokens of context including the new one):

* ``state``    -- the RNN (``config.rnn``) steps its fixed-size carry; stepped for real through every
  position up to the largest, each step timed.
* ``window``   -- the Transformer with a ring-buffer KV cache of ``config.window`` slots; stepped for
  real the same way.
* ``kv_cache`` -- the Transformer with one KV cache preallocated to ``max_position`` slots and one
  compiled step. Rather than stepping 16k times, the cache is *jumped* to each grid position: slots
  before it are filled with random keys and values and marked visible (latency does not depend on the
  values), then the step at that position is timed ``repeats`` times.
* ``kv_bucket`` -- the same with the cache sized to the position (next power of two): one compile per
  bucket, as serving systems do, so the cost of attending over the real context shows.
* ``naive``    -- no cache: a full forward over the whole prefix [1, position] for every new token. A
  new length compiles anew; compile is timed apart and excluded; positions above
  ``naive_max_position`` are skipped (8192 already takes seconds per token).

``state_bytes`` is :func:`rvt.profiling.tree_bytes` of what the mode keeps between tokens (for
``naive``, the int32 prefix); ``state_bytes_used`` counts only the filled cache slots; ``temp_bytes``
is XLA's scratch for one step. Sequences too long for attention are :mod:`rvt.studies.long_sequence`.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from rvt import io, models, profiling
from rvt.errors import check, check_positive_int, is_positive_int
from rvt.models import stepping
from rvt.studies import common

EXPERIMENT = "streaming"
MODES = ("state", "window", "kv_cache", "kv_bucket", "naive")
RESULT_COLUMNS = (
    "model",
    "mode",
    "position",
    "latency_median_s",
    "latency_p99_s",
    "state_bytes",
    "state_bytes_used",
    "temp_bytes",
    "compile_s",
    "repeats",
)


# ---- configuration ----


def grid(max_position: int, factor: float) -> list[int]:
    """1, factor, factor^2, ... (rounded, distinct) and ``max_position`` itself."""
    count = int(math.floor(math.log(max_position) / math.log(factor) + 1e-9)) + 1
    points = {int(round(factor**i)) for i in range(count)} | {max_position}
    return sorted(p for p in points if 1 <= p <= max_position)


@dataclasses.dataclass(frozen=True)
class Plan:
    rnn: str
    modes: tuple[str, ...]
    positions: tuple[int, ...]
    rnn_module: object
    transformer: object  # the TransformerConfig
    rnn_params: int
    transformer_params: int


def resolve(config: ml_collections.ConfigDict) -> Plan:
    """Validate every setting (errors name it) before anything is written."""
    modes = common.parse_choices(config.modes, "modes", MODES)
    for field in ("max_position", "repeats", "naive_repeats", "window"):
        check_positive_int(config[field], field)
    check(
        isinstance(config.naive_max_position, int) and config.naive_max_position >= 0,
        "naive_max_position",
        f"must be >= 0, got {config.naive_max_position!r}",
    )
    check(
        isinstance(config.grid_factor, int | float) and config.grid_factor > 1,
        "grid_factor",
        f"must be > 1, got {config.grid_factor!r}",
    )
    check(
        is_positive_int(config.vocab_size) and config.vocab_size >= 4,
        "vocab_size",
        f"must be an integer >= 4, got {config.vocab_size!r}",
    )
    check(
        config.rnn in models.MODELS,
        "rnn",
        f"{config.rnn!r} is not a registered model; known: {', '.join(sorted(models.MODELS))}",
    )
    rnn_module, _ = models.make_model(
        config.rnn, common.model_settings(config, config.rnn), vocab_size=config.vocab_size, length=1
    )
    check(config.max_position <= common.MAX_POSITION, "max_position", f"must be <= {common.MAX_POSITION}")
    settings = dict(common.model_settings(config, "transformer"), max_len=config.max_position, window=0)
    common.check_state_fits(
        "max_position", "transformer", models.make_config("transformer", settings), config.max_position
    )
    transformer, t_config = models.make_model(
        "transformer", settings, vocab_size=config.vocab_size, length=config.max_position
    )
    check(
        t_config.positional != "learned",
        "model.transformer.positional",
        "learned positions tie the parameters to max_len, which the kv_bucket mode varies",
    )
    count = lambda m: models.count_params(jax.eval_shape(lambda k: models.init_params(m, k, 1), jax.random.key(0)))
    return Plan(
        config.rnn,
        modes,
        tuple(grid(config.max_position, config.grid_factor)),
        rnn_module,
        t_config,
        count(rnn_module),
        count(transformer),
    )


def _compiled(module, params, state):
    """The step compiled once: (executable, compile seconds, XLA's scratch bytes of one step)."""
    step, compile_s, cost = stepping.compile_step(module, params, state)
    return step, compile_s, cost.temp_bytes


def transformer_module(plan: Plan, vocab_size: int, max_len: int, window: int = 0):
    return models.TransformerLM(
        vocab_size=vocab_size, **dict(dataclasses.asdict(plan.transformer), max_len=max_len, window=window)
    )


# ---- measurements ----


def _row(model, mode, position, seconds, state_bytes, used, temp, compile_s):
    return dict(
        model=model,
        mode=mode,
        position=position,
        latency_median_s=float(np.median(seconds)),
        latency_p99_s=float(np.quantile(seconds, 0.99)),
        state_bytes=state_bytes,
        state_bytes_used=used,
        temp_bytes=temp,
        compile_s=compile_s,
        repeats=len(seconds),
    )


def stepped_rows(name, mode, module, params, plan, config, key) -> list[dict]:
    """Step for real through every position to the largest (+ repeats); one row per grid position."""
    state = models.init_state(module, params)
    step, compile_s, temp = _compiled(module, params, state)
    count = plan.positions[-1] + config.repeats - 1
    tokens = np.asarray(jax.random.randint(key, (count,), 0, config.vocab_size))
    seconds, state = stepping.timed_steps(step, params, state, tokens)
    nbytes = profiling.tree_bytes(state)
    return [
        _row(
            name,
            mode,
            p,
            seconds[p - 1 : p - 1 + config.repeats],
            nbytes,
            stepping.used_state_bytes(state, p),
            temp,
            compile_s,
        )
        for p in plan.positions
    ]


def jump_rows(mode, params, plan, config, key) -> list[dict]:
    """kv_cache: one cache of max_position slots; kv_bucket: a cache sized to each position."""
    rows, module = [], None
    for position in plan.positions:
        slots = plan.positions[-1] if mode == "kv_cache" else 2 ** math.ceil(math.log2(position))
        if module is None or module.max_len != slots:
            module = transformer_module(plan, config.vocab_size, slots)
            step, compile_s, temp = _compiled(module, params, models.init_state(module, params))
        state = stepping.jump_cache(models.init_state(module, params), position, jax.random.fold_in(key, position))
        seconds, state = stepping.time_at(step, params, state, position, config.repeats)
        rows.append(
            _row(
                "transformer",
                mode,
                position,
                seconds,
                profiling.tree_bytes(state),
                stepping.used_state_bytes(state, position),
                temp,
                compile_s,
            )
        )
    return rows


def naive_rows(params, plan, config, key, budget_bytes: int) -> list[dict]:
    """Re-encode the whole prefix per token: compile per length (timed apart), then time the forward."""
    module = transformer_module(plan, config.vocab_size, plan.positions[-1])
    forward = jax.jit(lambda p, tokens_1xT: module.apply({"params": p}, tokens_1xT)[:, -1])
    rows = []
    for position in plan.positions:
        if position > config.naive_max_position:
            break
        tokens = jax.random.randint(jax.random.fold_in(key, position), (1, position), 0, config.vocab_size)
        start = time.perf_counter()
        compiled = forward.lower(params, tokens).compile()
        compile_s = time.perf_counter() - start
        temp = int(compiled.memory_analysis().temp_size_in_bytes)
        if temp > budget_bytes // 2:
            logging.info("naive: position %d needs %.1f GB of scratch; stopping", position, temp / 1e9)
            break
        timing = profiling.time_fn(compiled, params, tokens, repeats=config.naive_repeats, jit=False)
        nbytes = profiling.tree_bytes(tokens)
        rows.append(_row("transformer", "naive", position, timing.runs_s, nbytes, nbytes, temp, compile_s))
    return rows


# ---- the study ----


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per mode: latency and bytes at the ends of the grid, and the growth exponent on its upper half."""
    out = []
    for mode in dict.fromkeys(r["mode"] for r in rows):
        sel = [r for r in rows if r["mode"] == mode]
        xs, ys = profiling.upper_half([r["position"] for r in sel], [r["latency_median_s"] for r in sel])
        out.append(
            dict(
                model=sel[0]["model"],
                mode=mode,
                first_position=sel[0]["position"],
                last_position=sel[-1]["position"],
                latency_first_s=sel[0]["latency_median_s"],
                latency_last_s=sel[-1]["latency_median_s"],
                latency_exponent=profiling.fit_exponent(xs, ys) if len(xs) > 1 else float("nan"),
                state_bytes_last=sel[-1]["state_bytes"],
                state_bytes_used_last=sel[-1]["state_bytes_used"],
            )
        )
    return out


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    plan = resolve(config)
    budget = profiling.memory_budget()[0]
    resolved = dict(
        positions=list(plan.positions),
        rnn=plan.rnn,
        rnn_params=plan.rnn_params,
        transformer=dataclasses.asdict(plan.transformer),
        transformer_params=plan.transformer_params,
        memory_budget_bytes=budget,
    )
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)
    key = jax.random.key(config.seed)
    vocab, largest = config.vocab_size, plan.positions[-1]
    rnn_params = models.init_params(plan.rnn_module, key, 1)
    t_params = models.init_params(transformer_module(plan, vocab, largest), key, 1)
    rows = []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for mode in plan.modes:
            start = time.perf_counter()
            if mode == "state":
                new = stepped_rows(plan.rnn, mode, plan.rnn_module, rnn_params, plan, config, key)
            elif mode == "window":
                module = transformer_module(plan, vocab, largest, window=config.window)
                new = stepped_rows("transformer", mode, module, t_params, plan, config, key)
            elif mode == "naive":
                new = naive_rows(t_params, plan, config, key, budget)
            else:
                new = jump_rows(mode, t_params, plan, config, key)
            for row in new:
                writer.write(dict(kind="latency", **row))
            rows += new
            io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)
            logging.info(
                "%-9s %d positions in %.1fs; median latency %.3g s at %d, %.3g s at %d",
                mode,
                len(new),
                time.perf_counter() - start,
                new[0]["latency_median_s"],
                new[0]["position"],
                new[-1]["latency_median_s"],
                new[-1]["position"],
            )
    io.write_csv(path / "summary.csv", summary_rows(rows))
    return common.finish_run(path)
