"""An endless token stream whose rule drifts: the online-learning task.

Unlike the tasks in :mod:`rvt.tasks.registry`, a stream has no fixed sequence length: it is read one
segment at a time, each segment exactly once, and the rule that maps inputs to targets changes every
``segments_per_rule`` segments. So it is not a :class:`rvt.tasks.base.Task` (whose ``sample(key, B)``
draws independent sequences) and is not registered there; it returns the same :class:`Batch`.

The rule is a lagged, permuted copy: in regime ``r`` (segment ``i`` is in regime ``i //
segments_per_rule``) the target at stream position t is ``perm_r(x[t - lag_r])``, with ``lag_r``
cycling through ``lags`` and ``perm_r`` a fresh random permutation of the alphabet (identity when
``permute`` is False). Inputs are uniform symbols. A learner must hold the last ``lag`` tokens in
context (an RNN in its state, a Transformer in its window) and re-learn the rule after each change.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from rvt.errors import check_positive_int
from rvt.tasks.base import Batch, check
from rvt.typing import Array, PRNGKey


@dataclasses.dataclass(frozen=True)
class DriftingCopyStream:
    """``num_streams`` parallel independent streams that share one drifting rule."""

    alphabet: int = 8
    segment_length: int = 32
    segments_per_rule: int = 200
    lags: tuple[int, ...] = (3, 6)
    permute: bool = True

    def __post_init__(self):
        self.validate()

    @property
    def vocab_size(self) -> int:
        return self.alphabet

    @property
    def max_distance(self) -> int:
        return max(self.lags)

    def validate(self) -> None:
        check(
            isinstance(self.alphabet, int) and self.alphabet >= 2,
            "task.alphabet",
            f"must be an integer >= 2, got {self.alphabet!r}",
        )
        check_positive_int(self.segment_length, "task.segment_length")
        check_positive_int(self.segments_per_rule, "task.segments_per_rule")
        lags = tuple(self.lags)
        check(
            len(lags) >= 1 and all(isinstance(g, int) and g >= 1 for g in lags),
            "task.lags",
            f"must be one or more positive integers, got {self.lags!r}",
        )
        check(
            max(lags) <= self.segment_length,
            "task.lags",
            f"largest lag {max(lags)} exceeds segment_length {self.segment_length}",
        )

    def regime(self, index: int | Array) -> int | Array:
        """Which rule segment ``index`` follows."""
        return index // self.segments_per_rule

    def lag(self, index: int | Array) -> Array:
        return jnp.asarray(self.lags, jnp.int32)[self.regime(index) % len(self.lags)]

    def permutation(self, key: PRNGKey, index: int | Array) -> Array:
        """The symbol map of segment ``index``'s regime: [alphabet] int32."""
        identity = jnp.arange(self.alphabet, dtype=jnp.int32)
        if not self.permute:
            return identity
        return jax.random.permutation(jax.random.fold_in(key, self.regime(index)), identity)

    def tokens(self, key: PRNGKey, index: int | Array, num_streams: int) -> Array:
        """Inputs of segment ``index``: [num_streams, segment_length], a pure function of (key, index)."""
        shape = (num_streams, self.segment_length)
        return jax.random.randint(jax.random.fold_in(key, index), shape, 0, self.alphabet, dtype=jnp.int32)

    def segment(self, key: PRNGKey, index: int | Array, num_streams: int) -> Batch:
        """Segment ``index`` of the stream (jittable in ``index``); targets may reach into segment i-1."""
        data_key, rule_key = jax.random.split(key)
        length = self.segment_length
        previous = self.tokens(data_key, jnp.maximum(index - 1, 0), num_streams)
        current = self.tokens(data_key, index, num_streams)
        both_Bx2L = jnp.concatenate([previous, current], axis=1)
        lag = self.lag(index)
        source_L = length + jnp.arange(length) - lag
        targets = self.permutation(rule_key, index)[both_Bx2L[:, source_L]]
        # Stream position index * length + t - lag must exist (only the first segment lacks a past).
        valid_L = index * length + jnp.arange(length) - lag >= 0
        mask = jnp.broadcast_to(valid_L, current.shape).astype(jnp.float32)
        distance = jnp.full(current.shape, lag, jnp.int32)
        return Batch(inputs=current, targets=targets.astype(jnp.int32), mask=mask, distance=distance)

    def change_points(self, num_segments: int) -> list[int]:
        """Segments at which a new rule starts (after segment 0)."""
        return list(range(self.segments_per_rule, num_segments, self.segments_per_rule))
