"""The sequence-model contract: what every registered model is, whatever its kind.

A model is a flax linen module built from a frozen config dataclass. Every language model (tanh RNN,
LSTM, GRU, Transformer, the linear recurrences, a user's own) has these methods, with these shapes:

    embed(tokens_BxT)                      -> x_BxTxD           the input embedding (probes differentiate
                                                                 with respect to x)
    from_embeddings(x_BxTxD, state=None)   -> (state, logits_BxTxV)
                                            state None: the start of a sequence; the returned state is the
                                            state after the last position, so running a sequence in chunks
                                            (passing each chunk's state on) equals running it whole
    __call__(tokens_BxT)                   -> logits_BxTxV      training and evaluation
    initial_state(batch_size)              -> state             a pytree: carries, or a KV cache
    step(state, token_B)                   -> (state, logits_BxV)   one token; equals the full sequence
    init_stream(batch_size, window)        -> memory            what an online learner keeps between
    stream(memory, tokens_BxL)             -> (memory, logits_BxLxV) segments of an endless stream

and may expose, for probes, through flax's own mechanisms and no recomputation:

    sown ``intermediates`` (read with :func:`rvt.probes.intermediates`): recurrent layers sow
        ``hidden`` [B, T, H] and per step ``carry`` (the carry a step starts from) and ``xp`` (its
        projected input); cells sow their gates (the LSTM: ``gates`` with i, f, g, o and c)
    recur(carry, xp_BxGH)                  -> carry             the first layer's recurrence alone
    recurrence_bound()                     -> scalar or None    an upper bound on ||dh_t/dh_{t-1}||
                                                                 (tanh RNN: sigma_max(W_hh)); None if none

A config knows the model's cost, next to the model and tested against XLA (tests/test_models.py):

    build(vocab_size, length)            the flax module (length: the task's sequence length)
    num_params(vocab_size)               closed form, equal to the count of the initialised params
    flops_per_token(vocab_size, context) forward FLOPs per token of a length-``context`` sequence (a
                                         multiply-add is 2 FLOPs; a training step costs about 3x)
    state_bytes(context, batch_size)     bytes of the step-mode state after ``context`` tokens
    validate(name)                       raise ConfigError naming ``model.<name>.<field>``

To add a model kind: write the module and a config subclassing :class:`ModelConfig`, then
``rvt.models.register_model("name", MyConfig, preset={...})``. Nothing outside ``rvt/models`` needs to
know its class.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvt.errors import check, check_positive_int

FLOAT_BYTES = 4


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base of every model config: typed settings plus the cost model of what they build."""

    def build(self, vocab_size: int, length: int) -> nn.Module:
        raise NotImplementedError

    def num_params(self, vocab_size: int) -> int:
        raise NotImplementedError

    def flops_per_token(self, vocab_size: int, context: int) -> float:
        raise NotImplementedError

    def state_bytes(self, context: int, batch_size: int = 1) -> int:
        """Bytes of ``initial_state`` for a model built for ``context`` tokens (shape-only, no compute)."""
        module = self.build(2, context)

        def state(key):  # abstract params too: a model's initial_state may read them
            params = module.init(key, jnp.zeros((1, 1), jnp.int32))["params"]
            return module.apply({"params": params}, batch_size, method="initial_state")

        shapes = jax.eval_shape(state, jax.random.key(0))
        return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(shapes))

    def check_length(self, name: str, length: int) -> None:
        """Raise ConfigError if the model cannot take sequences of ``length`` (default: any length)."""

    def validate(self, name: str) -> None:
        """Check the integer widths every config shares; subclasses add their own rules."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type in ("int", int) and field.name in POSITIVE_FIELDS:
                check_positive_int(value, f"model.{name}.{field.name}")
            elif field.type in ("int", int):
                check(
                    isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                    f"model.{name}.{field.name}",
                    f"must be an integer >= 0, got {value!r}",
                )


# Integer settings that must be > 0 (every other integer setting must be >= 0).
POSITIVE_FIELDS = frozenset(
    {"hidden_size", "num_layers", "d_model", "num_heads", "mlp_ratio", "unroll", "state_size", "expand", "conv_width"}
)


def dense_flops(fan_in: int, fan_out: int) -> float:
    """A dense layer applied to one token: a multiply and an add per weight."""
    return 2.0 * fan_in * fan_out


def zeros_like_tree(tree: Any) -> Any:
    return jax.tree.map(jnp.zeros_like, tree)
