"""Seq2seq models and tasks: shapes, the final-state bottleneck, attention against NumPy, transformer
causality, and that attention actually learns to copy."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rvt import train
from rvt.errors import ConfigError
from rvt.models import seq2seq
from rvt.tasks.seq2seq import BOS, make_seq2seq_task
from tests.conftest import count_compiles

V = 9  # alphabet 8 + BOS


def _model(name, **settings):
    module, _ = seq2seq.make_seq2seq(name, dict(settings), vocab_size=V)
    return module


def _tokens(key, shape):
    return jax.random.randint(jax.random.key(key), shape, 1, V, dtype=jnp.int32)


@pytest.mark.parametrize(
    "name, settings",
    [
        ("final_state", dict(hidden_size=8)),
        ("attention", dict(hidden_size=8, cell="gru")),
        ("transformer", dict(d_model=8, num_heads=2)),
    ],
)
def test_shapes_with_different_source_and_target_lengths(name, settings):
    module = _model(name, **settings)
    # Shapes only (eval_shape traces, compiles nothing); the tests below run real values.
    params = jax.eval_shape(lambda key: seq2seq.init_seq2seq(module, key, 5, 3), jax.random.key(0))
    src, tgt_in = jax.ShapeDtypeStruct((2, 5), jnp.int32), jax.ShapeDtypeStruct((2, 3), jnp.int32)
    logits = jax.eval_shape(lambda p, s, t: module.apply({"params": p}, s, t), params, src, tgt_in)
    assert logits.shape == (2, 3, V) and logits.dtype == jnp.float32
    assert seq2seq.count_params(params) > 0


def _cut_encoder_memory(params):
    """LSTM encoder surgery: no recurrent input, forget gate shut (sigmoid(-1e4) == 0 exactly), so the
    final carry is a function of the last source token alone."""
    params = jax.tree.map(lambda x: x, params)  # copy the dict structure
    cell = params["encoder_cell"]
    hidden = cell["hh"]["kernel"].shape[0]
    cell["hh"]["kernel"] = jnp.zeros_like(cell["hh"]["kernel"])
    cell["ih"]["bias"] = cell["ih"]["bias"].at[hidden : 2 * hidden].set(-1e4)
    return params


# Two sources that share only their last token, as one batch; one decoder input for both.
SRC = jnp.array([[1, 2, 3, 4, 5], [8, 7, 6, 2, 5]], jnp.int32)
TGT_IN = jnp.array([[BOS, 1, 2, 3], [BOS, 1, 2, 3]], jnp.int32)


@pytest.fixture(scope="module")
def rnn_models():
    """The final-state and attention models (LSTM, hidden 8) with params, and their jitted methods."""
    out = {}
    for name in ("final_state", "attention"):
        module = _model(name, hidden_size=8)
        out[name] = dict(
            params=seq2seq.init_seq2seq(module, jax.random.key(0), 5, 4),
            apply=jax.jit(module.apply),
            **{
                m: jax.jit(functools.partial(module.apply, method=m))
                for m in ("encode", "decode", "attend")
                if hasattr(module, m)
            },
        )
    return out


def test_final_state_decoder_sees_the_source_only_through_the_final_carry(rnn_models):
    final, attn = rnn_models["final_state"], rnn_models["attention"]
    p_final = {"params": final["params"]}
    logits = final["apply"](p_final, SRC, TGT_IN)
    # Structure: the model's logits are decode(final carry of encode(src), tgt_in).
    carry, _ = final["encode"](p_final, SRC)
    np.testing.assert_allclose(logits, final["decode"](p_final, carry, TGT_IN), rtol=1e-6)
    # Control: untouched, the two sources give different logits.
    assert not np.allclose(logits[0], logits[1])
    # Two sources with bitwise-identical final carries: identical logits, as nothing else reaches the decoder.
    cut_final = {"params": _cut_encoder_memory(final["params"])}
    carry, states = final["encode"](cut_final, SRC)
    jax.tree.map(lambda c: np.testing.assert_array_equal(c[0], c[1]), carry)
    assert not np.allclose(states[0, :-1], states[1, :-1])
    logits = final["apply"](cut_final, SRC, TGT_IN)
    np.testing.assert_array_equal(logits[0], logits[1])
    # The same surgery on the attention model: its decoder still reads the earlier encoder states.
    logits = attn["apply"]({"params": _cut_encoder_memory(attn["params"])}, SRC, TGT_IN)
    assert not np.allclose(logits[0], logits[1])


def _np_softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def test_luong_step_matches_numpy():
    rng = np.random.default_rng(0)
    h_H, states_SxH, w_HxH = rng.normal(size=4), rng.normal(size=(6, 4)), rng.normal(size=(4, 4))
    context, weights = seq2seq.luong_step(jnp.asarray(h_H), jnp.asarray(states_SxH), jnp.asarray(w_HxH))
    expected_w = _np_softmax(np.array([h_H @ w_HxH @ s for s in states_SxH]))
    np.testing.assert_allclose(weights, expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(context, expected_w @ states_SxH, rtol=1e-5, atol=1e-6)


def test_attention_weights_sum_to_one_and_match_numpy_per_step(rnn_models):
    attn = rnn_models["attention"]
    variables = {"params": attn["params"]}
    h_BxTxH, _, weights_BxTxS = attn["attend"](variables, SRC, TGT_IN)
    _, states_BxSxH = attn["encode"](variables, SRC)
    assert weights_BxTxS.shape == (2, 4, 5)
    np.testing.assert_allclose(weights_BxTxS.sum(-1), 1.0, rtol=1e-5)
    assert np.all(weights_BxTxS >= 0)
    assert np.ptp(np.asarray(weights_BxTxS), axis=-1).min() > 1e-3  # not uniform: the scores matter
    h, states, w = map(np.asarray, (h_BxTxH, states_BxSxH, attn["params"]["score"]))
    for b in range(2):
        for t in range(4):
            np.testing.assert_allclose(
                weights_BxTxS[b, t], _np_softmax(states[b] @ (h[b, t] @ w)), rtol=1e-4, atol=1e-6
            )


def test_transformer_decoder_is_causal_and_encoder_bidirectional():
    module = _model("transformer", d_model=8, num_heads=2)
    src, tgt_in = _tokens(5, (2, 6)), _tokens(6, (2, 4))
    params = seq2seq.init_seq2seq(module, jax.random.key(0), 6, 4)
    apply = jax.jit(module.apply)
    base = apply({"params": params}, src, tgt_in)
    assert base.shape == (2, 4, V)
    for t in range(3):
        changed = tgt_in.at[:, t + 1 :].set(1 + tgt_in[:, t + 1 :] % (V - 1))
        out = apply({"params": params}, src, changed)
        np.testing.assert_allclose(out[:, : t + 1], base[:, : t + 1], rtol=1e-5, atol=1e-6)
        assert not np.allclose(out[:, t + 1 :], base[:, t + 1 :])
    # Every decoder position (the first included) sees the whole source, the last token included.
    changed_src = src.at[:, -1].set(1 + src[:, -1] % (V - 1))
    assert not np.allclose(apply({"params": params}, changed_src, tgt_in)[:, 0], base[:, 0])


@pytest.mark.parametrize("name, reverse", [("copy", False), ("reverse", True)])
def test_task_targets(name, reverse):
    task = make_seq2seq_task(name, src_len=7, alphabet=5)
    batch = jax.jit(task.sample, static_argnums=1)(jax.random.key(0), 16)
    src = np.asarray(batch.src)
    assert src.shape == (16, 7) and src.min() >= 1 and src.max() <= 5
    expected = src[:, ::-1] if reverse else src
    np.testing.assert_array_equal(batch.tgt_out, expected)
    np.testing.assert_array_equal(batch.tgt_in[:, 0], BOS)
    np.testing.assert_array_equal(batch.tgt_in[:, 1:], expected[:, :-1])
    np.testing.assert_array_equal(np.take_along_axis(src, np.asarray(batch.src_position), 1), batch.tgt_out)
    np.testing.assert_array_equal(batch.position[3], np.arange(7))
    assert task.bits == pytest.approx(7 * np.log2(5))
    np.testing.assert_array_equal(task.sample(jax.random.key(0), 16).src, src)  # a pure function of the key


@pytest.mark.parametrize(
    "call, setting",
    [
        (lambda: make_seq2seq_task("copy", src_len=0), "task.src_len:"),
        (lambda: make_seq2seq_task("copy", src_len=4, alphabet=1), "task.alphabet:"),
        (lambda: make_seq2seq_task("sort", src_len=4), "task:"),
        (lambda: seq2seq.make_seq2seq("bogus", {}, vocab_size=V), "models:"),
        (
            lambda: seq2seq.make_seq2seq("final_state", dict(hidden_size=0), vocab_size=V),
            "model.final_state.hidden_size:",
        ),
        (lambda: seq2seq.make_seq2seq("attention", dict(cell="tcn"), vocab_size=V), "model.attention.cell:"),
        (lambda: seq2seq.make_seq2seq("transformer", dict(num_heads=3), vocab_size=V), "model.transformer.num_heads:"),
        (lambda: seq2seq.make_seq2seq("transformer", dict(width=3), vocab_size=V), "model.transformer.width:"),
    ],
)
def test_bad_settings_name_the_setting(call, setting):
    with pytest.raises(ConfigError, match=rf"^{setting}"):
        call()


def test_attention_learns_short_copy_and_step_compiles_once():
    task = make_seq2seq_task("copy", src_len=4, alphabet=8)
    module = _model("attention", hidden_size=32)
    config = train.TrainConfig(steps=200, batch_size=32, learning_rate=1e-2, warmup_steps=20)
    state = train.create_state(module, seq2seq.init_seq2seq(module, jax.random.key(0), 4, 4), config)
    step_fn = train.make_train_step(
        train.task_sampler(task, config.batch_size), jax.random.key(1), train.seq2seq_forward
    )
    accuracies = []
    state, step_metrics = step_fn(state)
    with count_compiles() as compiles:
        for _ in range(config.steps - 1):
            state, step_metrics = step_fn(state)
            accuracies.append(step_metrics["accuracy"])
    assert compiles() == 0
    # Each training batch is fresh, and scored before the update on it: held-out accuracy.
    final = float(np.mean(jax.device_get(accuracies[-25:])))
    assert final >= 0.9, final
    assert float(np.mean(jax.device_get(accuracies[:10]))) < 0.5
