"""Benchmark tasks from published tables: induction heads (Gu and Dao 2023, Mamba, Table 2) and the
Chomsky-hierarchy string tasks (Deletang et al. 2023, "Neural Networks and the Chomsky Hierarchy").

Both are written as next-token tasks for a causal model, like every task here (``Batch``: inputs,
targets, mask, distance, all [T]).

Chomsky tasks, as in Deletang et al.: the input string is followed by |y| query tokens, and the outputs
are read at those positions (no output is fed back in). Their protocol draws one length per batch; here
each *example* draws its length l ~ U(min_length, max_length) and is padded at the end to the longest
example's size, so one compiled program serves every length. A causal model never sees the padding
(it comes after the last scored position), so for it this equals an unpadded string of length l.
Their Transformer is a non-causal encoder reading the query positions; ours is causal.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from rvt.tasks.base import Batch, Task, check
from rvt.typing import NO_DISTANCE, PRNGKey

PAD, QUERY, FIRST = 0, 1, 2  # Chomsky tasks: tokens 2.. are symbols (inputs and outputs share them)
RULES = ("parity", "even_pairs", "cycle_navigation", "modular_arithmetic", "reverse_string", "duplicate_string")
CYCLE = 5  # cycle navigation: positions on a 5-cycle
MODULUS = 5  # modular arithmetic: digits 0..4, results mod 5
PLUS, MINUS, TIMES = 5, 6, 7  # modular arithmetic: operator symbols after the digits 0..4


@dataclasses.dataclass(frozen=True)
class InductionHeads(Task):
    """A trigger token appears once at a random position, followed by some token x; the sequence ends
    with the trigger again, and the target there is x (Olsson et al. 2022; Mamba's Table 2 setting:
    vocabulary 16, train at 256, test at longer lengths). Token 0 is never used (it is the blank of every
    task here), 1..alphabet are random fillers (never the trigger), ``alphabet + 1`` is the trigger: the
    default vocabulary is Mamba's 16. Only the last position is scored; its distance points at x."""

    length: int = 64
    alphabet: int = 14

    @property
    def vocab_size(self) -> int:
        return self.alphabet + 2

    @property
    def chance_accuracy(self) -> float:
        return 1.0 / self.alphabet

    @property
    def max_distance(self) -> int:
        return self.length - 2

    def validate(self) -> None:
        check(self.length >= 4, "task.length", f"must be >= 4, got {self.length}")
        check(self.alphabet >= 2, "task.alphabet", f"must be >= 2, got {self.alphabet}")

    def _sample_one(self, key: PRNGKey) -> Batch:
        key_t, key_p = jax.random.split(key)
        tokens_T = jax.random.randint(key_t, (self.length,), 1, self.alphabet + 1, dtype=jnp.int32)
        trigger = jax.random.randint(key_p, (), 0, self.length - 3, dtype=jnp.int32)  # x at trigger + 1 < T - 1
        last = self.length - 1
        trigger_token = self.alphabet + 1
        inputs_T = tokens_T.at[trigger].set(trigger_token).at[last].set(trigger_token)
        answer = inputs_T[trigger + 1]
        zeros_T = jnp.zeros((self.length,), jnp.int32)
        return Batch(
            inputs=inputs_T,
            targets=zeros_T.at[last].set(answer),
            mask=jnp.zeros((self.length,), jnp.float32).at[last].set(1.0),
            distance=jnp.full((self.length,), NO_DISTANCE, jnp.int32).at[last].set(last - (trigger + 1)),
        )


