"""Model name -> (typed config, constructor): the one place a model name is resolved.

Every registered model maps tokens [B, T] -> logits [B, T, V] and has ``initial_state`` / ``step``.
``make_model(name, settings, vocab_size=..., length=...)`` turns a plain mapping of settings (from an
ml_collections config) into a frozen, validated config dataclass and the flax module built from it.
Errors name the setting: ``model.lstm.hidden_size: must be a positive integer, got 0``.

Add a recurrent model by registering its cell: ``register_cell("mgu", MGUCell)`` makes a model "mgu"
whose settings are :class:`RecurrentConfig`'s plus the cell's own fields. Add any other model with
``register_model(name, ModelSpec(config_cls, build))``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvt.errors import ConfigError, check, check_positive_int
from rvt.models.attention import ATTENTION
from rvt.models.cells import Cell, ElmanCell, GRUCell, LSTMCell
from rvt.models.recurrent import RecurrentLM
from rvt.models.transformer import POSITIONAL, TransformerLM


@dataclasses.dataclass(frozen=True)
class RecurrentConfig:
    """A stack of ``num_layers`` cells of width ``hidden_size`` over an embedding of ``embed_dim``."""

    hidden_size: int = 128
    num_layers: int = 1
    embed_dim: int = 0  # 0: same as hidden_size
    unroll: int = 1  # lax.scan unroll factor (speed only)
    cell_options: tuple[tuple[str, Any], ...] = ()  # the cell's own fields, e.g. forget_bias


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """A causal pre-LN decoder; ``max_len`` 0 means the task's sequence length."""

    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: int = 4
    positional: str = "sinusoidal"  # one of POSITIONAL
    attention: str = "vmapped"  # "vmapped" (attend lifted by vmap) or "fused"
    max_len: int = 0
    window: int = 0  # sliding-window attention size; 0 = full causal


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model: its config class and ``build(config, vocab, length)``."""

    config_cls: type
    build: Callable[[Any, int, int], nn.Module]
    cell: type[Cell] | None = None  # recurrent models: the cell class whose fields are settings too


MODELS: dict[str, ModelSpec] = {}

# Presets matched in parameter count (~33K at vocab 10; tests/test_models.py pins the counts).
PRESETS: dict[str, dict[str, Any]] = {
    "rnn": dict(hidden_size=128),
    "lstm": dict(hidden_size=64),
    "gru": dict(hidden_size=74),
    "transformer": dict(d_model=48, num_layers=1, num_heads=2),
}


def _build_recurrent(cell_cls: type[Cell]):
    def build(config: RecurrentConfig, vocab_size: int, length: int) -> nn.Module:
        del length
        options = dict(config.cell_options)
        cells = tuple(cell_cls(hidden_size=config.hidden_size, **options) for _ in range(config.num_layers))
        return RecurrentLM(
            vocab_size=vocab_size,
            cells=cells,
            embed_dim=config.embed_dim or config.hidden_size,
            unroll=config.unroll,
        )

    return build


def _build_transformer(config: TransformerConfig, vocab_size: int, length: int) -> nn.Module:
    fields = dataclasses.asdict(config)
    fields["max_len"] = config.max_len or length
    return TransformerLM(vocab_size=vocab_size, **fields)


def register_model(name: str, spec: ModelSpec) -> None:
    if name in MODELS:
        raise ValueError(f"model {name!r} is already registered")
    MODELS[name] = spec


def register_cell(name: str, cell_cls: type[Cell]) -> None:
    """Register a recurrent model named ``name`` built from ``cell_cls`` (a :class:`Cell`)."""
    register_model(name, ModelSpec(RecurrentConfig, _build_recurrent(cell_cls), cell=cell_cls))


register_cell("rnn", ElmanCell)
register_cell("lstm", LSTMCell)
register_cell("gru", GRUCell)
register_model("transformer", ModelSpec(TransformerConfig, _build_transformer))


def _cell_fields(cell_cls: type[Cell]) -> dict[str, Any]:
    skip = {"parent", "name", "hidden_size"}
    return {f.name: f.default for f in dataclasses.fields(cell_cls) if f.name not in skip}


def model_settings(name: str) -> dict[str, Any]:
    """Every setting of model ``name`` with its default (for configs, docs and error messages)."""
    spec = _spec(name)
    settings = {f.name: f.default for f in dataclasses.fields(spec.config_cls)}
    settings.pop("cell_options", None)
    if spec.cell is not None:
        settings.update(_cell_fields(spec.cell))
    return settings


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"models: unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def make_config(name: str, settings: Mapping[str, Any]):
    """Validate ``settings`` for model ``name`` and return its frozen config dataclass."""
    spec = _spec(name)
    known = model_settings(name)
    for key in settings:
        check(key in known, f"model.{name}.{key}", f"unknown setting; known: {', '.join(known)}")
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    main = {k: v for k, v in settings.items() if k in fields}
    options = tuple(sorted((k, v) for k, v in settings.items() if k not in fields))
    config = spec.config_cls(**main, **({"cell_options": options} if spec.cell else {}))
    _validate(name, config)
    return config


def _validate(name: str, config) -> None:
    for field in ("hidden_size", "num_layers", "d_model", "num_heads", "mlp_ratio", "unroll"):
        if hasattr(config, field):
            check_positive_int(getattr(config, field), f"model.{name}.{field}")
    for field in ("embed_dim", "max_len", "window"):
        if hasattr(config, field):
            value = getattr(config, field)
            check(isinstance(value, int) and value >= 0, f"model.{name}.{field}", f"must be >= 0, got {value!r}")
    if isinstance(config, TransformerConfig):
        check(config.positional in POSITIONAL, f"model.{name}.positional", f"must be one of {POSITIONAL}")
        check(config.attention in ATTENTION, f"model.{name}.attention", f"must be one of {tuple(ATTENTION)}")
        check(
            config.d_model % config.num_heads == 0,
            f"model.{name}.num_heads",
            f"{config.num_heads} does not divide d_model {config.d_model}",
        )
        head_dim = config.d_model // config.num_heads
        check(
            config.positional != "rope" or head_dim % 2 == 0,
            f"model.{name}.positional",
            f"rope needs an even head width, got {head_dim}",
        )


def make_model(name: str, settings: Mapping[str, Any], *, vocab_size: int, length: int):
    """Build model ``name``: returns ``(module, config)``. ``length`` is the task's sequence length."""
    config = make_config(name, settings)
    if isinstance(config, TransformerConfig) and config.max_len:
        check(
            config.max_len >= length,
            f"model.{name}.max_len",
            f"{config.max_len} is shorter than the task's sequence length {length}",
        )
    return _spec(name).build(config, vocab_size, length), config


def count_params(params) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(params))


@functools.partial(jax.jit, static_argnums=(0, 2))
def init_params(module: nn.Module, key, length: int):
    """Initialise a model's params for [1, length] token inputs (shapes do not depend on the batch).

    Jitted: one compilation costs less CPU than running every initialiser op by op.
    """
    return module.init(key, jnp.zeros((1, length), jnp.int32))["params"]
