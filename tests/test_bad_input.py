"""Every bad setting of every experiment: one ConfigError naming the setting, and nothing written.

The bad settings live beside each experiment's tiny config (``BAD_INPUTS`` in its test module); this is
the one test that tries them all. The command-line side (one line, exit status 2) is in test_experiment.py.
"""

import importlib

import pytest

from rvt.errors import ConfigError
from tests import (
    test_attention_cost,
    test_benchmarks,
    test_bottleneck,
    test_copy_memory,
    test_edge,
    test_experiment,
    test_gradients,
    test_long_sequence,
    test_online,
    test_streaming,
    test_throughput,
)

EXPERIMENTS = [
    ("attention_cost", test_attention_cost.tiny_config, test_attention_cost.BAD_INPUTS),
    ("benchmarks", lambda: test_benchmarks.tiny("chomsky"), test_benchmarks.BAD_INPUTS),
    ("bottleneck", test_bottleneck.tiny_config, test_bottleneck.BAD_INPUTS),
    ("copy_memory", test_copy_memory.tiny_config, test_copy_memory.BAD_INPUTS),
    ("edge", test_edge.tiny_config, test_edge.BAD_INPUTS),
    ("copy_distance", test_experiment.tiny_config, test_experiment.BAD_INPUTS),
    ("gradients", test_gradients.tiny_config, test_gradients.BAD_INPUTS),
    ("long_sequence", test_long_sequence.tiny_config, test_long_sequence.BAD_INPUTS),
    ("online", test_online._config, test_online.BAD_INPUTS),
    ("streaming", test_streaming.tiny_config, test_streaming.BAD_INPUTS),
    ("throughput", test_throughput.tiny_config, test_throughput.BAD_INPUTS),
]
CASES = [(study, config_fn, change, setting) for study, config_fn, bad in EXPERIMENTS for change, setting in bad]


@pytest.mark.parametrize("study, config_fn, change, setting", CASES, ids=[f"{c[0]}-{c[3].rstrip(':')}" for c in CASES])
def test_bad_input_names_the_setting_and_writes_nothing(tmp_path, study, config_fn, change, setting):
    config = config_fn()
    change(config)
    with pytest.raises(ConfigError, match=rf"^{setting}"):
        importlib.import_module(f"rvt.studies.{study}").run(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
