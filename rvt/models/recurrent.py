"""A cell lifted over time with ``lax.scan`` (through ``nn.scan``), stacked, with embeddings and a head.

The input projection of every time step is hoisted out of the scan: ``cell.project`` runs once on the
whole [B, T, D] block (one large matmul), and only ``cell.step`` -- the recurrent matmul and the gates,
the part that is serial by nature -- runs inside the loop. The scan is time-major so no transpose
sits inside the loop.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from rvt.models import cudnn
from rvt.models.cells import Carry, Cell
from rvt.typing import Array


def _recorded_step(cell: Cell, carry: Carry, xp_BxGH: Array) -> tuple[Carry, Array]:
    """One scanned step that also sows what probes read: the carry it starts from and its input."""
    cell.sow("intermediates", "carry", carry)
    cell.sow("intermediates", "xp", xp_BxGH)
    return cell.step(carry, xp_BxGH)


class RecurrentLayer(nn.Module):
    """One cell over a sequence: [B, T, D] -> (final carry, [B, T, H])."""

    cell: Cell
    unroll: int = 1

    def __call__(self, x_BxTxD: Array, carry: Carry | None = None) -> tuple[Carry, Array]:
        return self.over_projected(self.cell.project(jnp.swapaxes(x_BxTxD, 0, 1)), carry)

    def over_projected(self, xp_TxBxGH: Array, carry: Carry | None = None) -> tuple[Carry, Array]:
        """The serial part alone, on inputs already through ``cell.project`` (time-major)."""
        if carry is None:
            carry = self.cell.initial_carry(xp_TxBxGH.shape[1])
        if not self.is_mutable_collection("intermediates"):  # probes need the per-step records
            fused = self.cell.scan(carry, xp_TxBxGH)
            if fused is not None:
                carry, y_TxBxH = fused
                return carry, jnp.swapaxes(y_TxBxH, 0, 1)
        scan = nn.scan(
            _recorded_step,
            variable_broadcast="params",
            variable_axes={"intermediates": 0},  # what a step sows is stacked over time: [T, ...]
            split_rngs={"params": False},
            unroll=self.unroll,
        )
        carry, y_TxBxH = scan(self.cell, carry, xp_TxBxGH)
        y_BxTxH = jnp.swapaxes(y_TxBxH, 0, 1)
        self.sow("intermediates", "hidden", y_BxTxH)
        return carry, y_BxTxH

    def step(self, carry: Carry, x_BxD: Array) -> tuple[Carry, Array]:
        """One time step with the same parameters (step mode)."""
        return self.cell(carry, x_BxD)


class RecurrentLM(nn.Module):
    """Tokens [B, T] -> logits [B, T, V] through embed, ``num_layers`` recurrent layers, a linear head.

    ``make_cell(i)`` builds the cell of layer i (the registry passes a closure over the cell class and
    its settings). Step mode: ``initial_state(B)`` and ``step(state, token_B) -> (state, logits_BxV)``
    give the same logits as the full sequence, one token at a time, with a state of fixed size.
    """

    vocab_size: int
    cells: tuple[Cell, ...]
    embed_dim: int
    unroll: int = 1
    backend: str = "scan"  # "cudnn": an LSTM stack runs as one cuDNN call where a GPU is present

    def setup(self):
        self.embedding = nn.Embed(self.vocab_size, self.embed_dim)
        self.layers = [RecurrentLayer(cell, unroll=self.unroll) for cell in self.cells]
        self.head = nn.Dense(self.vocab_size)

    def embed(self, tokens_BxT: Array) -> Array:
        return self.embedding(tokens_BxT)

    def from_embeddings(self, x_BxTxD: Array, state=None) -> tuple[tuple, Array]:
        """The part after the embedding (probes differentiate with respect to x); returns the carries."""
        if self.backend == "cudnn" and cudnn.available():
            if state is None:
                state = self.initial_state(x_BxTxD.shape[0])
            layers = [dict(ih=c.ih.variables["params"], hh=c.hh.variables["params"]) for c in self.cells]
            carries, h = cudnn.lstm(x_BxTxD, state, layers)
            return carries, self.head(h)
        state = state if state is not None else (None,) * len(self.layers)
        carries = []
        h = x_BxTxD
        for layer, carry in zip(self.layers, state, strict=True):
            carry, h = layer(h, carry)
            carries.append(carry)
        return tuple(carries), self.head(h)

    def __call__(self, tokens_BxT: Array) -> Array:
        if self.vocab_size >= tokens_BxT.size or self.backend == "cudnn":
            return self.from_embeddings(self.embed(tokens_BxT))[1]
        # Embedding then the first layer's input projection is one lookup in a projected table: V rows
        # through the [D, G*H] matmul instead of B*T (and in the backward pass too) -- the same numbers,
        # about half the FLOPs of a small-vocabulary train step. Probes use from_embeddings, unchanged.
        first, rest = self.layers[0], self.layers[1:]
        table_VxGH = first.cell.project(self.embedding.embedding)
        _, h = first.over_projected(jnp.take(table_VxGH, tokens_BxT.T, axis=0))
        for layer in rest:
            _, h = layer(h)
        return self.head(h)

    def initial_state(self, batch_size: int) -> tuple:
        return tuple(cell.initial_carry(batch_size) for cell in self.cells)

    def step(self, state: tuple, token_B: Array) -> tuple[tuple, Array]:
        h = self.embed(token_B)
        carries = []
        for layer, carry in zip(self.layers, state, strict=True):
            carry, h = layer.step(carry, h)
            carries.append(carry)
        return tuple(carries), self.head(h)

    def init_stream(self, batch_size: int, window: int) -> tuple:
        """Online learning carries the state across segments (truncated BPTT): ``window`` is unused."""
        del window
        return self.initial_state(batch_size)

    def stream(self, memory: tuple, tokens_BxL: Array) -> tuple[tuple, Array]:
        return self.from_embeddings(self.embed(tokens_BxL), memory)

    def recur(self, carry, xp_BxGH: Array):
        """The first layer's recurrence alone, on a carry and a projected input (Jacobian probes)."""
        return self.cells[0].step(carry, xp_BxGH)[0]

    def recurrence_bound(self):
        return self.cells[0].recurrence_bound()
