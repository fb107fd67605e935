"""Tasks: the distance invariant on random configs, exact layouts, published baselines, errors.

Sampling runs eagerly here on purpose. Compiling a jitted sampler costs ~0.5 s per config on CPU,
while eager JAX caches each primitive by shape, so configs that share shapes but differ in alphabet,
vocabulary or distance range cost almost nothing. Strategies therefore vary those freely and draw
shape-setting sizes (lengths, symbol counts) from small sets. One test runs the jitted path.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rvt.errors import ConfigError
from rvt.tasks import TASKS, Batch, Task, make_task, register_task, registry, task_fields
from rvt.tasks.copy import CopyMemory, SelectiveCopy, VariableCopy
from rvt.tasks.formal import ChomskyTask, InductionHeads
from rvt.tasks.recall import AssociativeRecall
from rvt.typing import NO_DISTANCE

BATCH = 8
SEEDS = st.integers(0, 2**32 - 1)


def sample_np(task: Task, seed: int, batch_size: int = BATCH) -> dict[str, np.ndarray]:
    batch = task.sample(jax.random.key(seed), batch_size)
    return {f.name: np.asarray(getattr(batch, f.name)) for f in dataclasses.fields(batch)}


def check_invariants(task: Task, b: dict[str, np.ndarray]) -> np.ndarray:
    """The checks every task must pass; returns the [B, T] mask of labelled positions."""
    shape = (BATCH, task.length)
    for name, dtype in [
        ("inputs", np.int32),
        ("targets", np.int32),
        ("mask", np.float32),
        ("distance", np.int32),
    ]:
        assert b[name].shape == shape, name
        assert b[name].dtype == dtype, name
    for name in ("inputs", "targets"):
        assert b[name].min() >= 0 and b[name].max() < task.vocab_size, name
    assert set(np.unique(b["mask"])) <= {0.0, 1.0}

    distance_BxT = b["distance"]
    labelled_BxT = distance_BxT >= 0
    assert np.all(distance_BxT[~labelled_BxT] == NO_DISTANCE)
    assert distance_BxT.max() <= task.max_distance
    source_BxT = np.arange(task.length)[None, :] - distance_BxT
    assert np.all(source_BxT[labelled_BxT] >= 0)
    recalled_BxT = np.take_along_axis(b["inputs"], np.where(labelled_BxT, source_BxT, 0), axis=1)
    np.testing.assert_array_equal(recalled_BxT[labelled_BxT], b["targets"][labelled_BxT])
    # In these tasks an unlabelled target is always the blank, so blanks need no memory.
    assert np.all(b["targets"][~labelled_BxT] == 0)
    return labelled_BxT


# Strategies: shape-setting sizes from small sets (see module docstring), the rest free.
@st.composite
def copy_memories(draw):
    return CopyMemory(
        delay=draw(st.sampled_from([1, 9])),
        num_symbols=draw(st.sampled_from([1, 3])),
        alphabet=draw(st.integers(2, 12)),
    )


@st.composite
def variable_copies(draw):
    num = draw(st.sampled_from([1, 3]))
    length = draw(st.sampled_from([12, 40]))
    auto_length = draw(st.booleans())
    hi = length - num if auto_length else draw(st.integers(num, length - num))
    return VariableCopy(
        min_distance=draw(st.integers(num, hi)),
        max_distance=hi,
        num_symbols=num,
        vocab_size=draw(st.integers(num + 3, num + 12)),
        length=0 if auto_length else length,
        distractors=draw(st.booleans()),
        sampling=draw(st.sampled_from(["uniform", "log_uniform"])),
    )


@st.composite
def selective_copies(draw):
    return SelectiveCopy(
        context=draw(st.sampled_from([3, 16])),
        num_data=draw(st.sampled_from([1, 3])),
        alphabet=draw(st.integers(2, 12)),
    )


@st.composite
def associative_recalls(draw):
    pairs = draw(st.sampled_from([1, 3]))
    # Key and query-slot counts (num_keys, length - 2 num_pairs) match SelectiveCopy's contexts, so
    # the costly permutation compiles are shared; num_keys 3 = num_pairs 3 uses every key.
    return AssociativeRecall(
        num_pairs=pairs,
        length=2 * pairs + draw(st.sampled_from([3, 16])),
        num_keys=draw(st.sampled_from([3, 16])),
        num_values=draw(st.integers(2, 12)),
    )


@settings(max_examples=8, deadline=None)
@given(copy_memories(), SEEDS)
def test_copy_memory_invariants(task, seed):
    b = sample_np(task, seed)
    labelled_BxT = check_invariants(task, b)
    assert np.all(b["mask"] == 1.0)  # every position scored, as in the paper
    assert np.all(labelled_BxT.sum(axis=1) == task.num_symbols)
    assert np.all(b["distance"][labelled_BxT] == task.delay + task.num_symbols)


@settings(max_examples=8, deadline=None)
@given(variable_copies(), SEEDS)
def test_variable_copy_invariants(task, seed):
    assert task.length in (12, 40)  # length=0 resolved to max_distance + num_symbols
    b = sample_np(task, seed)
    labelled_BxT = check_invariants(task, b)
    np.testing.assert_array_equal(b["mask"], labelled_BxT)
    assert np.all(labelled_BxT.sum(axis=1) == task.num_symbols)
    distance_BxK = b["distance"][labelled_BxT].reshape(BATCH, task.num_symbols)
    assert distance_BxK.min() >= task.min_distance and distance_BxK.max() <= task.max_distance
    assert np.all(distance_BxK == distance_BxK[:, :1])  # one delay per example
    # Cue i names symbol i: the cue token at each labelled position is A + 1 + i.
    cues_BxK = b["inputs"][labelled_BxT].reshape(BATCH, task.num_symbols)
    assert np.all(cues_BxK - task.alphabet - 1 == np.arange(task.num_symbols)[None, :])
    assert np.all(b["inputs"][:, : task.num_symbols] <= task.alphabet)
    assert np.all(b["inputs"][:, : task.num_symbols] >= 1)


@settings(max_examples=8, deadline=None)
@given(selective_copies(), SEEDS)
def test_selective_copy_invariants(task, seed):
    b = sample_np(task, seed)
    labelled_BxT = check_invariants(task, b)
    np.testing.assert_array_equal(b["mask"], labelled_BxT)
    assert np.all(labelled_BxT[:, task.context :]) and not np.any(labelled_BxT[:, : task.context])
    assert np.all(b["inputs"][:, task.context :] == task.marker)
    source_BxK = task.context + np.arange(task.num_data) - b["distance"][:, task.context :]
    assert np.all(np.diff(source_BxK, axis=1) > 0)  # distinct data positions, recalled in order
    assert np.all(source_BxK < task.context)
    # Noise everywhere else in the context: exactly num_data non-blank tokens.
    assert np.all((b["inputs"][:, : task.context] != 0).sum(axis=1) == task.num_data)


@settings(max_examples=8, deadline=None)
@given(associative_recalls(), SEEDS)
def test_associative_recall_invariants(task, seed):
    pairs = task.num_pairs
    b = sample_np(task, seed)
    labelled_BxT = check_invariants(task, b)
    np.testing.assert_array_equal(b["mask"], labelled_BxT)
    assert np.all(labelled_BxT.sum(axis=1) == pairs)
    assert not np.any(labelled_BxT[:, : 2 * pairs])
    keys_BxP = b["inputs"][:, 0 : 2 * pairs : 2]
    assert np.all((keys_BxP >= 1) & (keys_BxP <= task.num_keys))
    assert np.all(b["inputs"][:, 1 : 2 * pairs : 2] > task.num_keys)
    assert all(len(set(row)) == pairs for row in keys_BxP.tolist())
    for row in range(BATCH):
        (query_pos,) = np.nonzero(labelled_BxT[row])
        value_pos = query_pos - b["distance"][row, query_pos]
        assert np.all(value_pos % 2 == 1) and np.all(value_pos < 2 * pairs)
        # The query token is the key stored just before the value it recalls.
        np.testing.assert_array_equal(b["inputs"][row, query_pos], b["inputs"][row, value_pos - 1])
        assert sorted(b["inputs"][row, query_pos]) == sorted(keys_BxP[row])
        assert np.all(b["inputs"][row, 2 * pairs :][~labelled_BxT[row, 2 * pairs :]] == 0)


# One config per task, with shapes the strategies above already use.
FIXED = {
    "copy_memory": CopyMemory(delay=9, num_symbols=3, alphabet=8),
    "variable_copy": VariableCopy(min_distance=3, max_distance=9, num_symbols=3, vocab_size=12),
    "selective_copy": SelectiveCopy(context=16, num_data=3, alphabet=8),
    "associative_recall": AssociativeRecall(num_pairs=3, length=22, num_keys=16, num_values=8),
    "induction_heads": InductionHeads(length=12, alphabet=5),
    "chomsky": ChomskyTask(rule="duplicate_string", min_length=1, max_length=6),
}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_sampling_is_a_pure_function_of_the_key(name):
    task = FIXED[name]
    first, again, other = sample_np(task, 0), sample_np(task, 0), sample_np(task, 1)
    for field in first:
        np.testing.assert_array_equal(first[field], again[field])
    assert not np.array_equal(first["inputs"], other["inputs"])
    assert len({row.tobytes() for row in first["inputs"]}) > 1  # examples differ within a batch


@pytest.mark.parametrize("name", sorted(FIXED))
def test_sampling_traces_under_jit(name):
    # Tracing with an abstract key fails on any Python control flow over traced values; compiling
    # adds nothing to that, and costs ~1 s a task (the jitted run is checked once below).
    task = FIXED[name]
    shapes = jax.eval_shape(jax.jit(lambda key: task.sample(key, 5)), jax.random.key(0))
    assert isinstance(shapes, Batch)
    assert shapes.inputs.shape == shapes.distance.shape == shapes.mask.shape == (5, task.length)


def test_jitted_sampling_matches_eager():
    task = FIXED["copy_memory"]
    jitted = jax.jit(lambda key: task.sample(key, BATCH))(jax.random.key(3))
    eager = sample_np(task, 3)
    for field in eager:
        np.testing.assert_array_equal(np.asarray(getattr(jitted, field)), eager[field])


@pytest.mark.parametrize("name", sorted(FIXED))
def test_max_distance_is_reached(name):
    """max_distance is tight: 256 examples carry it (and VariableCopy every distance)."""
    task = FIXED[name]
    # 32 batches of BATCH rather than one batch of 256: same examples' worth, no new compiles.
    distance = np.concatenate([sample_np(task, seed)["distance"] for seed in range(32)])
    assert distance.max() == task.max_distance
    if name == "variable_copy":
        labelled = np.unique(distance[distance >= 0])
        np.testing.assert_array_equal(labelled, np.arange(task.min_distance, task.max_distance + 1))


def test_copy_memory_layout():
    task = CopyMemory(delay=9, num_symbols=3, alphabet=4)  # shapes shared with FIXED
    assert (task.vocab_size, task.length, task.max_distance, task.marker) == (6, 15, 12, 5)
    b = sample_np(task, 7)
    symbols_BxK = b["inputs"][:, :3]
    assert np.all((symbols_BxK >= 1) & (symbols_BxK <= 4))
    # 3 symbols, delay - 1 = 8 blanks, the marker at delay + num_symbols - 1 = 11, 3 blanks
    layout = [0] * 8 + [5] + [0] * 3
    np.testing.assert_array_equal(b["inputs"][:, 3:], np.tile(layout, (BATCH, 1)))
    np.testing.assert_array_equal(b["targets"][:, :12], 0)
    np.testing.assert_array_equal(b["targets"][:, 12:], symbols_BxK)
    np.testing.assert_array_equal(b["distance"], np.tile([-1] * 12 + [12] * 3, (BATCH, 1)))
    np.testing.assert_array_equal(b["mask"], 1.0)


@pytest.mark.parametrize("delay, expected", [(100, 0.173), (200, 0.0945), (300, 0.0650), (500, 0.0400), (1000, 0.0204)])
def test_copy_memory_baseline_matches_reference(delay, expected):
    # REFERENCE.md: 10 ln 8 / (T + 20) for 10 symbols from an alphabet of 8.
    baseline = CopyMemory(delay=delay, num_symbols=10, alphabet=8).memoryless_baseline()
    assert baseline == pytest.approx(expected, abs=0.001 if delay == 100 else 1e-4)


def test_copy_memory_baseline_is_memoryless_cross_entropy():
    task = CopyMemory(delay=9, num_symbols=3, alphabet=5)
    b = sample_np(task, 11)
    # The memoryless predictor: certain blank until the recall, then uniform over the alphabet.
    probs_TxV = np.zeros((task.length, task.vocab_size))
    probs_TxV[: -task.num_symbols, 0] = 1.0
    probs_TxV[-task.num_symbols :, 1 : task.alphabet + 1] = 1.0 / task.alphabet
    p_BxT = probs_TxV[np.arange(task.length)[None, :], b["targets"]]
    with np.errstate(divide="ignore"):
        nll_BxT = -np.log(p_BxT)
    cross_entropy = (nll_BxT * b["mask"]).sum() / b["mask"].sum()
    assert cross_entropy == pytest.approx(task.memoryless_baseline(), rel=1e-9)
    assert cross_entropy == pytest.approx(3 * math.log(5) / 15, rel=1e-9)


@pytest.mark.parametrize(
    "name, sizes, prefix",
    [
        ("copy_memory", dict(delay=0), "task.delay"),
        ("copy_memory", dict(num_symbols=0), "task.num_symbols"),
        ("copy_memory", dict(alphabet=1), "task.alphabet"),
        ("variable_copy", dict(num_symbols=0), "task.num_symbols"),
        ("variable_copy", dict(min_distance=1, num_symbols=2), "task.min_distance"),
        ("variable_copy", dict(min_distance=5, max_distance=4), "task.max_distance"),
        ("variable_copy", dict(num_symbols=2, min_distance=2, vocab_size=4), "task.vocab_size"),
        ("variable_copy", dict(sampling="gaussian"), "task.sampling"),
        ("variable_copy", dict(max_distance=60, length=60), "task.length"),
        ("selective_copy", dict(num_data=0), "task.num_data"),
        ("selective_copy", dict(context=3, num_data=4), "task.context"),
        ("selective_copy", dict(alphabet=1), "task.alphabet"),
        ("associative_recall", dict(num_pairs=0), "task.num_pairs"),
        ("associative_recall", dict(num_pairs=5, num_keys=4), "task.num_keys"),
        ("associative_recall", dict(num_values=1), "task.num_values"),
        ("associative_recall", dict(num_pairs=8, length=23), "task.length"),
    ],
)
def test_invalid_settings_name_the_field(name, sizes, prefix):
    with pytest.raises(ConfigError) as raised:
        make_task(name, **sizes)
    assert str(raised.value).startswith(prefix + ": ")
    with pytest.raises(ConfigError, match="^" + prefix.replace(".", r"\.") + ": "):
        TASKS[name](**sizes)


def test_variable_copy_distractors_fill_the_gap_with_symbols():
    plain = VariableCopy(min_distance=4, max_distance=9, num_symbols=2, vocab_size=8)
    noisy = VariableCopy(min_distance=4, max_distance=9, num_symbols=2, vocab_size=8, distractors=True)
    for task in (plain, noisy):
        b = sample_np(task, 5)
        filler = np.ones_like(b["inputs"], dtype=bool)
        filler[:, : task.num_symbols] = False
        filler &= b["mask"] == 0  # neither a symbol nor a cue
        values = b["inputs"][filler]
        if task.distractors:
            assert values.min() >= 1 and values.max() <= task.alphabet  # symbols, never cues
            assert len(np.unique(values)) == task.alphabet
        else:
            assert np.all(values == 0)
        assert np.all(b["targets"][filler] == 0)


def test_variable_copy_log_uniform_has_equal_mass_per_octave():
    task = VariableCopy(min_distance=1, max_distance=255, sampling="log_uniform")
    distance = np.asarray(task.sample(jax.random.key(0), 8192).distance).max(axis=1)
    assert distance.min() == 1 and distance.max() <= 255
    octaves = np.histogram(distance, bins=[1, 2, 4, 8, 16, 32, 64, 128, 256])[0] / len(distance)
    np.testing.assert_allclose(octaves, 1 / 8, atol=0.02)  # uniform sampling puts half in the last
    uniform = VariableCopy(min_distance=1, max_distance=255)
    distance = np.asarray(uniform.sample(jax.random.key(0), 8192).distance).max(axis=1)
    assert np.mean(distance >= 128) > 0.45


def test_variable_copy_messages_give_the_needed_size():
    with pytest.raises(ConfigError) as raised:
        VariableCopy(min_distance=2, max_distance=60, num_symbols=2, length=50)
    assert str(raised.value) == ("task.length: 50 cannot hold max_distance 60 + num_symbols 2 (needs >= 62)")
    with pytest.raises(ConfigError, match=r"^task\.vocab_size: 4 .*needs >= 5"):
        VariableCopy(min_distance=2, num_symbols=2, vocab_size=4)
    assert VariableCopy(min_distance=2, num_symbols=2, vocab_size=5).alphabet == 2


def test_variable_copy_length_defaults_to_smallest_that_fits():
    assert VariableCopy(max_distance=30, num_symbols=2, min_distance=2).length == 32
    assert VariableCopy(max_distance=30, length=50).length == 50
    assert make_task("variable_copy", max_distance=7).length == 8


def test_make_task_unknown_name_and_setting():
    with pytest.raises(ConfigError) as raised:
        make_task("nope")
    assert str(raised.value) == (
        "task.name: unknown task 'nope'; known: copy_memory, variable_copy, selective_copy, associative_recall, "
        "induction_heads, chomsky"
    )
    with pytest.raises(ConfigError) as raised:
        make_task("copy_memory", delay=3, dealy=3)
    assert str(raised.value) == ("task.dealy: unknown setting for copy_memory; known: delay, num_symbols, alphabet")
    with pytest.raises(ConfigError, match=r"^task\.name: unknown task"):
        task_fields("nope")


def test_make_task_builds_the_registered_class():
    assert make_task("selective_copy", context=8) == SelectiveCopy(context=8)
    assert task_fields("associative_recall") == dict(num_pairs=8, length=64, num_keys=16, num_values=16)
    assert set(TASKS) == {
        "copy_memory",
        "variable_copy",
        "selective_copy",
        "associative_recall",
        "induction_heads",
        "chomsky",
    }


def test_register_task(monkeypatch):
    monkeypatch.setattr(registry, "TASKS", dict(registry.TASKS))

    @dataclasses.dataclass(frozen=True)
    class Echo(CopyMemory):
        pass

    register_task("echo", Echo)
    assert make_task("echo", delay=3) == Echo(delay=3)
    with pytest.raises(ValueError, match="already registered"):
        register_task("copy_memory", Echo)
    with pytest.raises(TypeError):
        register_task("not_a_task", dict)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_chance_accuracy_is_the_accuracy_of_a_blind_guess(name):
    """A guesser that knows which targets are blank but guesses one fixed token for every other
    scored target scores ``chance_accuracy`` (within sampling error): the line the figures draw."""
    task = FIXED[name]
    batches = [sample_np(task, seed) for seed in range(32)]
    targets = np.concatenate([b["targets"] for b in batches])
    scored = np.concatenate([b["mask"] for b in batches]) > 0
    guess = targets[scored & (targets != 0)].min()  # one token that scored targets can be
    hits = np.where(targets == 0, True, targets == guess)[scored]
    sigma = math.sqrt(task.chance_accuracy * (1 - task.chance_accuracy) / hits.size)
    assert abs(hits.mean() - task.chance_accuracy) < 4 * sigma + 1e-9
