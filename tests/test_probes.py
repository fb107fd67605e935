"""The probes against what is known exactly: lambda^k on a linear RNN, prod f on the LSTM cell path,
Pascanu's bound on a tanh RNN, and a fit that recovers a known rate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rvt import models, probes

H, V, T, B = 4, 5, 12, 3


class LinearCell(models.Cell):
    """h' = W_ih x + b + W_hh h with no nonlinearity: the gradient path is a pure matrix power."""

    def step(self, h_BxH, xp_BxH):
        h_BxH = xp_BxH + self.hh(h_BxH)
        return h_BxH, h_BxH


def linear_rnn(lam: float):
    module = models.RecurrentLM(vocab_size=V, cells=(LinearCell(hidden_size=H),), embed_dim=H)
    params = models.init_params(module, jax.random.key(0), T)
    params = jax.tree.map(lambda x: x, params)  # a mutable copy
    params["cells_0"]["ih"]["kernel"] = jnp.eye(H)
    params["cells_0"]["ih"]["bias"] = jnp.zeros(H)
    params["cells_0"]["hh"]["kernel"] = lam * jnp.eye(H)
    return module, params


@pytest.mark.parametrize("lam", [0.7, 1.0, 1.15])
def test_linear_rnn_gradient_is_lambda_to_the_k(lam):
    module, params = linear_rnn(lam)
    tokens_BxT = jax.random.randint(jax.random.key(1), (B, T), 0, V)
    targets_B = jax.random.randint(jax.random.key(2), (B,), 0, V)
    norms_K = np.asarray(probes.gradient_vs_distance(module, params, tokens_BxT, targets_B))

    # Independently in NumPy: h_{T-1} = sum_k lam^k x_{T-1-k}, so d loss / d x_{T-1-k} = lam^k W_out (p - y).
    x_BxTxH = np.asarray(params["embedding"]["embedding"])[np.asarray(tokens_BxT)]
    h_BxH = sum(lam**k * x_BxTxH[:, T - 1 - k] for k in range(T))
    w_HxV, b_V = np.asarray(params["head"]["kernel"]), np.asarray(params["head"]["bias"])
    logits_BxV = h_BxH @ w_HxV + b_V
    p_BxV = np.exp(logits_BxV - logits_BxV.max(-1, keepdims=True))
    p_BxV /= p_BxV.sum(-1, keepdims=True)
    g_BxH = (p_BxV - np.eye(V)[np.asarray(targets_B)]) @ w_HxV.T
    scale = np.linalg.norm(g_BxH, axis=-1).mean()
    expected_K = lam ** np.arange(T) * scale
    np.testing.assert_allclose(norms_K, expected_K, rtol=2e-5)
    np.testing.assert_allclose(norms_K / norms_K[0], lam ** np.arange(T), rtol=2e-5)
    slope, lo, hi = probes.fit_log_slope(norms_K)
    assert (lo, hi) == (1, T - 1)
    assert slope == pytest.approx(np.log(lam), abs=1e-5)


