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

import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from rvt import profiling
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


def compile_step(module: nn.Module, params, state: State):
    """The batch-1 step compiled once: (executable, compile seconds, XLA's cost of one step)."""
    start = time.perf_counter()
    compiled = make_step(module).lower(params, state, jnp.zeros((1,), jnp.int32)).compile()
    return compiled, time.perf_counter() - start, profiling.analyse(compiled)


def jump_cache(state: dict, position: int, key) -> dict:
    """A KV-cache state as if ``position - 1`` tokens had been stepped: every slot holds the latest
    earlier position that maps to it (ring arithmetic, so it serves full caches and windows), with random
    keys and values (latency does not depend on them); the next step is at index ``position - 1``."""
    index = position - 1
    layers = []
    for layer, layer_key in zip(state["layers"], jax.random.split(key, len(state["layers"])), strict=True):
        slots_S = jnp.arange(layer["pos"].shape[0])
        last_S = index - 1 - jnp.mod(index - 1 - slots_S, slots_S.shape[0])
        k_key, v_key = jax.random.split(layer_key)
        layers.append(
            dict(
                k=jax.random.normal(k_key, layer["k"].shape, layer["k"].dtype),
                v=jax.random.normal(v_key, layer["v"].shape, layer["v"].dtype),
                pos=jnp.where(last_S >= 0, last_S, -1).astype(jnp.int32),
            )
        )
    return dict(layers=tuple(layers), pos=jnp.asarray(index, jnp.int32))


def jump(state: State, position: int, key) -> State:
    """A step-mode state as if ``position - 1`` tokens had been stepped, for timing the next step: a KV
    cache is jumped there (:func:`jump_cache`); a fixed-size state costs the same at every position."""
    return jump_cache(state, position, key) if _is_kv_cache(state) else state


def _is_kv_cache(state: State) -> bool:
    return isinstance(state, dict) and "layers" in state and "pos" in state


def used_state_bytes(state: State, position: int) -> int:
    """Bytes of the filled part of a state after ``position`` tokens: a KV cache counts only the slots
    that hold a position (their keys, values and position entries); a fixed-size carry counts whole."""
    leaves = jax.tree.leaves(state)
    total = sum(x.nbytes for x in leaves)
    if not _is_kv_cache(state):
        return int(total)
    unused = 0
    for layer in state["layers"]:
        slots = layer["pos"].shape[0]
        per_slot = layer["k"].nbytes + layer["v"].nbytes + layer["pos"].nbytes  # keys, values, their positions
        unused += per_slot - per_slot * min(position, slots) // slots
    return int(total - unused)


def timed_steps(step, params, state: State, tokens_N) -> tuple[np.ndarray, State]:
    """Run ``step`` over host tokens one at a time; seconds per step (blocked) and the final state."""
    tokens = [jnp.asarray([t], jnp.int32) for t in tokens_N]
    seconds = np.empty(len(tokens))
    for i, token in enumerate(tokens):
        start = time.perf_counter()
        state, logits = step(params, state, token)
        jax.block_until_ready((state, logits))
        seconds[i] = time.perf_counter() - start
    return seconds, state


def time_at(step, params, state: dict, position: int, repeats: int) -> tuple[np.ndarray, dict]:
    """Time a step at one position ``repeats`` times: a KV cache has its position reset before each call
    (so every call attends over the same context); a fixed-size state is simply stepped on."""
    token = jnp.zeros((1,), jnp.int32)
    seconds = np.empty(repeats)
    for i in range(repeats):
        if _is_kv_cache(state):
            state = dict(state, pos=jnp.asarray(position - 1, jnp.int32))
        jax.block_until_ready(state)
        start = time.perf_counter()
        state, logits = step(params, state, token)
        jax.block_until_ready((state, logits))
        seconds[i] = time.perf_counter() - start
    return seconds, state


@functools.partial(jax.jit, static_argnums=0)
def prefill(module: nn.Module, params, tokens_BxT: Array) -> State:
    """The state after ``tokens_BxT``, from one full-sequence pass (``from_embeddings`` with a state):
    the same state ``T`` calls of ``step`` would leave, at the cost of one forward."""
    state = module.apply({"params": params}, tokens_BxT.shape[0], method="initial_state")
    x_BxTxD = module.apply({"params": params}, tokens_BxT, method="embed")
    return module.apply({"params": params}, x_BxTxD, state, method="from_embeddings")[0]
