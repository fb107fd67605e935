"""Encoder-decoder models for source -> target tasks: the information bottleneck, three ways.

Every model maps ``(src_BxS, tgt_in_BxT) -> logits_BxTxV`` (teacher forcing) and splits into
``encode`` and ``decode`` so tests and probes can see exactly what the decoder receives:

* ``final_state`` (:class:`FinalStateSeq2Seq`, Sutskever et al. 2014 / Cho et al. 2014 "RNNencdec"):
  an RNN encoder; the decoder RNN starts from the encoder's final carry and sees nothing else of the
  source. Everything about the source must pass through that fixed-size carry.
* ``attention`` (:class:`AttentionSeq2Seq`, Luong et al. 2015 global attention, "general" score): the
  same encoder and decoder, and at every decoder step a softmax over *all* encoder states, written for
  one decoder step of one example (:func:`luong_step`) and vmapped over steps and batch.
* ``transformer`` (:class:`TransformerSeq2Seq`, Vaswani et al. 2017): a bidirectional encoder of
  :class:`rvt.models.transformer.Block` and a causal decoder with cross-attention.

Cells come from :mod:`rvt.models.cells` through :class:`RecurrentLayer` (nothing re-implemented); any
registered recurrent model name ("lstm", "gru", "rnn", ...) is a valid ``cell``. These models have a
different call signature from the decoder-only :data:`rvt.models.MODELS`, so they have their own
registry, :data:`SEQ2SEQ_MODELS`, resolved by :func:`make_seq2seq`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvt.errors import ConfigError, check, check_positive_int
from rvt.models.attention import ATTENTION
from rvt.models.recurrent import RecurrentLayer
from rvt.models.registry import CELLS, count_params
from rvt.models.transformer import Block, SelfAttention, sinusoidal
from rvt.typing import Array

# ---------------------------------------------------------------------------------------- RNN models


def luong_step(h_H: Array, states_SxH: Array, w_HxH: Array) -> tuple[Array, Array]:
    """One decoder step of one example: score_s = h^T W s_s, weights = softmax(score), context."""
    scores_S = states_SxH @ (h_H @ w_HxH)
    weights_S = jax.nn.softmax(scores_S)
    return weights_S @ states_SxH, weights_S


# Lifted over decoder steps (the encoder states are shared), then over the batch.
_luong_BxT = jax.vmap(jax.vmap(luong_step, in_axes=(0, None, None)), in_axes=(0, 0, None))


class FinalStateSeq2Seq(nn.Module):
    """RNN encoder-decoder whose decoder is initialised with ONLY the encoder's final carry."""

    vocab_size: int
    cell: type  # a rvt.models.cells.Cell subclass
    hidden_size: int
    embed_dim: int
    cell_options: tuple[tuple[str, Any], ...] = ()

    def setup(self):
        self.embedding = nn.Embed(self.vocab_size, self.embed_dim)  # shared by source and target
        self.encoder_cell = self.cell(hidden_size=self.hidden_size, **dict(self.cell_options))
        self.decoder_cell = self.cell(hidden_size=self.hidden_size, **dict(self.cell_options))
        self.encoder = RecurrentLayer(self.encoder_cell)
        self.decoder = RecurrentLayer(self.decoder_cell)
        self.head = nn.Dense(self.vocab_size)

    def encode(self, src_BxS: Array) -> tuple[Any, Array]:
        """(final carry, every encoder state [B, S, H])."""
        return self.encoder(self.embedding(src_BxS))

    def decoder_states(self, carry, tgt_in_BxT: Array) -> Array:
        return self.decoder(self.embedding(tgt_in_BxT), carry)[1]

    def decode(self, carry, tgt_in_BxT: Array) -> Array:
        """Logits from the final carry and the decoder inputs alone: the bottleneck, by signature."""
        return self.head(self.decoder_states(carry, tgt_in_BxT))

    def __call__(self, src_BxS: Array, tgt_in_BxT: Array) -> Array:
        carry, _ = self.encode(src_BxS)
        return self.decode(carry, tgt_in_BxT)


