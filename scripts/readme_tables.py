"""Write the README's result tables from runs' CSVs: ``python -m scripts.readme_tables [--readme README.md]``.

Every generated table sits between ``<!-- table:NAME workdir=DIR -->`` and ``<!-- /table:NAME -->`` in the
README; this script replaces what is between the markers with a table drawn from the CSVs in DIR, so no
number in those tables is typed by hand. A table whose run is missing is left as it is and reported.
Numbers are means over seeds with the half-width of their 95% interval (Student t).
"""

from __future__ import annotations

import pathlib
import re
import sys
from collections import defaultdict

from absl import app, flags

from rvt import io, metrics
from rvt.plotting.style import MODEL_STYLE

_README = flags.DEFINE_string("readme", "README.md", "The file whose tables are rewritten.")
MARKER = re.compile(r"<!-- table:(\w+) workdir=(\S+) -->\n.*?<!-- /table:\1 -->", re.S)
BUCKETS = ((1, 5), (5, 10), (10, 20), (20, 50), (50, 100), (100, 201))


def _cell(values) -> str:
    mean, half, n = metrics.mean_interval(values)
    return f"{mean:.2f} ± {half:.2f}" if n > 1 else f"{mean:.2f}"


def copy_distance(workdir: pathlib.Path) -> str:
    """Accuracy by distance bucket (mean ± 95% interval over seeds), overall, and parameters."""
    rows = io.read_csv(workdir / io.RESULTS)
    summary = io.read_csv(workdir / "summary.csv")
    bottom, top = min(r["distance"] for r in rows), max(r["distance"] for r in rows)
    buckets = [(max(lo, bottom), min(hi, top + 1)) for lo, hi in BUCKETS if lo <= top and hi > bottom]
    by = defaultdict(lambda: defaultdict(list))  # model -> seed -> rows
    for r in rows:
        by[r["model"]][r["seed"]].append(r)
    header = [
        "model",
        *(f"{lo}-{hi - 1}" if hi - 1 > lo else f"{lo}" for lo, hi in buckets),
        "overall",
        "params",
        "seeds",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, seeds in by.items():
        cells = []
        for lo, hi in buckets:
            per_seed = []
            for seed_rows in seeds.values():
                sel = [r for r in seed_rows if lo <= r["distance"] < hi]
                count = sum(r["count"] for r in sel)
                if count:
                    per_seed.append(sum(r["accuracy"] * r["count"] for r in sel) / count)
            cells.append(_cell(per_seed) if per_seed else "")
        overall = [r["accuracy"] for r in summary if r["model"] == model]
        params = next(r["params"] for r in summary if r["model"] == model)
        label = MODEL_STYLE.get(model, (None, model))[1]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_cell(overall)} | {params:,} | {len(seeds)} |")
    return "\n".join(lines)


TABLES = {"copy_distance": copy_distance}


def rewrite(text: str, root: pathlib.Path) -> tuple[str, list[str]]:
    """The README with every marked table regenerated; and the tables that could not be (run missing)."""
    missing = []

    def replace(match: re.Match) -> str:
        name, workdir = match.group(1), root / match.group(2)
        if name not in TABLES or not (workdir / io.RESULTS).exists():
            missing.append(f"{name} ({workdir})")
            return match.group(0)
        table = TABLES[name](workdir)
        return f"<!-- table:{name} workdir={match.group(2)} -->\n{table}\n<!-- /table:{name} -->"

    return MARKER.sub(replace, text), missing


def main(argv):
    del argv
    readme = pathlib.Path(_README.value)
    text, missing = rewrite(readme.read_text(), readme.parent)
    readme.write_text(text)
    for name in missing:
        print(f"not regenerated (no run): {name}", file=sys.stderr)


if __name__ == "__main__":
    app.run(main)
