"""The selective SSM S6 in a Mamba block (Gu and Dao 2023, "Mamba: Linear-Time Sequence Modeling with
Selective State Spaces"), following the reference code (mamba_simple.py / selective_scan_ref).

    x, z   = in_proj(u)                          [B, T, H] each, H = expand * d_model
    x      = SiLU(causal depthwise conv(x))      width ``conv_width``
    Delta  = softplus(W_up W_down x + bias)      low rank ``dt_rank``; bias init so Delta in [1e-3, 1e-1]
    B, C   = W_B x, W_C x                        [B, T, P] (P = ``state_size``, the SSM state size in
                                                 array names; not in the legend of rvt.typing)
    h_t    = exp(Delta_t A) * h_{t-1} + Delta_t B_t x_t     per channel: state [H, P], A = -exp(A_log)
    y_t    = C_t h_t + D x_t,   out = out_proj(y * SiLU(z))

The discretisation is the reference code's: zero-order hold for A, Euler for B (Delta B instead of
(Delta A)^-1 (exp(Delta A) - 1) Delta B), exact as Delta -> 0. A = -exp(A_log) < 0 and Delta > 0 keep
exp(Delta A) in (0, 1): stable for any parameters. The S4D-real init A = -(1, 2, .., P) per channel
spreads the decay rates.

Block: x + Mamba(RMSNorm(x)) (Mamba has no separate MLP). The step-mode state is the SSM state [B, H, P]
and the conv's last ``conv_width - 1`` inputs [B, W-1, H].
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvt.models.base import ModelConfig, dense_flops
from rvt.models.linear import RMSNORM_FLOPS, SOFTPLUS_FLOPS, ResidualLM, check_backend, lm_flops, lm_params
from rvt.models.registry import register_model
from rvt.models.scan import linear_scan, resolve
from rvt.typing import Array

DT_MIN, DT_MAX, DT_FLOOR = 1e-3, 1e-1, 1e-4
SILU_FLOPS = 4  # exp (a transcendental, not counted), add, divide, multiply


def dt_bias_init(key, shape, dtype=jnp.float32):
    """softplus^-1 of Delta log-uniform in [DT_MIN, DT_MAX], so training starts with those time steps."""
    dt = jnp.exp(jax.random.uniform(key, shape, dtype, math.log(DT_MIN), math.log(DT_MAX)))
    dt = jnp.maximum(dt, DT_FLOOR)
    return dt + jnp.log(-jnp.expm1(-dt))  # log(exp(dt) - 1) without the cancellation for small dt


def uniform(scale: float):
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -scale, scale)


def initial_state(batch_size: int, conv_width: int, inner: int, state_size: int) -> dict:
    """Zero conv inputs [B, W-1, H] and zero SSM state [B, H, P]."""
    return dict(
        conv=jnp.zeros((batch_size, conv_width - 1, inner), jnp.float32),
        ssm=jnp.zeros((batch_size, inner, state_size), jnp.float32),
    )


def fused_scan(dt_TxBxH, x_TxBxH, b_TxBxP, c_TxBxP, a_HxP, h0_BxHxP, keep_states: bool = False):
    """The sequential backend with the discretisation and the C contraction inside the scan body, as in
    Mamba's fused kernel: (last state [B, H, P], y [T, B, H], every state [T, B, H, P] or None).

    The [T, B, H, P] tensors exp(Delta A) and Delta B x are never formed, and the body is rematerialised
    (``jax.checkpoint``), so the backward pass stores only the carried state per step. On a 2-core CPU
    this takes the S6 train step of the main experiment's preset from 0.28 s to ~0.1 s.
    ``keep_states`` also returns every state (the probes' "hidden", sown only when asked for).
    """

    @jax.checkpoint
    def step(h_BxHxP, inputs):
        dt_BxH, x_BxH, b_BxP, c_BxP = inputs
        h_BxHxP = jnp.exp(dt_BxH[..., None] * a_HxP[None]) * h_BxHxP + (dt_BxH * x_BxH)[..., None] * b_BxP[:, None, :]
        y_BxH = jnp.einsum("bhp,bp->bh", h_BxHxP, c_BxP)
        return h_BxHxP, (y_BxH, h_BxHxP if keep_states else None)

    h_BxHxP, (y_TxBxH, h_TxBxHxP) = jax.lax.scan(step, h0_BxHxP, (dt_TxBxH, x_TxBxH, b_TxBxP, c_TxBxP))
    return h_BxHxP, y_TxBxH, h_TxBxHxP


class S6(nn.Module):
    """The Mamba mixer: u [B, T, D] (and a state or None) -> (state after T, out [B, T, D])."""

    d_model: int
    state_size: int = 16
    expand: int = 2
    conv_width: int = 4
    dt_rank: int = 0  # 0: ceil(d_model / 16), the reference's "auto"
    backend: str = "associative"

    @property
    def inner(self) -> int:
        return self.expand * self.d_model

    @property
    def rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)

    def setup(self):
        h, p, w, r = self.inner, self.state_size, self.conv_width, self.rank
        self.in_proj = nn.Dense(2 * h, use_bias=False)
        # torch's Conv1d init (the reference's): U(+-1/sqrt(fan_in)), fan_in = the kernel width (depthwise)
        self.conv_kernel = self.param("conv_kernel", uniform(w**-0.5), (w, h))
        self.conv_bias = self.param("conv_bias", uniform(w**-0.5), (h,))
        self.x_proj = nn.Dense(r + 2 * p, use_bias=False)  # Delta's low-rank input, B, C
        self.dt_proj = nn.Dense(h, kernel_init=uniform(r**-0.5), bias_init=dt_bias_init)
        self.A_log = self.param(
            "A_log", lambda _, s: jnp.log(jnp.broadcast_to(jnp.arange(1, p + 1, dtype=jnp.float32), s)), (h, p)
        )
        self.D = self.param("D", nn.initializers.ones, (h,))
        self.out_proj = nn.Dense(self.d_model, use_bias=False)

    def conv(self, x_BxTxH: Array, past_BxWxH: Array) -> tuple[Array, Array]:
        """Causal depthwise conv over [past inputs, x]: (output [B, T, H], the last W-1 inputs)."""
        length, width = x_BxTxH.shape[1], self.conv_width
        padded = jnp.concatenate([past_BxWxH, x_BxTxH], axis=1)  # [B, W-1+T, H]
        kernel_1x1xWxH = self.conv_kernel[None, None]
        taps = (kernel_1x1xWxH[:, :, k] * padded[:, k : k + length] for k in range(width))
        out_BxTxH = self.conv_bias[None, None, :] + sum(taps)
        return out_BxTxH, padded[:, padded.shape[1] - (width - 1) :]

    def __call__(self, u_BxTxD: Array, state: dict | None = None) -> tuple[dict, Array]:
        if state is None:
            state = initial_state(u_BxTxD.shape[0], self.conv_width, self.inner, self.state_size)
        x_BxTxH, z_BxTxH = jnp.split(self.in_proj(u_BxTxD), 2, axis=-1)
        x_BxTxH, conv_state = self.conv(x_BxTxH, state["conv"])
        x_BxTxH = nn.silu(x_BxTxH)
        dt_in, b_BxTxP, c_BxTxP = jnp.split(self.x_proj(x_BxTxH), [self.rank, self.rank + self.state_size], axis=-1)
        dt_BxTxH = jax.nn.softplus(self.dt_proj(dt_in))
        a_HxP = -jnp.exp(self.A_log)
        dt_TxBxH, x_TxBxH = jnp.swapaxes(dt_BxTxH, 0, 1), jnp.swapaxes(x_BxTxH, 0, 1)
        b_TxBxP, c_TxBxP = jnp.swapaxes(b_BxTxP, 0, 1), jnp.swapaxes(c_BxTxP, 0, 1)
        sow = self.is_mutable_collection("intermediates")
        if resolve(self.backend) == "sequential":
            h_BxHxP, y_TxBxH, h_TxBxHxP = fused_scan(dt_TxBxH, x_TxBxH, b_TxBxP, c_TxBxP, a_HxP, state["ssm"], sow)
        else:
            # time-major [T, B, H, P]: the [.., H, P] products are the big tensors, formed once
            a_bar_TxBxHxP = jnp.exp(dt_TxBxH[..., None] * a_HxP[None, None])
            bx_TxBxHxP = (dt_TxBxH * x_TxBxH)[..., None] * b_TxBxP[:, :, None, :]
            h_TxBxHxP = linear_scan(a_bar_TxBxHxP, bx_TxBxHxP, state["ssm"], self.backend)
            h_BxHxP, y_TxBxH = h_TxBxHxP[-1], jnp.einsum("tbhp,tbp->tbh", h_TxBxHxP, c_TxBxP)
        if sow:
            self.sow("intermediates", "hidden", jnp.swapaxes(h_TxBxHxP, 0, 1))
        y_BxTxH = jnp.swapaxes(y_TxBxH, 0, 1) + self.D[None, None, :] * x_BxTxH
        return dict(conv=conv_state, ssm=h_BxHxP), self.out_proj(y_BxTxH * nn.silu(z_BxTxH))


class S6Block(nn.Module):
    d_model: int
    state_size: int = 16
    expand: int = 2
    conv_width: int = 4
    dt_rank: int = 0
    backend: str = "associative"

    def setup(self):
        self.norm = nn.RMSNorm()
        self.mixer = S6(self.d_model, self.state_size, self.expand, self.conv_width, self.dt_rank, self.backend)

    def __call__(self, x_BxTxD: Array, state: dict | None = None) -> tuple[dict, Array]:
        state, y_BxTxD = self.mixer(self.norm(x_BxTxD), state)
        return state, x_BxTxD + y_BxTxD

    def initial_state(self, batch_size: int) -> dict:
        # not through self.mixer: that would run its setup, which needs params initial_state has no use for
        return initial_state(batch_size, self.conv_width, self.expand * self.d_model, self.state_size)


@dataclasses.dataclass(frozen=True)
class S6Config(ModelConfig):
    """``num_layers`` Mamba blocks of width ``d_model``; ``expand * d_model`` channels, each with an SSM
    state of ``state_size``."""

    d_model: int = 64
    num_layers: int = 2
    state_size: int = 16
    expand: int = 2
    conv_width: int = 4
    dt_rank: int = 0  # 0: ceil(d_model / 16)
    backend: str = "auto"  # one of rvt.models.scan.SETTINGS (auto: sequential on CPU, associative elsewhere)

    def build(self, vocab_size: int, length: int) -> nn.Module:
        del length
        settings = dict(
            state_size=self.state_size,
            expand=self.expand,
            conv_width=self.conv_width,
            dt_rank=self.dt_rank,
            backend=self.backend,
        )
        blocks = tuple(S6Block(self.d_model, **settings) for _ in range(self.num_layers))
        return ResidualLM(vocab_size=vocab_size, d_model=self.d_model, blocks=blocks, final_norm="rms")

    def _sizes(self) -> tuple[int, int, int, int, int]:
        d = self.d_model
        return d, self.expand * d, self.state_size, self.conv_width, self.dt_rank or math.ceil(d / 16)

    def num_params(self, vocab_size: int) -> int:
        d, h, p, w, r = self._sizes()
        mixer = d * 2 * h + (w * h + h) + h * (r + 2 * p) + (r * h + h) + h * p + h + h * d
        return self.num_layers * (d + mixer) + lm_params(vocab_size, d, d)

    def flops_per_token(self, vocab_size: int, context: int) -> float:
        """Per block: the five matmuls, the conv, and per state entry (H*P of them) Delta*A, exp, the
        Delta*x*B product, the scan's multiply-add and the C contraction: ~7 FLOPs."""
        del context
        d, h, p, w, r = self._sizes()
        matmuls = dense_flops(d, 2 * h) + dense_flops(h, r + 2 * p) + dense_flops(r, h) + dense_flops(h, d)
        pointwise = 2 * w * h + h + 2 * SILU_FLOPS * h + SOFTPLUS_FLOPS * h + h + 2 * h + 2 * h
        state = 7 * h * p
        block = RMSNORM_FLOPS * d + matmuls + pointwise + state + d
        return self.num_layers * block + lm_flops(vocab_size, d, RMSNORM_FLOPS)

    def validate(self, name: str) -> None:
        super().validate(name)
        check_backend(name, self.backend)


register_model("s6", S6Config, preset=dict(d_model=42, num_layers=2, state_size=16, expand=2, conv_width=4))
