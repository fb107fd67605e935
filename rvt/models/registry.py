"""Model name -> typed config: the one place a model name is resolved.

``make_model(name, settings, vocab_size=..., length=...)`` turns a plain mapping of settings (from an
ml_collections config) into the model's frozen, validated config dataclass and the flax module it builds.
Errors name the setting: ``model.lstm.hidden_size: must be a positive integer, got 0``.

Add a recurrent model by registering its cell: ``register_cell("mgu", MGUCell)`` makes a model "mgu"
whose settings are :class:`RecurrentConfig`'s plus the cell's own fields. Add a model of another kind
with ``register_model(name, MyConfig, preset=...)`` (see :mod:`rvt.models.base` for the contract).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvt.errors import ConfigError, check
from rvt.models.base import FLOAT_BYTES, ModelConfig, dense_flops
from rvt.models.cells import Cell, ElmanCell, GRUCell, LSTMCell
from rvt.models.recurrent import RecurrentLM
from rvt.models.transformer import TransformerConfig

CELLS: dict[str, type[Cell]] = {}


@dataclasses.dataclass(frozen=True)
class RecurrentConfig(ModelConfig):
    """A stack of ``num_layers`` cells of width ``hidden_size`` over an embedding of ``embed_dim``."""

    hidden_size: int = 128
    num_layers: int = 1
    embed_dim: int = 0  # 0: same as hidden_size
    unroll: int = 1  # lax.scan unroll factor (speed only)
    backend: str = "scan"  # "cudnn": an LSTM runs through NVIDIA's kernel where a GPU is present (same params)
    cell: str = ""  # the registered cell (set by the registry, not a user setting)
    cell_options: tuple[tuple[str, Any], ...] = ()  # the cell's own fields, e.g. forget_bias

    @property
    def cell_cls(self) -> type[Cell]:
        return CELLS[self.cell]

    @property
    def width(self) -> int:
        return self.embed_dim or self.hidden_size

    def build(self, vocab_size: int, length: int) -> nn.Module:
        del length
        options = dict(self.cell_options)
        cells = tuple(self.cell_cls(hidden_size=self.hidden_size, **options) for _ in range(self.num_layers))
        return RecurrentLM(
            vocab_size=vocab_size, cells=cells, embed_dim=self.width, unroll=self.unroll, backend=self.backend
        )

    def validate(self, name: str) -> None:
        super().validate(name)
        check(
            self.backend in ("scan", "cudnn"), f"model.{name}.backend", f"must be scan or cudnn, got {self.backend!r}"
        )
        check(
            self.backend == "scan" or issubclass(self.cell_cls, LSTMCell),
            f"model.{name}.backend",
            "cudnn runs LSTM cells only",
        )

    def _layer_inputs(self) -> list[int]:
        return [self.width] + [self.hidden_size] * (self.num_layers - 1)

    def num_params(self, vocab_size: int) -> int:
        g, h = self.cell_cls.num_gates, self.hidden_size
        layers = sum(
            d * g * h + g * h + h * g * h + (g * h if self.cell_cls.recurrent_bias else 0) for d in self._layer_inputs()
        )
        return vocab_size * self.width + layers + h * vocab_size + vocab_size

    def flops_per_token(self, vocab_size: int, context: int) -> float:
        del context  # a recurrence costs the same at every position
        g, h = self.cell_cls.num_gates, self.hidden_size
        layers = sum(
            dense_flops(d, g * h) + dense_flops(h, g * h) + self.cell_cls.pointwise_flops * h
            for d in self._layer_inputs()
        )
        return layers + dense_flops(h, vocab_size)

    def state_bytes(self, context: int, batch_size: int = 1) -> int:
        del context
        return self.num_layers * self.cell_cls.carry_arrays * batch_size * self.hidden_size * FLOAT_BYTES


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registered model: its config class, the cell of a recurrent one, its preset settings."""

    config_cls: type[ModelConfig]
    cell: type[Cell] | None = None
    preset: Mapping[str, Any] = dataclasses.field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, config_cls: type[ModelConfig], preset: Mapping[str, Any] | None = None) -> None:
    """Register model ``name`` built by ``config_cls`` (a :class:`ModelConfig`); ``preset`` overrides the
    config's defaults in every experiment's config (parameter-matched sizes)."""
    if name in MODELS:
        raise ValueError(f"model {name!r} is already registered")
    MODELS[name] = ModelSpec(config_cls, preset=dict(preset or {}))


