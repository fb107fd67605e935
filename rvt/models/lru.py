"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long Sequences").

    x_k = Lambda * x_{k-1} + gamma * (B u_k)        Lambda = diag(exp(-exp(nu) + i exp(theta)))
    y_k = Re(C x_k) + D * u_k                       gamma = sqrt(1 - |Lambda|^2)

with a complex state x of size P (``state_size``; P is the SSM state size in array names, not in the
legend of rvt.typing). The parametrisation keeps |Lambda| = exp(-exp(nu)) inside (0, 1) for every nu, so
the recurrence is stable whatever the optimiser does; the "ring" init puts |Lambda| uniformly (in squared
radius) in [r_min, r_max] and the phase in [0, max_phase]; gamma (trainable, in log form) normalises the
state's variance under white-noise input, which otherwise blows up as |Lambda| -> 1.

Block (the paper's): x + GLU(GELU(LRU(LayerNorm(x)))), GLU(v) = W_a v * sigmoid(W_b v).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from rvt.errors import check
from rvt.models.base import ModelConfig, dense_flops
from rvt.models.linear import GELU_FLOPS, LAYERNORM_FLOPS, ResidualLM, check_backend, check_real, lm_flops, lm_params
from rvt.models.registry import register_model
from rvt.models.scan import linear_scan
from rvt.typing import Array


def nu_log_init(r_min: float, r_max: float):
    """log(-log|Lambda|) for |Lambda|^2 uniform in [r_min^2, r_max^2]."""

    def init(key, shape, dtype=jnp.float32):
        u1 = jax.random.uniform(key, shape, dtype)
        return jnp.log(-0.5 * jnp.log(u1 * (r_max**2 - r_min**2) + r_min**2))

    return init


def theta_log_init(max_phase: float):
    def init(key, shape, dtype=jnp.float32):
        # uniform() can return exactly 0, whose log would be a -inf parameter; 1e-6 rad is no phase at all
        u2 = jnp.maximum(jax.random.uniform(key, shape, dtype), 1e-6)
        return jnp.log(max_phase * u2)

    return init


def normal(std: float):
    return lambda key, shape, dtype=jnp.float32: std * jax.random.normal(key, shape, dtype)


class LRU(nn.Module):
    """The recurrence alone: u [B, T, D] (and a state [B, P] or None) -> (state after T, y [B, T, D])."""

    d_model: int
    state_size: int
    r_min: float = 0.9
    r_max: float = 0.999
    max_phase: float = 6.283
    backend: str = "associative"

    def setup(self):
        d, p = self.d_model, self.state_size
        self.nu_log = self.param("nu_log", nu_log_init(self.r_min, self.r_max), (p,))
        self.theta_log = self.param("theta_log", theta_log_init(self.max_phase), (p,))
        # log sqrt(1 - |Lambda|^2) = 0.5 log(-expm1(-2 exp(nu))): expm1 keeps it exact as |Lambda| -> 1
        self.gamma_log = self.param(
            "gamma_log", lambda _, s: 0.5 * jnp.log(-jnp.expm1(-2 * jnp.exp(self.nu_log))), (p,)
        )
        # B, C: real and imaginary parts each with half the variance of a real Glorot-like init (the
        # official code's normalisations: B by sqrt(2 D), C by sqrt(P))
        self.B_re = self.param("B_re", normal((2 * d) ** -0.5), (d, p))
        self.B_im = self.param("B_im", normal((2 * d) ** -0.5), (d, p))
        self.C_re = self.param("C_re", normal(p**-0.5), (p, d))
        self.C_im = self.param("C_im", normal(p**-0.5), (p, d))
        self.D = self.param("D", normal(1.0), (d,))

    def lam(self) -> Array:
        """Lambda [P], complex64."""
        return jnp.exp(jax.lax.complex(-jnp.exp(self.nu_log), jnp.exp(self.theta_log)))

    def __call__(self, u_BxTxD: Array, h0_BxP: Array | None = None) -> tuple[Array, Array]:
        u_TxBxD = jnp.swapaxes(u_BxTxD, 0, 1)
        gamma_P = jnp.exp(self.gamma_log)
        # two real matmuls, not one complex one: half the FLOPs, and u stays real
        b_TxBxP = jax.lax.complex(u_TxBxD @ self.B_re, u_TxBxD @ self.B_im) * gamma_P[None, None, :]
        h_TxBxP = linear_scan(self.lam(), b_TxBxP, h0_BxP, self.backend)
        h_BxTxP = jnp.swapaxes(h_TxBxP, 0, 1)
        self.sow("intermediates", "hidden", h_BxTxP)  # the complex state x_k
        y_BxTxD = jnp.real(h_BxTxP) @ self.C_re - jnp.imag(h_BxTxP) @ self.C_im + self.D[None, None, :] * u_BxTxD
        return h_TxBxP[-1], y_BxTxD


class LRUBlock(nn.Module):
    """x + GLU(GELU(LRU(LayerNorm(x)))); the state is the LRU's [B, P] complex state."""

    d_model: int
    state_size: int
    r_min: float = 0.9
    r_max: float = 0.999
    max_phase: float = 6.283
    backend: str = "associative"

    def setup(self):
        self.norm = nn.LayerNorm()
        self.lru = LRU(self.d_model, self.state_size, self.r_min, self.r_max, self.max_phase, self.backend)
        self.glu_a = nn.Dense(self.d_model)
        self.glu_b = nn.Dense(self.d_model)

    def __call__(self, x_BxTxD: Array, state: Array | None = None) -> tuple[Array, Array]:
        state, y_BxTxD = self.lru(self.norm(x_BxTxD), state)
        v_BxTxD = nn.gelu(y_BxTxD)
        return state, x_BxTxD + self.glu_a(v_BxTxD) * jax.nn.sigmoid(self.glu_b(v_BxTxD))

    def initial_state(self, batch_size: int) -> Array:
        return jnp.zeros((batch_size, self.state_size), jnp.complex64)


@dataclasses.dataclass(frozen=True)
class LRUConfig(ModelConfig):
    """A stack of ``num_layers`` LRU blocks of width ``d_model`` with a complex state of ``state_size``."""

    d_model: int = 64
    state_size: int = 64
    num_layers: int = 2
    r_min: float = 0.9  # |Lambda| at init lies in [r_min, r_max]
    r_max: float = 0.999
    max_phase: float = 6.283  # arg(Lambda) at init lies in [0, max_phase]
    backend: str = "auto"  # one of rvt.models.scan.SETTINGS (auto: sequential on CPU, associative elsewhere)

    def build(self, vocab_size: int, length: int) -> nn.Module:
        del length
        settings = dict(r_min=self.r_min, r_max=self.r_max, max_phase=self.max_phase, backend=self.backend)
        blocks = tuple(LRUBlock(self.d_model, self.state_size, **settings) for _ in range(self.num_layers))
        return ResidualLM(vocab_size=vocab_size, d_model=self.d_model, blocks=blocks, final_norm="layer")

    def num_params(self, vocab_size: int) -> int:
        d, p = self.d_model, self.state_size
        lru = 3 * p + 4 * d * p + d  # nu, theta, gamma; B and C (re, im); D
        block = 2 * d + lru + 2 * (d * d + d)
        return self.num_layers * block + lm_params(vocab_size, d, 2 * d)

    def flops_per_token(self, vocab_size: int, context: int) -> float:
        """Per block: the B and C matmuls (real and imaginary parts), the complex multiply-add of the
        recurrence (6 + 2 real FLOPs per state entry; gamma 2 more), the GLU, norms and activations."""
        del context  # a recurrence costs the same at every position
        d, p = self.d_model, self.state_size
        lru = 2 * dense_flops(d, p) + 2 * dense_flops(p, d) + 10 * p + 3 * d
        glu = 2 * dense_flops(d, d) + 2 * d + (GELU_FLOPS + 4) * d + d  # biases, GELU, sigmoid, product
        block = LAYERNORM_FLOPS * d + lru + glu + d  # + residual
        return self.num_layers * block + lm_flops(vocab_size, d, LAYERNORM_FLOPS)

    def validate(self, name: str) -> None:
        super().validate(name)
        check_backend(name, self.backend)
        for field in ("r_min", "r_max", "max_phase"):
            check_real(name, field, getattr(self, field))
        check(0 < self.r_min < self.r_max, f"model.{name}.r_min", f"must lie in (0, r_max), got {self.r_min}")
        check(self.r_max < 1, f"model.{name}.r_max", f"must be below 1 (a stable recurrence), got {self.r_max}")
        check(self.max_phase > 0, f"model.{name}.max_phase", f"must be positive, got {self.max_phase}")


register_model("lru", LRUConfig, preset=dict(d_model=48, state_size=56, num_layers=2))
