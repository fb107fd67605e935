"""The README's result tables are generated from runs' CSVs: the generator works on a tiny run."""

import pathlib
import re

from rvt.studies import copy_distance
from scripts import readme_tables
from tests.test_experiment import tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_generator_writes_the_table_between_its_markers(tmp_path):
    config = tiny_config("rnn,transformer")
    config.seeds = 2
    copy_distance.run(config, str(tmp_path / "runs" / "cd"))
    text = "intro\n<!-- table:copy_distance workdir=runs/cd -->\nstale 0.99\n<!-- /table:copy_distance -->\nend\n"
    out, missing = readme_tables.rewrite(text, tmp_path)
    assert missing == [] and "stale" not in out and out.startswith("intro\n") and out.endswith("end\n")
    table = out.split("<!-- table:copy_distance workdir=runs/cd -->\n")[1].split("\n<!-- /table")[0].splitlines()
    assert table[0].startswith("| model | 1-4 | 5-6 | overall | params | seeds |")
    assert [line.split(" | ")[0] for line in table[2:]] == ["| tanh RNN", "| Transformer"]
    # two seeds: each cell is "mean [min, max]", the range inside the metric's own
    for line in table[2:]:
        assert line.endswith(" | 2 |")
        for mean, low, high in re.findall(r"(\d\.\d\d) \[(\d\.\d\d), (\d\.\d\d)\]", line):
            assert 0 <= float(low) <= float(mean) <= float(high) <= 1
        assert len(re.findall(r"\[\d\.\d\d, \d\.\d\d\]", line)) >= 3
    again, _ = readme_tables.rewrite(out, tmp_path)
    assert again == out  # idempotent


def test_the_readme_has_no_table_without_its_generator():
    text = (ROOT / "README.md").read_text()
    names = readme_tables.MARKER.findall(text)
    assert names and all(name in readme_tables.TABLES for name, _ in names)


def check_table(name: str, workdir) -> list[list[str]]:
    """The README generator ``name`` on a (tiny) run in ``workdir``: a well-formed table, every row as
    wide as its header, no NaN; returns its cells. Every experiment's end-to-end test calls this."""
    text = readme_tables.TABLES[name](pathlib.Path(workdir))
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(lines) >= 3 and set(lines[1]) <= {"|", "-"}, text
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert all(len(row) == len(cells[0]) for row in cells), text
    assert "nan" not in text.lower(), text
    return [cells[0], *cells[2:]]
