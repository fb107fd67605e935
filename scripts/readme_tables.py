"""Write the README's result tables from runs' CSVs: ``python -m scripts.readme_tables [--readme README.md]``.

Every generated table sits between ``<!-- table:NAME workdir=DIR -->`` and ``<!-- /table:NAME -->`` in the
README; this script replaces what is between the markers with a table drawn from the CSVs in DIR, so no
number in those tables is typed by hand. A table whose run is missing is left as it is and reported.
Numbers are means over seeds with the range of the seeds, ``mean [min, max]``: with 2-5 seeds a
t-interval is wider than an accuracy's range, the seeds' range never is.
"""

from __future__ import annotations

import pathlib
import re
import sys
from collections import defaultdict

from absl import app, flags

from rvt import io, metrics
from rvt.plotting.style import MODEL_STYLE

README = flags.DEFINE_string("readme", "README.md", "The file whose tables are rewritten.")
MARKER = re.compile(r"<!-- table:(\w+) workdir=(\S+) -->\n.*?<!-- /table:\1 -->", re.S)
# distance buckets; the longest trained distance (100 by default) stands alone, what lies beyond it apart
BUCKETS = ((1, 5), (5, 10), (10, 20), (20, 50), (50, 100), (100, 101), (101, 201), (201, 401), (401, 801))


def _cell(values, digits: int = 2) -> str:
    """Mean over seeds and the seeds' min-max range (NaNs, e.g. a regime never learnt, left out)."""
    values = [v for v in values if isinstance(v, int | float) and v == v]
    if not values:
        return "-"
    mean, low, high, n = metrics.mean_range(values)
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]" if n > 1 else f"{mean:.{digits}f}"


def copy_distance(workdir: pathlib.Path) -> str:
    """Accuracy by distance bucket (mean and min-max over seeds), overall, and parameters."""
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


def _label(model: str) -> str:
    return MODEL_STYLE.get(model, (None, model))[1]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _by(rows, *keys):
    out = defaultdict(list)
    for r in rows:
        out[tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]].append(r)
    return out


def _seeds(rows) -> int:
    return len({r.get("seed", 0) for r in rows})


def copy_memory(workdir: pathlib.Path) -> str:
    """Final loss / memoryless baseline (and copied-symbol accuracy) per model and delay."""
    rows = io.read_csv(workdir / io.RESULTS)
    delays = sorted({r["delay"] for r in rows})
    cells = _by(rows, "model", "delay")
    body = []
    for model in dict.fromkeys(r["model"] for r in rows):
        line = [_label(model)]
        for d in delays:
            sel = cells.get((model, d), [])
            ratio = _cell([r["loss_ratio"] for r in sel], 3) if sel else ""
            line.append(f"{ratio} ({_cell([r['accuracy'] for r in sel])})" if sel else "")
        body.append(line + [str(_seeds([r for r in rows if r["model"] == model]))])
    return _table(["delay T", *map(str, delays), "seeds"], body)


def bottleneck(workdir: pathlib.Path) -> str:
    """Token and sequence accuracy per model and source length (each hidden size and task its rows)."""
    rows = io.read_csv(workdir / io.RESULTS)
    lengths = sorted({r["src_len"] for r in rows})
    bits = {r["src_len"]: r["bits"] for r in rows}
    names = {"final_state": "final state", "attention": "+ attention", "transformer": "Transformer"}
    body = []
    for (task, hidden, model), sel in _by(rows, "task", "hidden", "model").items():
        by_len = _by(sel, "src_len")
        for metric, what in (("accuracy", "token"), ("seq_accuracy", "sequence")):
            label = f"{names.get(model, model)}, {what} accuracy"
            if len({r["task"] for r in rows}) > 1 or len({r["hidden"] for r in rows}) > 1:
                label += f" ({task}, hidden {hidden})"
            line = [label] + [_cell([r[metric] for r in by_len.get(n, [])]) if n in by_len else "" for n in lengths]
            body.append(line + [str(_seeds(sel))])
    return _table(["L (bits)", *(f"{n} ({bits[n]:g})" for n in lengths), "seeds"], body)