class AttentionSeq2Seq(nn.Module):
    """The same encoder-decoder plus Luong global attention over all encoder states at every step.

    Luong's "global attention" without input feeding: the decoder RNN runs as in the final-state model,
    then step t attends from its state h_t to every encoder state, and the output layer reads
    tanh(W_c [context_t; h_t]). Without input feeding the attention needs no sequential loop.
    """

    vocab_size: int
    cell: type
    hidden_size: int
    embed_dim: int
    cell_options: tuple[tuple[str, Any], ...] = ()

    def setup(self):
        self.embedding = nn.Embed(self.vocab_size, self.embed_dim)
        self.encoder_cell = self.cell(hidden_size=self.hidden_size, **dict(self.cell_options))
        self.decoder_cell = self.cell(hidden_size=self.hidden_size, **dict(self.cell_options))
        self.encoder = RecurrentLayer(self.encoder_cell)
        self.decoder = RecurrentLayer(self.decoder_cell)
        self.score = self.param("score", nn.initializers.lecun_normal(), (self.hidden_size, self.hidden_size))
        self.combine = nn.Dense(self.hidden_size)
        self.head = nn.Dense(self.vocab_size)

    def encode(self, src_BxS: Array) -> tuple[Any, Array]:
        return self.encoder(self.embedding(src_BxS))

    def attend(self, src_BxS: Array, tgt_in_BxT: Array) -> tuple[Array, Array, Array]:
        """(decoder states [B,T,H], contexts [B,T,H], attention weights [B,T,S])."""
        carry, states_BxSxH = self.encode(src_BxS)
        _, h_BxTxH = self.decoder(self.embedding(tgt_in_BxT), carry)
        context_BxTxH, weights_BxTxS = _luong_BxT(h_BxTxH, states_BxSxH, self.score)
        return h_BxTxH, context_BxTxH, weights_BxTxS

    def attention_weights(self, src_BxS: Array, tgt_in_BxT: Array) -> Array:
        return self.attend(src_BxS, tgt_in_BxT)[2]

    def __call__(self, src_BxS: Array, tgt_in_BxT: Array) -> Array:
        h_BxTxH, context_BxTxH, _ = self.attend(src_BxS, tgt_in_BxT)
        attentional_BxTxH = jnp.tanh(self.combine(jnp.concatenate([context_BxTxH, h_BxTxH], axis=-1)))
        return self.head(attentional_BxTxH)


# ------------------------------------------------------------------------------------- Transformer


class CrossAttention(nn.Module):
    """Multi-head attention from decoder positions to every encoder position (no mask needed)."""

    num_heads: int
    head_dim: int
    d_model: int
    attention: str = "vmapped"

    def setup(self):
        self.q = nn.DenseGeneral((self.num_heads, self.head_dim), name="q")
        self.kv = nn.DenseGeneral((2, self.num_heads, self.head_dim), name="kv")
        self.out = nn.DenseGeneral(self.d_model, axis=(-2, -1), name="out")

    def __call__(self, x_BxTxD: Array, memory_BxSxD: Array) -> Array:
        kv = self.kv(memory_BxSxD)
        batch, num_q, num_k = x_BxTxD.shape[0], x_BxTxD.shape[1], memory_BxSxD.shape[1]
        mask_BxTxS = jnp.ones((batch, num_q, num_k), bool)
        return self.out(ATTENTION[self.attention](self.q(x_BxTxD), kv[:, :, 0], kv[:, :, 1], mask_BxTxS))