def register_cell(name: str, cell_cls: type[Cell], preset: Mapping[str, Any] | None = None) -> None:
    """Register a recurrent model named ``name`` built from ``cell_cls`` (a :class:`Cell`)."""
    if name in MODELS:
        raise ValueError(f"model {name!r} is already registered")
    CELLS[name] = cell_cls
    MODELS[name] = ModelSpec(RecurrentConfig, cell=cell_cls, preset=dict(preset or {}))


# Presets matched in parameter count (~33K at vocab 10; tests/test_models.py pins the counts).
register_cell("rnn", ElmanCell, preset=dict(hidden_size=128))
register_cell("lstm", LSTMCell, preset=dict(hidden_size=64))
register_cell("gru", GRUCell, preset=dict(hidden_size=74))
register_model("transformer", TransformerConfig, preset=dict(d_model=48, num_layers=1, num_heads=2))


class _Presets(Mapping):
    """``PRESETS[name]``: the preset settings of every registered model (a live view of MODELS)."""

    def __getitem__(self, name):
        return dict(MODELS[name].preset)

    def __iter__(self):
        return iter(MODELS)

    def __len__(self):
        return len(MODELS)


PRESETS: Mapping[str, dict[str, Any]] = _Presets()

_INTERNAL = ("cell", "cell_options")


def _cell_fields(cell_cls: type[Cell]) -> dict[str, Any]:
    skip = {"parent", "name", "hidden_size"}
    return {f.name: f.default for f in dataclasses.fields(cell_cls) if f.name not in skip}


def model_settings(name: str) -> dict[str, Any]:
    """Every setting of model ``name`` with its default (for configs, docs and error messages)."""
    spec = _spec(name)
    settings = {f.name: f.default for f in dataclasses.fields(spec.config_cls) if f.name not in _INTERNAL}
    if spec.cell is not None:
        settings.update(_cell_fields(spec.cell))
    return settings


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"models: unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def make_config(name: str, settings: Mapping[str, Any]) -> ModelConfig:
    """Validate ``settings`` for model ``name`` and return its frozen config dataclass."""
    spec = _spec(name)
    known = model_settings(name)
    for key, value in settings.items():
        check(key in known, f"model.{name}.{key}", f"unknown setting; known: {', '.join(known)}")
        check(
            not (isinstance(value, float) and not math.isfinite(value)),
            f"model.{name}.{key}",
            f"must be finite, got {value}",
        )
    fields = {f.name for f in dataclasses.fields(spec.config_cls)} - set(_INTERNAL)
    main = {k: v for k, v in settings.items() if k in fields}
    if spec.cell is not None:
        options = tuple(sorted((k, v) for k, v in settings.items() if k not in fields))
        main.update(cell=name, cell_options=options)
    try:
        config = spec.config_cls(**main)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model.{name}: {e}") from None
    config.validate(name)
    return config


def make_model(name: str, settings: Mapping[str, Any], *, vocab_size: int, length: int):
    """Build model ``name``: returns ``(module, config)``. ``length`` is the task's sequence length."""
    config = make_config(name, settings)
    config.check_length(name, length)
    return config.build(vocab_size, length), config


def count_params(params) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(params))


@functools.partial(jax.jit, static_argnums=(0, 2))
def init_params(module: nn.Module, key, length: int):
    """Initialise a model's params for [1, length] token inputs (shapes do not depend on the batch).

    Jitted: one compilation costs less CPU than running every initialiser op by op.
    """
    return module.init(key, jnp.zeros((1, length), jnp.int32))["params"]