def gradients(workdir: pathlib.Path) -> str:
    """Fitted log-slope of the gradient norm per step, at init and trained; the trained models' accuracy."""
    summary = io.read_csv(workdir / "summary.csv")
    by = _by(summary, "model", "trained")
    models = list(dict.fromkeys(r["model"] for r in summary))
    body = [
        ["slope at init", *(_cell([r["slope"] for r in by[(m, False)]], 3) for m in models)],
        ["slope trained", *(_cell([r["slope"] for r in by[(m, True)]], 3) for m in models)],
        [
            "trained: accuracy on the targets that depend on an earlier token",
            *(_cell([r["eval_dependent_accuracy"] for r in by[(m, True)]]) for m in models),
        ],
        ["trained: accuracy on every target", *(_cell([r["eval_accuracy"] for r in by[(m, True)]]) for m in models)],
        ["seeds", *(str(len(by[(m, True)])) for m in models)],
    ]
    return _table(["", *map(_label, models)], body)


def online(workdir: pathlib.Path) -> str:
    """Per model: memory kept, train FLOPs per token, regimes learnt, accuracy at the end and overall."""
    summary = io.read_csv(workdir / "summary.csv")
    models = list(dict.fromkeys(r["model"] for r in summary))
    by = _by(summary, "model")

    def learnt(sel):
        return f"{sum(r['recovered'] for r in sel)} of {sum(r['regimes'] for r in sel)}"

    last = summary[0].get("final_segments", "")
    body = [
        ["memory kept between segments, per stream", *(f"{by[m][0]['memory_bytes_per_stream']:,} B" for m in models)],
        ["train FLOPs per token", *(f"{by[m][0]['flops_per_token'] / 1e3:,.0f} K" for m in models)],
        ["regimes learnt to 90% of own best (all seeds)", *(learnt(by[m]) for m in models)],
        [
            "segments to learn a regime (mean)",
            *(_cell([r["mean_recovery_segments"] for r in by[m]], 0) for m in models),
        ],
        [f"accuracy over the last {last} segments", *(_cell([r["final_accuracy"] for r in by[m]]) for m in models)],
        ["accuracy over the whole stream", *(_cell([r["mean_accuracy"] for r in by[m]]) for m in models)],
        ["seeds", *(str(len(by[m])) for m in models)],
    ]
    return _table(["", *map(_label, models)], body)


def throughput(workdir: pathlib.Path) -> str:
    """Fitted exponents of time against T, T = T_max / T = 1 time ratios and utilisation."""
    fits = io.read_csv(workdir / "exponents.csv")
    rows = io.read_csv(workdir / io.RESULTS)
    models = list(dict.fromkeys(r["model"] for r in fits))
    fit = {(r["model"], r["phase"]): r for r in fits}
    res = {(r["model"], r["phase"], r["T"]): r for r in rows}
    common_t = max(t for t in {r["T"] for r in rows} if all((m, "fwd", t) in res for m in models))
    body = [
        [f"time exponent, {phase} (T range in brackets)"]
        + [
            f"{fit[(m, phase)]['time_exponent']:.2f} ({fit[(m, phase)]['T_min']}-{fit[(m, phase)]['T_max']})"
            if (m, phase) in fit
            else ""
            for m in models
        ]
        for phase in ("fwd", "fwd_bwd")
    ]
    body.append(
        [f"time at T = {common_t} / time at T = 1, fwd"]
        + [f"{res[(m, 'fwd', common_t)]['ratio_to_T1']:.0f}" for m in models]
    )
    body.append(
        [f"% of matmul peak, fwd at T = {common_t}"]
        + [f"{100 * res[(m, 'fwd', common_t)]['peak_fraction']:.0f}" for m in models]
    )
    labels = [_label(m) if m in MODEL_STYLE else m.replace("transformer_", "Transformer (") + ")" for m in models]
    peak = rows[0]["peak_flops_per_s"] / 1e9
    return _table(["", *labels], body) + f"\n\nMatmul peak measured in the run: {peak:.0f} GFLOP/s."


