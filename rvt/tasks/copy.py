"""Copy tasks: recall symbols seen a known number of steps ago.

Three variants, each isolating a different difficulty:

* :class:`CopyMemory` -- Arjovsky, Shah & Bengio (2016): one fixed delay, every position scored,
  so the loss can be compared with the published memoryless baseline.
* :class:`VariableCopy` -- the same with the delay drawn per example and only the recalls scored,
  so one run measures accuracy against dependency distance.
* :class:`SelectiveCopy` -- Gu & Dao (2023, Mamba): data tokens scattered among noise, so the
  model must decide what to store, not only how long to keep it.

Token 0 is always the blank (or noise) token.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from rvt.tasks.base import Batch, Task, check
from rvt.typing import NO_DISTANCE, PRNGKey

BLANK = 0


@dataclasses.dataclass(frozen=True)
class CopyMemory(Task):
    """The copying memory problem of Arjovsky, Shah & Bengio (2016), exactly as published.

    Tokens: blank 0, symbols 1..alphabet, marker alphabet + 1. Input: ``num_symbols`` symbols,
    then ``delay - 1`` blanks, the marker, ``num_symbols`` blanks. Target: ``delay + num_symbols``
    blanks, then the symbols. Every position is scored (mask all ones) as in the paper, which is
    what makes :meth:`memoryless_baseline` the loss of a model that remembers nothing. Every copied
    symbol has distance ``delay + num_symbols``.
    """

    delay: int = 100
    num_symbols: int = 10
    alphabet: int = 8

    @property
    def vocab_size(self) -> int:
        return self.alphabet + 2

    @property
    def chance_accuracy(self) -> float:
        # Every position is scored: blanks are free, the num_symbols copied symbols are 1/alphabet each.
        return 1.0 - self.num_symbols * (1.0 - 1.0 / self.alphabet) / self.length

    @property
    def length(self) -> int:
        return self.delay + 2 * self.num_symbols

    @property
    def max_distance(self) -> int:
        return self.delay + self.num_symbols

    @property
    def marker(self) -> int:
        return self.alphabet + 1

    def memoryless_baseline(self) -> float:
        """Cross-entropy per position (nats) of a model that outputs blanks, then uniform guesses.

        Blanks cost nothing; each of the ``num_symbols`` recalls costs ln(alphabet). Arjovsky et al. (2016):
        10 ln 8 / 120 = 0.173 at delay 100. A model that has not learnt to remember sits here.
        """
        return self.num_symbols * math.log(self.alphabet) / self.length

    def validate(self) -> None:
        check(self.delay >= 1, "task.delay", f"must be >= 1, got {self.delay}")
        check(self.num_symbols >= 1, "task.num_symbols", f"must be >= 1, got {self.num_symbols}")
        check(
            self.alphabet >= 2,
            "task.alphabet",
            f"must be >= 2 (one symbol needs no memory), got {self.alphabet}",
        )

    def _sample_one(self, key: PRNGKey) -> Batch:
        num, recall_start = self.num_symbols, self.delay + self.num_symbols
        symbols_K = jax.random.randint(key, (num,), 1, self.alphabet + 1, dtype=jnp.int32)
        blank_T = jnp.full((self.length,), BLANK, jnp.int32)
        inputs_T = blank_T.at[:num].set(symbols_K).at[recall_start - 1].set(self.marker)
        return Batch(
            inputs=inputs_T,
            targets=blank_T.at[recall_start:].set(symbols_K),
            mask=jnp.ones((self.length,), jnp.float32),
            distance=jnp.full((self.length,), NO_DISTANCE, jnp.int32).at[recall_start:].set(recall_start),
        )


@dataclasses.dataclass(frozen=True)
class VariableCopy(Task):
    """Variable-delay copy: the Arjovsky task with the single marker replaced by one cue per symbol.

    Tokens: blank 0, symbols 1..A with A = vocab_size - 1 - num_symbols, cues A+1..A+num_symbols.
    Each example draws one delay D uniformly from [min_distance, max_distance]; symbol i sits at
    position i and its cue at i + D, where the target is symbol i. Because each cue names *which*
    symbol to recall, no counting or ordering is needed at recall time: the task isolates holding
    information over distance D, and one run covers every distance in the range. Only cue positions
    are scored, each labelled with distance D.

    ``length=0`` (the default) means the smallest that fits, max_distance + num_symbols; the
    resolved value is stored, so ``dataclasses.replace(task, max_distance=...)`` needs ``length=0``
    again to re-fit.

    ``distractors=True`` fills every other position with random symbols from the same alphabet
    (Bengio et al. 1994's latching problem): holding a symbol then means protecting it against D
    later inputs, not merely carrying it through blanks, so memory must be gated, and a model that
    reads by position (attention) is unaffected.

    ``sampling="log_uniform"`` draws D with equal probability per octave (1-2, 2-4, ..., 128-256)
    instead of per integer, so short dependencies -- where a recurrent model can learn the mechanism
    at all -- are as common as long ones, and accuracy can fall off with distance rather than never
    rise.
    """

    min_distance: int = 1
    max_distance: int = 200
    num_symbols: int = 1
    vocab_size: int = 10
    length: int = 0
    distractors: bool = False
    sampling: str = "uniform"  # or "log_uniform"

    def __post_init__(self):
        # Resolve "smallest that fits" here so `length` is always the true T that batches have.
        if self.length == 0:
            object.__setattr__(self, "length", self.max_distance + self.num_symbols)
        super().__post_init__()

    @property
    def alphabet(self) -> int:
        return self.vocab_size - 1 - self.num_symbols

    @property
    def chance_accuracy(self) -> float:
        return 1.0 / self.alphabet  # every scored target is a uniform draw from the alphabet

    def validate(self) -> None:
        num = self.num_symbols
        check(num >= 1, "task.num_symbols", f"must be >= 1, got {num}")
        check(
            self.min_distance >= num,
            "task.min_distance",
            f"{self.min_distance} would put cue 0 among the symbols; needs >= num_symbols {num}",
        )
        check(
            self.max_distance >= self.min_distance,
            "task.max_distance",
            f"{self.max_distance} is below min_distance {self.min_distance}",
        )
        check(
            self.alphabet >= 2,
            "task.vocab_size",
            f"{self.vocab_size} leaves {self.alphabet} symbols after the blank and {num} cues; "
            f"needs >= {num + 3} (2 symbols + blank + num_symbols cues)",
        )
        check(
            self.sampling in ("uniform", "log_uniform"),
            "task.sampling",
            f"must be 'uniform' or 'log_uniform', got {self.sampling!r}",
        )
        needed = self.max_distance + num
        check(
            self.length >= needed,
            "task.length",
            f"{self.length} cannot hold max_distance {self.max_distance} + num_symbols {num} (needs >= {needed})",
        )

    def _sample_one(self, key: PRNGKey) -> Batch:
        key_d, key_s, key_n = jax.random.split(key, 3)
        if self.sampling == "log_uniform":
            log_d = jax.random.uniform(
                key_d, (), minval=jnp.log(self.min_distance), maxval=jnp.log(self.max_distance + 1)
            )
            delay = jnp.clip(jnp.floor(jnp.exp(log_d)), self.min_distance, self.max_distance).astype(jnp.int32)
        else:
            delay = jax.random.randint(key_d, (), self.min_distance, self.max_distance + 1, dtype=jnp.int32)
        symbols_K = jax.random.randint(key_s, (self.num_symbols,), 1, self.alphabet + 1, dtype=jnp.int32)
        index_K = jnp.arange(self.num_symbols, dtype=jnp.int32)
        cue_pos_K = index_K + delay  # < length by validate; >= num_symbols, so no overlap
        cues_K = self.alphabet + 1 + index_K
        blank_T = jnp.full((self.length,), BLANK, jnp.int32)
        filler_T = blank_T
        if self.distractors:
            filler_T = jax.random.randint(key_n, (self.length,), 1, self.alphabet + 1, dtype=jnp.int32)
        return Batch(
            inputs=filler_T.at[index_K].set(symbols_K).at[cue_pos_K].set(cues_K),
            targets=blank_T.at[cue_pos_K].set(symbols_K),
            mask=jnp.zeros((self.length,), jnp.float32).at[cue_pos_K].set(1.0),
            distance=jnp.full((self.length,), NO_DISTANCE, jnp.int32).at[cue_pos_K].set(delay),
        )


@dataclasses.dataclass(frozen=True)
class SelectiveCopy(Task):
    """Selective copying of Gu & Dao (2023, Mamba): recall scattered data tokens, in order.

    Tokens: noise 0, data 1..alphabet, marker alphabet + 1. ``num_data`` data tokens sit at random
    distinct positions among the first ``context`` (noise elsewhere), then ``num_data`` markers; at
    the j-th marker the target is the j-th data token. Unlike the fixed-gap copy, where to look is
    content-dependent, which is what time-invariant recurrences (S4) fail at. Mamba's setting:
    context 4096, num_data 16, vocab 16 (alphabet 14).
    """

    context: int = 64
    num_data: int = 4
    alphabet: int = 8

    @property
    def vocab_size(self) -> int:
        return self.alphabet + 2

    @property
    def chance_accuracy(self) -> float:
        return 1.0 / self.alphabet  # every scored target is a uniform draw from the alphabet

    @property
    def length(self) -> int:
        return self.context + self.num_data

    @property
    def max_distance(self) -> int:
        # Data token j sits at position >= j (positions are distinct and sorted), so its distance
        # context + j - position is at most context, reached when the first j+1 slots hold data.
        return self.context

    @property
    def marker(self) -> int:
        return self.alphabet + 1

    def validate(self) -> None:
        check(self.num_data >= 1, "task.num_data", f"must be >= 1, got {self.num_data}")
        check(
            self.context >= self.num_data,
            "task.context",
            f"{self.context} cannot hold num_data {self.num_data} distinct data positions",
        )
        check(self.alphabet >= 2, "task.alphabet", f"must be >= 2, got {self.alphabet}")

    def _sample_one(self, key: PRNGKey) -> Batch:
        key_p, key_d = jax.random.split(key)
        data_pos_K = jnp.sort(jax.random.choice(key_p, self.context, (self.num_data,), replace=False)).astype(jnp.int32)
        data_K = jax.random.randint(key_d, (self.num_data,), 1, self.alphabet + 1, dtype=jnp.int32)
        recall_pos_K = self.context + jnp.arange(self.num_data, dtype=jnp.int32)
        blank_T = jnp.full((self.length,), BLANK, jnp.int32)
        return Batch(
            inputs=blank_T.at[data_pos_K].set(data_K).at[self.context :].set(self.marker),
            targets=blank_T.at[self.context :].set(data_K),
            mask=jnp.zeros((self.length,), jnp.float32).at[self.context :].set(1.0),
            distance=jnp.full((self.length,), NO_DISTANCE, jnp.int32).at[self.context :].set(recall_pos_K - data_pos_K),
        )
