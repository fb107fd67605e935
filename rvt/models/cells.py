"""Recurrent cells, written here because they are the object of study.

A cell is one time step ``(carry, x) -> (carry, y)``, split in two so the input half can be hoisted out
of the time loop:

    xp = cell.project(x)           # input projection  W_ih x + b   (all T steps in one matmul)
    carry, y = cell.step(carry, xp)   # the serial part: recurrent matmul W_hh h and the gates

``cell(carry, x)`` is the textbook step, ``step(carry, project(x))``. Parameters live in two Dense
layers so probes can reach them by name: ``ih`` (kernel [D, G*H], bias [G*H]) and ``hh`` (kernel
[H, G*H], bias only where the cell needs one). Gate blocks are laid out along the last axis in the
order each docstring gives. Recurrent kernels are initialised orthogonal *per gate block*.

To add a cell: subclass :class:`Cell`, set ``num_gates``, implement ``step`` (and ``initial_carry`` if
the carry is not one [B, H] array), then ``rvt.models.register_cell("name", MyCell)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvt.typing import Array

Carry = Any  # an array or a tuple of arrays, each [..., H]


def blockwise_orthogonal(num_blocks: int):
    """Initialise a [H, G*H] kernel as G independent orthogonal [H, H] blocks (one per gate)."""

    def init(key, shape, dtype=jnp.float32):
        rows, cols = shape
        block = cols // num_blocks
        keys = jax.random.split(key, num_blocks)
        blocks = [nn.initializers.orthogonal()(k, (rows, block), dtype) for k in keys]
        return jnp.concatenate(blocks, axis=-1)

    return init


class Cell(nn.Module):
    """Base class: the two Dense layers and the carry; subclasses write ``step``."""

    hidden_size: int
    num_gates: ClassVar[int] = 1
    recurrent_bias: ClassVar[bool] = False  # a bias inside hh (GRU needs one for its candidate)
    carry_arrays: ClassVar[int] = 1  # [B, H] arrays in the carry (state bytes)
    pointwise_flops: ClassVar[int] = 2  # per hidden unit and step, outside the matmuls (cost model)

    def setup(self):
        width = self.num_gates * self.hidden_size
        self.ih = nn.Dense(width, bias_init=self.input_bias_init)
        self.hh = nn.Dense(width, use_bias=self.recurrent_bias, kernel_init=blockwise_orthogonal(self.num_gates))

    def input_bias_init(self, key, shape, dtype=jnp.float32):
        del key
        return jnp.zeros(shape, dtype)

    def project(self, x_xD: Array) -> Array:
        """The input half of a step, for any leading shape: [..., D] -> [..., G*H]."""
        return self.ih(x_xD)

    def step(self, carry: Carry, xp_BxGH: Array) -> tuple[Carry, Array]:
        raise NotImplementedError(f"{type(self).__name__} must implement step(carry, xp)")

    def __call__(self, carry: Carry, x_BxD: Array) -> tuple[Carry, Array]:
        return self.step(carry, self.project(x_BxD))

    def initial_carry(self, batch_size: int) -> Carry:
        return jnp.zeros((batch_size, self.hidden_size), jnp.float32)

    @staticmethod
    def output(carry: Carry) -> Array:
        """The hidden state h [B, H] inside a carry (what the next layer and probes read)."""
        return carry

    def recurrence_bound(self):
        """An upper bound on ||dh_t/dh_{t-1}||_2 where the cell has a simple one; None otherwise."""
        return None


class ElmanCell(Cell):
    """tanh RNN (Elman 1990): h' = tanh(W_ih x + b + W_hh h). One gate block; y = h'."""

    num_gates: ClassVar[int] = 1

    def recurrence_bound(self):
        """sigma_max(W_hh): |tanh'| <= 1 makes it a bound on ||dh_t/dh_{t-1}|| (Pascanu et al. 2013)."""
        return jnp.linalg.norm(self.hh.variables["params"]["kernel"], ord=2)

    def step(self, h_BxH, xp_BxH):
        h_BxH = jnp.tanh(xp_BxH + self.hh(h_BxH))
        return h_BxH, h_BxH


class LSTMCell(Cell):
    """LSTM (Hochreiter & Schmidhuber 1997, with forget gate, Gers et al. 2000).

    Gate blocks ``[i, f, g, o]``:  i, f, o = sigmoid(.),  g = tanh(.),
    c' = f * c + i * g,  h' = o * tanh(c').  Carry is ``(c, h)``; y = h'.
    ``forget_bias`` initialises the f block of the input bias (Jozefowicz et al. 2015 recommend 1).
    """

    forget_bias: float = 1.0
    num_gates: ClassVar[int] = 4
    carry_arrays: ClassVar[int] = 2
    pointwise_flops: ClassVar[int] = 10

    def input_bias_init(self, key, shape, dtype=jnp.float32):
        del key
        h = self.hidden_size
        return jnp.zeros(shape, dtype).at[h : 2 * h].set(self.forget_bias)

    def step(self, carry, xp_Bx4H):
        c_BxH, h_BxH = carry
        i, f, g, o = jnp.split(xp_Bx4H + self.hh(h_BxH), 4, axis=-1)
        gate = dict(i=nn.sigmoid(i), f=nn.sigmoid(f), g=jnp.tanh(g), o=nn.sigmoid(o))
        c_BxH = gate["f"] * c_BxH + gate["i"] * gate["g"]
        h_BxH = gate["o"] * jnp.tanh(c_BxH)
        self.sow("intermediates", "gates", dict(gate, c=c_BxH))  # probes read these: nothing recomputed
        return (c_BxH, h_BxH), h_BxH

    def initial_carry(self, batch_size):
        zeros = jnp.zeros((batch_size, self.hidden_size), jnp.float32)
        return (zeros, zeros)

    @staticmethod
    def output(carry):
        return carry[1]


class GRUCell(Cell):
    """GRU (Cho et al. 2014) in the cuDNN / PyTorch "reset after" form, one fused recurrent matmul.

    Gate blocks ``[r, z, n]``:  r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z),
    n = tanh(x_n + r * h_n)  where h_n includes hh's bias,  h' = (1 - z) * n + z * h.  y = h'.
    """

    num_gates: ClassVar[int] = 3
    recurrent_bias: ClassVar[bool] = True
    pointwise_flops: ClassVar[int] = 8

    def step(self, h_BxH, xp_Bx3H):
        xr, xz, xn = jnp.split(xp_Bx3H, 3, axis=-1)
        hr, hz, hn = jnp.split(self.hh(h_BxH), 3, axis=-1)
        r = nn.sigmoid(xr + hr)
        z = nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        h_BxH = (1.0 - z) * n + z * h_BxH
        return h_BxH, h_BxH
