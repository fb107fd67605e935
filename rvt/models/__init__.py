"""Sequence models: tokens [B, T] -> logits [B, T, V], each with a step mode (contract: rvt.models.base)."""

from rvt.models import linear  # noqa: E402,F401  (registers lru, mingru, minlstm, s6)
from rvt.models.base import ModelConfig
from rvt.models.cells import Cell, ElmanCell, GRUCell, LSTMCell
from rvt.models.recurrent import RecurrentLayer, RecurrentLM
from rvt.models.registry import (
    CELLS,
    MODELS,
    PRESETS,
    ModelSpec,
    RecurrentConfig,
    count_params,
    init_params,
    make_config,
    make_model,
    model_settings,
    register_cell,
    register_model,
)
from rvt.models.stepping import init_state, make_step
from rvt.models.transformer import TransformerConfig, TransformerLM

__all__ = [
    "CELLS",
    "MODELS",
    "PRESETS",
    "Cell",
    "ElmanCell",
    "GRUCell",
    "LSTMCell",
    "ModelConfig",
    "ModelSpec",
    "RecurrentConfig",
    "RecurrentLM",
    "RecurrentLayer",
    "TransformerConfig",
    "TransformerLM",
    "count_params",
    "init_params",
    "init_state",
    "make_config",
    "make_model",
    "make_step",
    "model_settings",
    "register_cell",
    "register_model",
]