class DecoderBlock(nn.Module):
    """Pre-LN: x + causal self-attn(LN x), x + cross-attn(LN x, memory), x + MLP(LN x)."""

    num_heads: int
    d_model: int
    mlp_ratio: int = 4
    attention: str = "vmapped"

    def setup(self):
        head_dim = self.d_model // self.num_heads
        self.ln_self = nn.LayerNorm()
        self.self_attn = SelfAttention(self.num_heads, head_dim, self.d_model, self.attention)
        self.ln_cross = nn.LayerNorm()
        self.cross_attn = CrossAttention(self.num_heads, head_dim, self.d_model, self.attention)
        self.ln_mlp = nn.LayerNorm()
        self.mlp_in = nn.Dense(self.mlp_ratio * self.d_model)
        self.mlp_out = nn.Dense(self.d_model)

    def __call__(self, x_BxTxD, memory_BxSxD, positions_T):
        x_BxTxD = x_BxTxD + self.self_attn(self.ln_self(x_BxTxD), positions_T)[1]  # causal
        x_BxTxD = x_BxTxD + self.cross_attn(self.ln_cross(x_BxTxD), memory_BxSxD)
        return x_BxTxD + self.mlp_out(nn.gelu(self.mlp_in(self.ln_mlp(x_BxTxD))))


class TransformerSeq2Seq(nn.Module):
    """Bidirectional encoder (Blocks, full mask), causal decoder with cross-attention; sinusoids."""

    vocab_size: int
    d_model: int = 32
    num_layers: int = 1
    num_heads: int = 2
    mlp_ratio: int = 4
    attention: str = "vmapped"

    def setup(self):
        self.embedding = nn.Embed(self.vocab_size, self.d_model)
        self.encoder = [
            Block(self.num_heads, self.d_model, self.mlp_ratio, self.attention, causal=False)
            for _ in range(self.num_layers)
        ]
        self.ln_encoder = nn.LayerNorm()
        self.decoder = [
            DecoderBlock(self.num_heads, self.d_model, self.mlp_ratio, self.attention) for _ in range(self.num_layers)
        ]
        self.ln_decoder = nn.LayerNorm()
        self.head = nn.Dense(self.vocab_size)

    def _embed(self, tokens_BxT: Array) -> tuple[Array, Array]:
        positions_T = jnp.arange(tokens_BxT.shape[1])
        return self.embedding(tokens_BxT) + sinusoidal(positions_T, self.d_model)[None], positions_T

    def encode(self, src_BxS: Array) -> Array:
        x_BxSxD, positions_S = self._embed(src_BxS)
        for block in self.encoder:  # bidirectional: every source position sees every other
            x_BxSxD = block(x_BxSxD, positions_S)[1]
        return self.ln_encoder(x_BxSxD)

    def decode(self, memory_BxSxD: Array, tgt_in_BxT: Array) -> Array:
        x_BxTxD, positions_T = self._embed(tgt_in_BxT)
        for block in self.decoder:
            x_BxTxD = block(x_BxTxD, memory_BxSxD, positions_T)
        return self.head(self.ln_decoder(x_BxTxD))

    def __call__(self, src_BxS: Array, tgt_in_BxT: Array) -> Array:
        return self.decode(self.encode(src_BxS), tgt_in_BxT)


# ---------------------------------------------------------------------------------------- registry


@dataclasses.dataclass(frozen=True)
class RNNSeq2SeqConfig:
    """Encoder and decoder: one ``cell`` layer each of ``hidden_size``; embedding ``embed_dim``."""

    cell: str = "lstm"  # any registered recurrent model name: lstm, gru, rnn, ...
    hidden_size: int = 32
    embed_dim: int = 0  # 0: same as hidden_size
    width_field: ClassVar[str] = "hidden_size"  # what the study's hidden-size sweep sets


@dataclasses.dataclass(frozen=True)
class TransformerSeq2SeqConfig:
    d_model: int = 32
    num_layers: int = 1  # encoder layers, and as many decoder layers
    num_heads: int = 2
    mlp_ratio: int = 4
    attention: str = "vmapped"  # "vmapped" or "fused" (rvt.models.attention.ATTENTION)
    width_field: ClassVar[str] = "d_model"