@dataclasses.dataclass(frozen=True)
class ChomskyTask(Task):
    """One of Deletang et al.'s tasks (``rule``, see RULES) on strings of length min_length..max_length.

    parity             binary; output the number of 1s mod 2                      (regular)
    even_pairs         binary; output whether the first and last symbol agree     (regular: the count of
                       "01" and "10" substrings is even exactly then)
    cycle_navigation   symbols 0/1/2 = step -1/0/+1 on a 5-cycle from 0; output the final position (regular)
    modular_arithmetic digits 0..4 alternating with + - x (x binds tighter), evaluated mod 5; a string of
                       length l holds (l + 1) // 2 digits (odd lengths only)             (regular)
    reverse_string     binary; output the string reversed                        (deterministic context-free)
    duplicate_string   binary; output the string twice                           (context-sensitive)
    """

    rule: str = "parity"
    min_length: int = 1
    max_length: int = 40

    @property
    def output_length(self) -> int:
        """|y| for the longest string."""
        return {"reverse_string": self.max_length, "duplicate_string": 2 * self.max_length}.get(self.rule, 1)

    @property
    def length(self) -> int:
        return self.max_length + self.output_length

    @property
    def num_symbols(self) -> int:
        return {"cycle_navigation": CYCLE, "modular_arithmetic": 8}.get(self.rule, 2)

    @property
    def vocab_size(self) -> int:
        return FIRST + self.num_symbols

    @property
    def max_distance(self) -> int:
        """reverse: output j reads s[n-1-j], 2j+1 back; duplicate: s again, n or 2n back; the other rules
        depend on every symbol, so no single distance (0)."""
        return {"reverse_string": 2 * self.max_length - 1, "duplicate_string": 2 * self.max_length}.get(self.rule, 0)

    @property
    def chance_accuracy(self) -> float:
        return 1.0 / {"cycle_navigation": CYCLE, "modular_arithmetic": MODULUS}.get(self.rule, 2)

    def validate(self) -> None:
        check(self.rule in RULES, "task.rule", f"must be one of {', '.join(RULES)}, got {self.rule!r}")
        check(self.min_length >= 1, "task.min_length", f"must be >= 1, got {self.min_length}")
        check(
            self.max_length >= self.min_length,
            "task.max_length",
            f"{self.max_length} is below min_length {self.min_length}",
        )

    def _string(self, key: PRNGKey, n: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Symbols [max_length] (valid up to n) and their length n (odd for modular arithmetic)."""
        size = self.max_length
        if self.rule == "modular_arithmetic":
            key_d, key_o = jax.random.split(key)
            digits = jax.random.randint(key_d, (size,), 0, MODULUS, dtype=jnp.int32)
            ops = jax.random.randint(key_o, (size,), PLUS, TIMES + 1, dtype=jnp.int32)
            symbols = jnp.where(jnp.arange(size) % 2 == 0, digits, ops)
            return symbols, n - (1 - n % 2)  # an even length drops its trailing operator
        high = 3 if self.rule == "cycle_navigation" else 2
        return jax.random.randint(key, (size,), 0, high, dtype=jnp.int32), n

    def _answer(self, symbols: jax.Array, n: jax.Array) -> jax.Array:
        """The output symbols [output_length] (only the first |y(n)| are scored)."""
        valid = jnp.arange(self.max_length) < n
        if self.rule == "parity":
            return jnp.sum(jnp.where(valid, symbols, 0))[None] % 2
        if self.rule == "even_pairs":
            return (symbols[0] == symbols[n - 1]).astype(jnp.int32)[None]
        if self.rule == "cycle_navigation":
            return (jnp.sum(jnp.where(valid, symbols - 1, 0)) % CYCLE)[None]
        if self.rule == "modular_arithmetic":
            return self._evaluate(symbols, n)[None]
        index = jnp.arange(self.output_length)
        if self.rule == "reverse_string":
            return symbols[jnp.clip(n - 1 - index, 0, self.max_length - 1)]
        return symbols[index % jnp.maximum(n, 1)]  # duplicate_string

    def _evaluate(self, symbols: jax.Array, n: jax.Array) -> jax.Array:
        """d0 o1 d1 o2 d2 ... mod 5, x before + and -: a running (total, term) over (operator, digit) pairs."""
        pairs = (symbols.shape[0] - 1) // 2
        ops, digits = symbols[1 : 1 + 2 * pairs : 2], symbols[2 : 2 + 2 * pairs : 2]

        def step(carry, pair):
            total, term = carry
            (op, digit), live = pair
            term_next = jnp.where(op == TIMES, term * digit, jnp.where(op == PLUS, digit, -digit))
            total_next = jnp.where(op == TIMES, total, total + term)
            return (jnp.where(live, total_next, total) % MODULUS, jnp.where(live, term_next, term) % MODULUS), None

        live = 2 * jnp.arange(ops.shape[0]) + 2 < n
        (total, term), _ = jax.lax.scan(step, (jnp.int32(0), symbols[0]), ((ops, digits), live))
        return (total + term) % MODULUS

    def _sample_one(self, key: PRNGKey) -> Batch:
        key_n, key_s = jax.random.split(key)
        n = jax.random.randint(key_n, (), self.min_length, self.max_length + 1, dtype=jnp.int32)
        symbols, n = self._string(key_s, n)
        answer = self._answer(symbols, n)
        outputs = {"reverse_string": n, "duplicate_string": 2 * n}.get(self.rule, jnp.int32(1))
        t = jnp.arange(self.length)
        is_input, is_output = t < n, (t >= n) & (t < n + outputs)
        padded = jnp.concatenate([symbols, jnp.zeros(self.output_length, jnp.int32)])
        answer_T = jnp.concatenate([answer, jnp.zeros(self.length - answer.shape[0], jnp.int32)])
        out_T = answer_T[jnp.clip(t - n, 0, self.length - 1)]
        if self.rule == "reverse_string":
            distance = 2 * (t - n) + 1  # output j = s[n-1-j], read at n + j
        elif self.rule == "duplicate_string":
            distance = jnp.where(t - n < n, n, 2 * n)  # output j = s[j mod n], read at n + j
        else:
            distance = jnp.full_like(t, NO_DISTANCE)  # the answer depends on every symbol
        return Batch(
            inputs=jnp.where(is_input, FIRST + padded, jnp.where(is_output, QUERY, PAD)),
            targets=jnp.where(is_output, FIRST + out_T, PAD),
            mask=is_output.astype(jnp.float32),
            distance=jnp.where(is_output, distance, NO_DISTANCE),
        )