@pytest.fixture(scope="module")
def lstm_run():
    """A small LSTM with random weights of size ~1, so gates vary over time, unit and example."""
    module, _ = models.make_model("lstm", dict(hidden_size=6, forget_bias=1.5), vocab_size=V, length=T)
    params = models.init_params(module, jax.random.key(3), T)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(4), len(leaves))
    noisy = [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    params = jax.tree.unflatten(treedef, noisy)
    tokens_BxT = jax.random.randint(jax.random.key(5), (B, T), 0, V)
    return module, params, tokens_BxT, probes.sown(probes.intermediates(module, params, tokens_BxT), "gates")


def test_lstm_trajectory_is_the_models_own_forward(lstm_run):
    module, params, tokens_BxT, gates = lstm_run
    assert gates["f"].shape == (T, B, 6)
    forward = jax.jit(
        lambda p, t: module.apply(
            {"params": p}, module.apply({"params": p}, t, method="embed"), method="from_embeddings"
        )
    )
    (final_carry,), _ = forward(params, tokens_BxT)
    np.testing.assert_allclose(gates["c"][-1], final_carry[0], rtol=1e-5, atol=1e-6)


def test_forget_gate_product_equals_cell_path_gradient(lstm_run):
    _, _, _, gates = lstm_run
    f_TxBxH = np.asarray(gates["f"], np.float64)
    assert f_TxBxH.std() > 0.1 and f_TxBxH.min() > 0.01 and f_TxBxH.max() < 0.999  # gates vary, none saturated

    products = np.asarray(probes.forget_products(gates["f"]))
    path = np.asarray(probes.cell_path_gradient(gates))
    # The product computed independently in NumPy, float64.
    expected = np.stack([np.prod(f_TxBxH[T - k :], axis=0) for k in range(T)])
    np.testing.assert_allclose(products, expected, rtol=1e-5)
    np.testing.assert_allclose(path, expected, rtol=1e-5)

    # And the full Jacobian d c_{T-1} / d c_{T-1-k} (gates fixed) of one example is diag(prod f).
    f, u = gates["f"][:, 0], (gates["i"] * gates["g"])[:, 0]
    k = 5

    def c_last(c_start_H):
        c = c_start_H
        for s in range(T - k, T):
            c = f[s] * c + u[s]
        return c

    jac_HxH = np.asarray(jax.jit(jax.jacfwd(c_last))(gates["c"][T - 1 - k, 0]))
    np.testing.assert_allclose(jac_HxH, np.diag(expected[k, 0]), rtol=1e-5, atol=1e-7)


def test_tanh_rnn_gradient_decays_no_faster_than_pascanu_allows():
    module, _ = models.make_model("rnn", dict(hidden_size=16), vocab_size=V, length=40)
    params = models.init_params(module, jax.random.key(7), 40)
    assert probes.recurrence_bound(module, params) == pytest.approx(1.0, abs=1e-5)  # orthogonal
    tokens_BxT = jax.random.randint(jax.random.key(8), (8, 40), 0, V)
    targets_B = jnp.zeros((8,), jnp.int32)
    for scale in (0.5, 0.9, 1.0):
        kernel = np.asarray(params["cells_0"]["hh"]["kernel"], np.float64)
        params["cells_0"]["hh"]["kernel"] = jnp.asarray(scale * kernel / np.linalg.norm(kernel, ord=2), jnp.float32)
        sigma = probes.recurrence_bound(module, params)
        assert sigma == pytest.approx(scale, rel=1e-5)  # the model's bound is sigma_max, as NumPy's SVD says
        norms_K = probes.gradient_vs_distance(module, params, tokens_BxT, targets_B)
        slope, _, _ = probes.fit_log_slope(norms_K)
        jac = float(jnp.mean(probes.step_jacobian_log_norms(module, params, tokens_BxT)))
        assert jac <= np.log(sigma) + 1e-5  # |tanh'| <= 1
        # ||dh_T/dh_{T-k}|| <= prod ||J_t||; the fit adds noise of a few percent of a step.
        assert slope <= jac + 0.02, (scale, slope, jac)


def test_transformer_probe_reaches_every_position():
    module, _ = models.make_model("transformer", dict(d_model=8, num_heads=2, num_layers=1), vocab_size=V, length=T)
    params = models.init_params(module, jax.random.key(9), T)
    tokens_BxT = jax.random.randint(jax.random.key(10), (B, T), 0, V)
    norms_K = np.asarray(probes.gradient_vs_distance(module, params, tokens_BxT, jnp.zeros((B,), jnp.int32)))
    assert norms_K.shape == (T,)
    assert np.all(np.isfinite(norms_K)) and np.all(norms_K > 0)  # one attention step from anywhere


def test_fit_log_slope_stops_at_underflow():
    norms = 0.5 ** np.arange(20.0)
    norms[12:] = 0.0
    slope, lo, hi = probes.fit_log_slope(norms)
    assert (lo, hi) == (1, 11)
    assert slope == pytest.approx(np.log(0.5))


def test_jacobian_norm_by_power_iteration_matches_svd():
    module, _ = models.make_model("rnn", dict(hidden_size=16), vocab_size=V, length=T)
    params = models.init_params(module, jax.random.key(11), T)
    params["cells_0"]["hh"]["kernel"] = 1.5 * jax.random.normal(jax.random.key(12), (16, 16)) / 4.0
    tokens_BxT = jax.random.randint(jax.random.key(13), (B, T), 0, V)
    got_TxB = np.asarray(probes.step_jacobian_log_norms(module, params, tokens_BxT))
    hidden_BxTxH = probes.sown(probes.intermediates(module, params, tokens_BxT), "hidden")
    h_TxBxH = np.swapaxes(np.asarray(hidden_BxTxH, np.float64), 0, 1)  # h_t, the output of step t
    kernel = np.asarray(params["cells_0"]["hh"]["kernel"], np.float64)
    jac = (1.0 - h_TxBxH**2)[..., :, None] * kernel.T  # d h_t / d h_{t-1}, rows = outputs
    np.testing.assert_allclose(got_TxB, np.log(np.linalg.norm(jac, ord=2, axis=(-2, -1))), atol=1e-4)
