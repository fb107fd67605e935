"""Source -> target tasks for encoder-decoder models: copy a source string, or reverse it.

Unlike the decoder-only tasks of :mod:`rvt.tasks.base`, a batch here has two sequences: the source the
encoder reads and the target the decoder writes. Tokens: 0 is BOS (the decoder's first input, never a
target), symbols are 1..alphabet, drawn uniformly, so a source of length L carries L log2(alphabet)
bits -- the quantity the information-bottleneck experiment sweeps.

Teacher forcing: ``tgt_in = [BOS, tgt_out[:-1]]``. Every target position is scored; ``src_position``
says which source position each target copies (t for copy, L-1-t for reversal), so per-position
accuracy can be read either way.

Sequence tasks are built by name through :func:`make_seq2seq_task` (one plain dict, :data:`TASKS`);
they are not in :data:`rvt.tasks.TASKS` because their batches have a different shape.
"""

from __future__ import annotations

import dataclasses
import math

import flax.struct
import jax
import jax.numpy as jnp

from rvt.errors import ConfigError, check, check_positive_int
from rvt.typing import Array, PRNGKey

BOS = 0


@flax.struct.dataclass
class Seq2SeqBatch:
    """One batch of a source -> target task. ``src`` is [B, S]; every other field is [B, T]."""

    src: Array  # int32 source tokens (encoder input)
    tgt_in: Array  # int32 decoder inputs: BOS, then the target shifted right
    tgt_out: Array  # int32 tokens the decoder must predict
    mask: Array  # float32 in {0, 1}: which target positions count
    position: Array  # int32 target position t (the per-position label)
    src_position: Array  # int32 source position that target t copies

    @property
    def targets(self) -> Array:
        """What the decoder must predict (the name every loss and accuracy in rvt.metrics reads)."""
        return self.tgt_out


@dataclasses.dataclass(frozen=True)
class SourceTarget:
    """Copy (``reverse=False``) or reverse (``reverse=True``) ``src_len`` uniform symbols."""

    src_len: int = 8
    alphabet: int = 8
    reverse: bool = False

    def __post_init__(self):
        self.validate()

    @property
    def vocab_size(self) -> int:
        return self.alphabet + 1  # symbols plus BOS

    @property
    def tgt_len(self) -> int:
        return self.src_len

    @property
    def bits(self) -> float:
        """Information in one source: what a final-state encoder must squeeze into its carry."""
        return self.src_len * math.log2(self.alphabet)

    def validate(self) -> None:
        check_positive_int(self.src_len, "task.src_len")
        check(
            _is_int(self.alphabet) and self.alphabet >= 2,
            "task.alphabet",
            f"must be an integer >= 2 (one symbol carries no information), got {self.alphabet!r}",
        )

    def sample(self, key: PRNGKey, batch_size: int) -> Seq2SeqBatch:
        """``batch_size`` independent examples, a pure (jittable) function of ``key``.

        One ``randint`` over the whole [B, S] block rather than split + vmap per example: the
        threefry code of a per-example split takes seconds to compile on CPU, once per source length.
        """
        src_BxS = jax.random.randint(key, (batch_size, self.src_len), 1, self.alphabet + 1, dtype=jnp.int32)
        position_T = jnp.arange(self.tgt_len, dtype=jnp.int32)
        src_position_T = self.src_len - 1 - position_T if self.reverse else position_T
        tgt_out_BxT = src_BxS[:, src_position_T]
        shape = (batch_size, self.tgt_len)
        return Seq2SeqBatch(
            src=src_BxS,
            tgt_in=jnp.concatenate([jnp.full((batch_size, 1), BOS, jnp.int32), tgt_out_BxT[:, :-1]], axis=1),
            tgt_out=tgt_out_BxT,
            mask=jnp.ones(shape, jnp.float32),
            position=jnp.broadcast_to(position_T, shape),
            src_position=jnp.broadcast_to(src_position_T, shape),
        )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


TASKS: dict[str, dict] = {"copy": dict(reverse=False), "reverse": dict(reverse=True)}


def make_seq2seq_task(name: str, **sizes) -> SourceTarget:
    """Build task ``name`` ("copy" or "reverse") with sizes ``src_len``, ``alphabet``."""
    if name not in TASKS:
        raise ConfigError(f"task: unknown seq2seq task {name!r}; known: {', '.join(TASKS)}")
    for field in sizes:
        check(field in ("src_len", "alphabet"), f"task.{field}", "unknown setting; known: src_len, alphabet")
    return SourceTarget(**sizes, **TASKS[name])
