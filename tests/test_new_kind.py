"""A new model *kind* (not a cell) added from outside the package runs through the experiments unedited.

The model is a tiny diagonal linear recurrence, h_t = a * h_{t-1} + W x_t, y_t = head(h_t), written here
against the contract of rvt.models.base and registered with ``register_model``: copy_distance, gradients,
streaming and edge take it by name, with no edit inside rvt/.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rvt import io, models
from rvt.models.base import ModelConfig, dense_flops
from rvt.studies import copy_distance, edge, gradients, streaming
from tests import test_edge, test_experiment, test_gradients, test_streaming


class DiagonalLM(nn.Module):
    vocab_size: int
    width: int

    def setup(self):
        self.embedding = nn.Embed(self.vocab_size, self.width)
        self.inp = nn.Dense(self.width)
        self.decay_logit = self.param("decay_logit", nn.initializers.constant(2.0), (self.width,))
        self.head = nn.Dense(self.vocab_size)

    def embed(self, tokens_BxT):
        return self.embedding(tokens_BxT)

    def from_embeddings(self, x_BxTxD, state=None):
        a_D = nn.sigmoid(self.decay_logit)
        h_BxD = jnp.zeros((x_BxTxD.shape[0], self.width)) if state is None else state
        step = lambda h, u: (a_D[None] * h + u, a_D[None] * h + u)
        h_BxD, hs_TxBxD = jax.lax.scan(step, h_BxD, jnp.swapaxes(self.inp(x_BxTxD), 0, 1))
        hidden_BxTxD = jnp.swapaxes(hs_TxBxD, 0, 1)
        self.sow("intermediates", "hidden", hidden_BxTxD)
        return h_BxD, self.head(hidden_BxTxD)

    def __call__(self, tokens_BxT):
        return self.from_embeddings(self.embed(tokens_BxT))[1]

    def initial_state(self, batch_size):
        return jnp.zeros((batch_size, self.width))

    def step(self, state, token_B):
        state, logits_Bx1xV = self.from_embeddings(self.embed(token_B[:, None]), state)
        return state, logits_Bx1xV[:, 0]

    def init_stream(self, batch_size, window):
        return self.initial_state(batch_size)

    def stream(self, memory, tokens_BxL):
        return self.from_embeddings(self.embed(tokens_BxL), memory)

    def recurrence_bound(self):
        return jnp.max(nn.sigmoid(self.decay_logit))  # ||dh_t/dh_{t-1}|| = max_j a_j


@dataclasses.dataclass(frozen=True)
class DiagonalConfig(ModelConfig):
    width: int = 16

    def build(self, vocab_size, length):
        return DiagonalLM(vocab_size=vocab_size, width=self.width)

    def num_params(self, vocab_size):
        return vocab_size * self.width + self.width * self.width + 2 * self.width + self.width * vocab_size + vocab_size

    def flops_per_token(self, vocab_size, context):
        return dense_flops(self.width, self.width) + 3 * self.width + dense_flops(self.width, vocab_size)


@pytest.fixture(scope="module")
def diagonal():
    models.register_model("diag_test", DiagonalConfig, preset=dict(width=8))
    yield "diag_test"
    del models.MODELS["diag_test"]


def test_the_new_kind_keeps_the_contract(diagonal):
    module, config = models.make_model(diagonal, {}, vocab_size=5, length=6)
    params = models.init_params(module, jax.random.key(0), 6)
    assert models.count_params(params) == config.num_params(5)
    tokens = jax.random.randint(jax.random.key(1), (2, 6), 0, 5)
    full = module.apply({"params": params}, tokens)
    step, state, outs = models.make_step(module), models.init_state(module, params, 2), []
    for t in range(6):
        state, logits = step(params, state, tokens[:, t])
        outs.append(logits)
    np.testing.assert_allclose(np.stack(outs, 1), full, rtol=1e-5, atol=1e-6)


def test_the_new_kind_runs_through_four_experiments(tmp_path, diagonal):
    config = test_experiment.tiny_config(diagonal)
    copy_distance.run(config, str(tmp_path / "copy_distance"))
    assert {r["model"] for r in io.read_csv(tmp_path / "copy_distance" / "results.csv")} == {diagonal}

    config = test_gradients.tiny_config()
    config.models = diagonal
    gradients.run(config, str(tmp_path / "gradients"))
    summary = io.read_csv(tmp_path / "gradients" / "summary.csv")
    assert {r["model"] for r in summary} == {diagonal}
    # The model's own bound (max decay) and the Jacobian probe need no per-class code; a diagonal
    # recurrence sows no step carries, so the Jacobian column stays empty.
    assert all(0 < r["sigma_max"] < 1 for r in summary)

    config = test_streaming.tiny_config()
    config.rnn = diagonal
    config.modes = "state"
    streaming.run(config, str(tmp_path / "streaming"))
    rows = io.read_csv(tmp_path / "streaming" / "results.csv")
    assert {r["model"] for r in rows} == {diagonal} and len({r["state_bytes"] for r in rows}) == 1  # fixed size

    config = test_edge.tiny_config()
    config.models = diagonal
    config.lesson_model = ""
    edge.run(config, str(tmp_path / "edge"))
    (row,) = io.read_csv(tmp_path / "edge" / "results.csv")
    assert row["model"] == diagonal and row["params"] == DiagonalConfig(width=8).num_params(config.vocab_size)
