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

    def scan(self, carry: Carry, xp_TxBxGH: Array) -> tuple[Carry, Array] | None:
        """The whole serial part at once, (final carry, y [T, B, H]), where the cell has a faster path
        than ``lax.scan`` over ``step`` (with the same numbers); None: the layer scans ``step``."""
        del carry, xp_TxBxGH
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

    def scan(self, carry, xp_TxBx4H):
        """:func:`lstm_scan`, with its hand-written backward pass (not at init: the parameters it reads
        are created by the first ``step``)."""
        if self.is_initializing():
            return None
        c_BxH, h_BxH = carry
        return lstm_scan(self.hh.variables["params"]["kernel"], xp_TxBx4H, c_BxH, h_BxH)


@jax.custom_vjp
def lstm_scan(w_Hx4H: Array, xp_TxBx4H: Array, c0_BxH: Array, h0_BxH: Array) -> tuple[Carry, Array]:
    """LSTMCell.step scanned over T: ((c_T, h_T), h [T, B, H]), with a custom VJP.

    Autodiff of ``lax.scan`` accumulates dW_hh in the backward loop: every step adds an [H, B] x [B, 4H]
    matmul to the serial chain, as many FLOPs as the step's own dh = dgates W_hh^T. Here the backward
    scan carries only (dh, dc) and emits the gate gradients; dW_hh is then one [H, T*B] x [T*B, 4H]
    matmul after the loop (cuDNN and PyTorch do the same). On a 2-core CPU (B32, T256, H256) the
    recurrent part's gradient takes ~0.85x the time of autodiff's (scripts/bench.py, row lstm).
    """
    return _lstm_forward(w_Hx4H, xp_TxBx4H, c0_BxH, h0_BxH)[0]


def _lstm_forward(w_Hx4H, xp_TxBx4H, c0_BxH, h0_BxH):
    def step(carry, xp_Bx4H):
        c_BxH, h_BxH = carry
        i, f, g, o = jnp.split(xp_Bx4H + h_BxH @ w_Hx4H, 4, axis=-1)
        i, f, g, o = nn.sigmoid(i), nn.sigmoid(f), jnp.tanh(g), nn.sigmoid(o)
        c_new = f * c_BxH + i * g
        tanh_c = jnp.tanh(c_new)
        h_new = o * tanh_c
        return (c_new, h_new), (h_new, jnp.concatenate([i, f, g, o], axis=-1), c_BxH, tanh_c)

    carry, (h_TxBxH, gates_TxBx4H, c_prev_TxBxH, tanh_c_TxBxH) = jax.lax.scan(step, (c0_BxH, h0_BxH), xp_TxBx4H)
    h_prev_TxBxH = jnp.concatenate([h0_BxH[None], h_TxBxH[:-1]], axis=0)
    return (carry, h_TxBxH), (w_Hx4H, gates_TxBx4H, c_prev_TxBxH, tanh_c_TxBxH, h_prev_TxBxH)


def _lstm_backward(residuals, cotangents):
    w_Hx4H, gates_TxBx4H, c_prev_TxBxH, tanh_c_TxBxH, h_prev_TxBxH = residuals
    (dc_T, dh_T), dh_TxBxH = cotangents
    w_4HxH = w_Hx4H.T

    def step(carry, inputs):
        dh_BxH, dc_BxH = carry
        dy_BxH, gates_Bx4H, c_prev_BxH, tanh_c_BxH = inputs
        i, f, g, o = jnp.split(gates_Bx4H, 4, axis=-1)
        dh_BxH = dh_BxH + dy_BxH
        dc_BxH = dc_BxH + dh_BxH * o * (1.0 - tanh_c_BxH * tanh_c_BxH)
        d_pre_Bx4H = jnp.concatenate(
            [
                dc_BxH * g * i * (1.0 - i),
                dc_BxH * c_prev_BxH * f * (1.0 - f),
                dc_BxH * i * (1.0 - g * g),
                dh_BxH * tanh_c_BxH * o * (1.0 - o),
            ],
            axis=-1,
        )
        return (d_pre_Bx4H @ w_4HxH, dc_BxH * f), d_pre_Bx4H

    inputs = (dh_TxBxH, gates_TxBx4H, c_prev_TxBxH, tanh_c_TxBxH)
    (dh0_BxH, dc0_BxH), d_pre_TxBx4H = jax.lax.scan(step, (dh_T, dc_T), inputs, reverse=True)
    length, batch, hidden = h_prev_TxBxH.shape
    dw_Hx4H = h_prev_TxBxH.reshape(length * batch, hidden).T @ d_pre_TxBx4H.reshape(length * batch, 4 * hidden)
    return dw_Hx4H, d_pre_TxBx4H, dc0_BxH, dh0_BxH


lstm_scan.defvjp(_lstm_forward, _lstm_backward)


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
