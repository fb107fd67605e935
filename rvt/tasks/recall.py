"""Multi-query associative recall (MQAR; Zoology, Arora et al. 2023).

The task attention solves with one lookup and a fixed-width recurrence must compress: store
every key-value pair, then answer queries in an order it cannot predict. Zoology's settings
(length, pairs): (64, 4), (128, 8), (256, 16), (512, 64).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from rvt.tasks.base import Batch, Task, check
from rvt.typing import NO_DISTANCE, PRNGKey

BLANK = 0


@dataclasses.dataclass(frozen=True)
class AssociativeRecall(Task):
    """Key-value pairs, then each key queried once; predict its value at the query.

    Tokens: blank 0, keys 1..num_keys, values num_keys+1..num_keys+num_values. Each example uses
    ``num_pairs`` distinct keys (so every query has one answer) with values drawn with repeats (so
    the value alone does not identify its key). Key i is at position 2i, its value at 2i + 1. Each
    key is then queried once, in random order, at random distinct positions in
    [2 num_pairs, length), blank elsewhere. At a query the target is the value and the distance
    points at the value token, so ``inputs[t - distance] == targets[t]``; the gap to the key is one
    less.
    """

    num_pairs: int = 8
    length: int = 64
    num_keys: int = 16
    num_values: int = 16

    @property
    def vocab_size(self) -> int:
        return 1 + self.num_keys + self.num_values

    @property
    def chance_accuracy(self) -> float:
        return 1.0 / self.num_values  # every query's target is a uniform draw from the values

    @property
    def max_distance(self) -> int:
        # The first value (position 1) queried at the last position.
        return self.length - 2

    def validate(self) -> None:
        pairs = self.num_pairs
        check(pairs >= 1, "task.num_pairs", f"must be >= 1, got {pairs}")
        check(
            self.num_keys >= pairs,
            "task.num_keys",
            f"{self.num_keys} cannot give num_pairs {pairs} distinct keys",
        )
        check(self.num_values >= 2, "task.num_values", f"must be >= 2, got {self.num_values}")
        check(
            self.length >= 3 * pairs,
            "task.length",
            f"{self.length} cannot hold num_pairs {pairs} pairs and their queries (needs >= {3 * pairs})",
        )

    def _sample_one(self, key: PRNGKey) -> Batch:
        pairs = self.num_pairs
        key_k, key_v, key_q = jax.random.split(key, 3)
        keys_P = 1 + jax.random.choice(key_k, self.num_keys, (pairs,), replace=False)
        values_P = jax.random.randint(key_v, (pairs,), self.num_keys + 1, self.vocab_size, dtype=jnp.int32)
        # choice without replacement returns the positions in random order, so pairing key i with
        # query_pos_P[i] queries the keys in a random order.
        query_pos_P = 2 * pairs + jax.random.choice(key_q, self.length - 2 * pairs, (pairs,), replace=False)
        index_P = jnp.arange(pairs, dtype=jnp.int32)
        blank_T = jnp.full((self.length,), BLANK, jnp.int32)
        pairs_T = blank_T.at[2 * index_P].set(keys_P).at[2 * index_P + 1].set(values_P)
        return Batch(
            inputs=pairs_T.at[query_pos_P].set(keys_P),
            targets=blank_T.at[query_pos_P].set(values_P),
            mask=jnp.zeros((self.length,), jnp.float32).at[query_pos_P].set(1.0),
            distance=jnp.full((self.length,), NO_DISTANCE, jnp.int32)
            .at[query_pos_P]
            .set(query_pos_P - (2 * index_P + 1)),
        )