def _rnn_builder(module_cls):
    def build(config: RNNSeq2SeqConfig, vocab_size: int, length: int) -> nn.Module:
        del length
        return module_cls(
            vocab_size=vocab_size,
            cell=CELLS[config.cell],
            hidden_size=config.hidden_size,
            embed_dim=config.embed_dim or config.hidden_size,
        )

    return build


def _build_transformer(config: TransformerSeq2SeqConfig, vocab_size: int, length: int) -> nn.Module:
    del length
    return TransformerSeq2Seq(vocab_size=vocab_size, **dataclasses.asdict(config))


@dataclasses.dataclass(frozen=True)
class Seq2SeqSpec:
    config_cls: type
    build: Any  # (config, vocab_size, length) -> module


SEQ2SEQ_MODELS: dict[str, Seq2SeqSpec] = {
    "final_state": Seq2SeqSpec(RNNSeq2SeqConfig, _rnn_builder(FinalStateSeq2Seq)),
    "attention": Seq2SeqSpec(RNNSeq2SeqConfig, _rnn_builder(AttentionSeq2Seq)),
    "transformer": Seq2SeqSpec(TransformerSeq2SeqConfig, _build_transformer),
}


def seq2seq_settings(name: str) -> dict[str, Any]:
    """Every setting of seq2seq model ``name`` with its default."""
    return {f.name: f.default for f in dataclasses.fields(_spec(name).config_cls)}


def _spec(name: str) -> Seq2SeqSpec:
    if name not in SEQ2SEQ_MODELS:
        raise ConfigError(f"models: unknown model {name!r}; known: {', '.join(sorted(SEQ2SEQ_MODELS))}")
    return SEQ2SEQ_MODELS[name]


def _validate(name: str, config) -> None:
    for field in ("hidden_size", "d_model", "num_layers", "num_heads", "mlp_ratio"):
        if hasattr(config, field):
            check_positive_int(getattr(config, field), f"model.{name}.{field}")
    if isinstance(config, RNNSeq2SeqConfig):
        cells = sorted(CELLS)
        check(config.cell in cells, f"model.{name}.cell", f"unknown cell {config.cell!r}; known: {', '.join(cells)}")
        check(
            isinstance(config.embed_dim, int) and config.embed_dim >= 0,
            f"model.{name}.embed_dim",
            f"must be >= 0, got {config.embed_dim!r}",
        )
    else:
        check(config.attention in ATTENTION, f"model.{name}.attention", f"must be one of {tuple(ATTENTION)}")
        check(
            config.d_model % config.num_heads == 0,
            f"model.{name}.num_heads",
            f"{config.num_heads} does not divide d_model {config.d_model}",
        )


def make_seq2seq(name: str, settings: Mapping[str, Any], *, vocab_size: int):
    """Validate ``settings`` and build seq2seq model ``name``: returns ``(module, config)``."""
    spec = _spec(name)
    known = seq2seq_settings(name)
    for key in settings:
        check(key in known, f"model.{name}.{key}", f"unknown setting; known: {', '.join(known)}")
    config = spec.config_cls(**settings)
    _validate(name, config)
    return spec.build(config, vocab_size, 0), config


def init_seq2seq(module: nn.Module, key, src_len: int, tgt_len: int):
    """Params for [1, src_len] sources and [1, tgt_len] decoder inputs (shapes do not depend on B)."""
    src = jnp.zeros((1, src_len), jnp.int32)
    return module.init(key, src, jnp.zeros((1, tgt_len), jnp.int32))["params"]


__all__ = [
    "SEQ2SEQ_MODELS",
    "AttentionSeq2Seq",
    "FinalStateSeq2Seq",
    "TransformerSeq2Seq",
    "count_params",
    "init_seq2seq",
    "luong_step",
    "make_seq2seq",
    "seq2seq_settings",
]
