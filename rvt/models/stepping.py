"""Step mode, functionally: ``init_state(module, params, B)`` and a jitted ``step(params, state, token_B)``.

Every registered model implements ``initial_state(batch_size)`` and ``step(state, token_B) -> (state,
logits_BxV)`` as module methods (a fixed-size carry for the recurrent models, a preallocated KV cache
or a ring-buffer window for the Transformer). These wrappers turn them into the pure functions a
streaming loop wants::

    module, _ = rvt.models.make_model("lstm", {}, vocab_size=V, length=T)
    params = rvt.models.init_params(module, key, T)
    step = rvt.models.make_step(module)          # compiled once, reused at every position
    state = rvt.models.init_state(module, params, batch_size=1)
    for token_B in stream:
        state, logits_BxV = step(params, state, token_B)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from rvt.typing import Array

State = Any  # a pytree: per-layer carries, or per-layer KV caches and positions


def _fresh(tree):
    """Copy every leaf: ``initial_state`` may reuse one zeros array for several leaves, and a donated
    argument must not hold the same buffer twice."""
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


def init_state(module: nn.Module, params, batch_size: int = 1) -> State:
    """The state before the first token: zeros carries, or an empty KV cache."""
    return _fresh(module.apply({"params": params}, batch_size, method="initial_state"))


def make_step(module: nn.Module, *, donate: bool = True) -> Callable[[Any, State, Array], tuple[State, Array]]:
    """Jitted ``step(params, state, token_B) -> (state, logits_BxV)``.

    With ``donate`` the state's buffers are updated in place (pass each state once; keep the returned
    one). The position lives in the state, so one compiled step serves every position.
    """

    def step(params, state: State, token_B: Array) -> tuple[State, Array]:
        return module.apply({"params": params}, state, token_B, method="step")

    return jax.jit(step, donate_argnums=1 if donate else ())