def attention_cost(workdir: pathlib.Path) -> str:
    """Fitted exponents of bytes, FLOPs and time against T; where each layer stops fitting the budget."""
    limits = io.read_csv(workdir / "limits.csv")
    body = []
    for layer, sel in _by(limits, "layer").items():
        by_phase = {r["phase"]: r for r in sel}
        phases = [p for p in ("fwd", "fwd_bwd") if p in by_phase]

        def both(field, fmt="{:.2f}", phases=phases, by_phase=by_phase):
            return " / ".join(fmt.format(by_phase[p][field]) if by_phase[p][field] != "" else "-" for p in phases)

        body.append(
            [
                f"{layer}, {' / '.join(phases)}",
                both("bytes_exponent"),
                both("flops_exponent"),
                both("time_exponent"),
                both("crossing_T", "{:,.0f}"),
            ]
        )
    budget = limits[0]["budget_bytes"] / 2**30
    return _table(["", "bytes", "FLOPs", "time", f"crosses a {budget:.1f} GiB budget at T ~"], body)


def streaming(workdir: pathlib.Path) -> str:
    """Per-token step latency (median) at a few positions and the state kept, per mode."""
    rows = io.read_csv(workdir / io.RESULTS)
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    positions = sorted({r["position"] for r in rows})
    shown = [p for p in positions if p in (1, 1024, 8192, positions[-1])]
    at = {(r["mode"], r["position"]): r for r in rows}

    def latency(seconds):
        return f"{seconds * 1e6:.0f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"

    def size(n):
        return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB" if n >= 2**10 else f"{n} B"

    body = []
    for mode in modes:
        sel = [r for r in rows if r["mode"] == mode]
        cells = [latency(at[(mode, p)]["latency_median_s"]) if (mode, p) in at else "--" for p in shown]
        first, last = size(sel[0]["state_bytes"]), size(sel[-1]["state_bytes"])
        body.append([f"{sel[0]['model']}, {mode}", *cells, first if first == last else f"{first} -> {last}"])
    return _table(["per token", *(f"position {p:,}" for p in shown), "state bytes"], body)


def long_sequence(workdir: pathlib.Path) -> str:
    rows = io.read_csv(workdir / io.RESULTS)
    body = []
    for r in rows:
        needs = r["required_bytes"] / 2**20
        ran = f"{r['measured_s']:.3g} s" if r["ran"] else "no: exceeds the budget"
        body.append([f"{_label(r['model'])} {r['mode']} at T = {r['T']:,}", f"{needs:,.0f} MiB", ran])
    budget = rows[0]["budget_bytes"] / 2**30
    return _table(["", "needs (XLA memory analysis)", f"ran (budget {budget:.1f} GiB)"], body)


def edge(workdir: pathlib.Path) -> str:
    rows = io.read_csv(workdir / io.RESULTS)

    def size(n):
        return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB" if n >= 1e3 else f"{n} B"

    body = [
        [
            r["model"],
            f"{r['params']:,}",
            " / ".join(size(r[k]) for k in ("bytes_fp32", "bytes_bf16", "bytes_int8")),
            f"{r['flops_per_token'] / 1e3:,.0f} K",
            f"{r['latency_s'] * 1e6:.0f} us (p99 {r['latency_p99_s'] * 1e6:.0f})",
            size(r["state_bytes"]),
        ]
        for r in rows
    ]
    context = rows[0]["context"]
    return _table(
        ["model", "params", "fp32 / bf16 / int8", "FLOPs per token", "latency per step", f"state at {context:,}"], body
    )


def benchmarks(workdir: pathlib.Path) -> str:
    """Per model and table column (in %): mean over seeds [min, max], the statistic the paper reports (its
    max or mean over seeds), the paper's number, and the learning rate validation chose."""
    rows = io.read_csv(workdir / io.RESULTS)
    body = []
    for (model, setting, test), sel in _by(rows, "model", "setting", "test").items():
        values = [100 * r["accuracy"] for r in sel]
        paper = sel[0]["paper"]
        note = sel[0]["paper_note"] if paper == "" else ""
        statistic = sel[0].get("paper_statistic") or "max"
        rates = sorted({r["learning_rate"] for r in sel if r.get("learning_rate") not in ("", None)})
        body.append(
            [
                _label(model),
                " ".join(p for p in (setting, test) if p) or "-",
                _cell(values, 1),
                f"{statistic} {(max(values) if statistic == 'max' else sum(values) / len(values)):.1f}",
                f"{paper:.1f}" if paper != "" else (note.split(";")[0] if note else ""),
                sel[0]["paper_model"],
                ", ".join(f"{r:g}" for r in rates),
                str(len(sel)),
            ]
        )
    header = ["model", "setting", "ours (%): mean [min, max]", "ours: paper's statistic", "paper (%)"]
    return _table([*header, "paper's model", "learning rate", "seeds"], body)


