"""The shape legend used in every array name in rvt (nanodo / recurrentgemma style).

An array's name ends with its shape in these letters, joined by ``x``: ``logits_BxTxV`` is a
[batch, time, vocab] array, ``q_TxK`` one head's queries for one example.

  B  batch                 T  time (query positions)     S  time (key / source positions)
  D  model width (input)   H  hidden width (RNN) / heads  K  width of one attention head
  V  vocabulary            G  number of gates in a cell   F  MLP hidden width
  N  number of distances / buckets / segments

A leading ``...`` means "any batch dimensions". Token arrays are int32; everything else float32
unless a config says otherwise.
"""

from __future__ import annotations

from typing import Any

import jax

Array = jax.Array
PRNGKey = jax.Array
Params = Any  # a flax params pytree
PyTree = Any

# Distance label for targets that no single input token determines (blanks, padding).
NO_DISTANCE = -1
