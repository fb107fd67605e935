"""Training sharded over 4 (simulated) CPU devices equals training on one device."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = """
import json, sys
import jax, numpy as np
from rvt import models, sharding, train
from rvt.tasks import make_task

task = make_task("variable_copy", min_distance=2, max_distance=6, num_symbols=2)
config = train.TrainConfig(steps=5, batch_size=8, warmup_steps=1, log_every=5, eval_batches=1, eval_batch_size=16)
module, _ = models.make_model("lstm", dict(hidden_size=8), vocab_size=task.vocab_size, length=task.length)
params = models.init_params(module, jax.random.key(0), task.length)
result = train.train(module, params, task, config, jax.random.key(1))
step = train.make_train_step(train.task_sampler(task, 8), jax.random.key(1))
text = step.lower(result.state).compile().as_text()

# four seeds in one vmapped program: on 4 devices each device trains one seed, with no communication
seed_keys = jax.random.split(jax.random.key(2), 4)
params_S = jax.vmap(lambda k: models.init_params(module, k, task.length))(seed_keys)
seeds = train.train(module, params_S, task, config, jax.random.split(jax.random.key(3), 4), seed_axis=True)
leaf = jax.tree.leaves(seeds.state.params)[0]
print(json.dumps(dict(
    seed_params=[np.asarray(x).ravel().tolist() for x in jax.tree.leaves(seeds.state.params)],
    seeds_split=len(leaf.sharding.device_set) == len(jax.devices()) and not leaf.sharding.is_fully_replicated,
)))
print(json.dumps(dict(
    devices=len(jax.devices()),
    mesh=sharding.data_mesh().size,
    params=[np.asarray(x).ravel().tolist() for x in jax.tree.leaves(result.state.params)],
    loss=result.history[-1]["loss"],
    partitioned="all-reduce" in text,
)))
"""


def _run(devices: int) -> dict:
    flags = os.environ.get("XLA_FLAGS", "")  # the suite's compile settings, plus the simulated devices
    env = dict(os.environ, XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count={devices}".strip())
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    return {**json.loads(lines[-2]), **json.loads(lines[-1])}


def test_four_devices_train_like_one():
    one, four = _run(1), _run(4)
    assert (one["devices"], one["mesh"], four["devices"], four["mesh"]) == (1, 1, 4, 4)
    assert four["partitioned"] and not one["partitioned"]  # the batch really is split: gradients all-reduced
    for a, b in zip(one["params"], four["params"], strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert abs(one["loss"] - four["loss"]) < 1e-5
    # Seeds on a vmapped axis: split over the 4 devices (one each), the same numbers as on one device.
    assert four["seeds_split"] and not one["seeds_split"]
    for a, b in zip(one["seed_params"], four["seed_params"], strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