def bench(workdir: pathlib.Path) -> str:
    """scripts/bench.py's CSV: ours against each peer (ratio = ours / peer, < 1: ours faster), target, met."""
    rows = io.read_csv(workdir / "bench.csv")
    body = [
        [
            r["case"],
            r["shape"],
            r["ours"],
            r["peer"],
            f"{r['ours_s']:.3g} s",
            f"{r['peer_s']:.3g} s",
            f"{r['ratio']:.2f}",
            f"<= {r['target']:g}" if r["target"] != "" else "",
            {True: "yes", False: "no"}.get(r["met"], ""),
        ]
        for r in rows
    ]
    table = _table(["case", "shape", "ours", "peer", "ours", "peer", "ratio", "target", "met"], body)
    meta_path = workdir / "bench_meta.json"
    if not meta_path.exists():
        return table
    meta = io.read_json(meta_path)
    peak = meta.get("matmul_peak_flops", 0) / 1e9
    about = (
        f"{meta.get('device_kind')} ({meta.get('cpu_count')} cores), jax {meta.get('jax')}, torch {meta.get('torch')}"
    )
    return table + f"\n\nMeasured on {about}; matmul peak in the same run {peak:.0f} GFLOP/s."


def wall_times(root: pathlib.Path) -> str:
    """Each default run's wall time, from the ``wall_s`` its config.json records (runs/<experiment>)."""
    body = []
    names = ["copy_distance", "throughput", "bottleneck", "gradients", "copy_memory", "attention_cost"]
    names += ["streaming", "long_sequence", "edge", "online"]
    names += [f"benchmarks_{t}" for t in ("selective_copy", "mqar", "induction_heads", "chomsky")]
    for name in names:
        path = root / name / io.CONFIG
        if path.exists():
            saved = io.read_json(path)
            if saved.get("wall_s") is not None:
                seeds = saved.get("resolved", {}).get("seeds")
                note = " (continued)" if saved.get("continued") else ""
                minutes, seconds = divmod(round(saved["wall_s"]), 60)
                label = f"benchmarks --config.table={name[11:]}" if name.startswith("benchmarks_") else name
                body.append([f"`{label}`", f"{minutes} min {seconds:02d} s{note}", str(len(seeds)) if seeds else "-"])
    return _table(["experiment", "default wall time", "seeds"], body)


TABLES = {
    "copy_distance": copy_distance,
    "copy_memory": copy_memory,
    "bottleneck": bottleneck,
    "gradients": gradients,
    "online": online,
    "throughput": throughput,
    "attention_cost": attention_cost,
    "streaming": streaming,
    "long_sequence": long_sequence,
    "edge": edge,
    "benchmarks": benchmarks,
    "bench": bench,
    "wall_times": wall_times,
}


def rewrite(text: str, root: pathlib.Path) -> tuple[str, list[str]]:
    """The README with every marked table regenerated; and the tables that could not be (run missing)."""
    missing = []

    def replace(match: re.Match) -> str:
        name, workdir = match.group(1), root / match.group(2)
        needed = {"wall_times": workdir, "bench": workdir / "bench.csv"}.get(name, workdir / io.RESULTS)
        if name not in TABLES or not needed.exists():
            missing.append(f"{name} ({workdir})")
            return match.group(0)
        table = TABLES[name](workdir)
        return f"<!-- table:{name} workdir={match.group(2)} -->\n{table}\n<!-- /table:{name} -->"

    return MARKER.sub(replace, text), missing


def main(argv):
    del argv
    readme = pathlib.Path(README.value)
    text, missing = rewrite(readme.read_text(), readme.parent)
    readme.write_text(text)
    for name in missing:
        print(f"not regenerated (no run): {name}", file=sys.stderr)


if __name__ == "__main__":
    app.run(main)
