"""Reproduce every result: run each experiment at its default, regenerate the README's tables, write a report.

    python -m scripts.reproduce              # the whole plan; finished runs are skipped, interrupted ones resume
    python -m scripts.reproduce --dry_run    # print the plan and its estimated time, run nothing
    python -m scripts.reproduce --only=benchmarks_chomsky,copy_memory

Each step is ``python -m experiments.<experiment> --workdir <root>/<name> [overrides]``, run as its own
process (its log in ``<root>/<name>.log``), one after another: on 2 cores two runs at once would only
slow each other and spoil their timings. A step whose run has finished costs nothing (the experiment
says so); one that was interrupted continues from its checkpoints. Then ``scripts.readme_tables``
rewrites the README's tables and ``<root>/report.md`` gets one section per step: the command, its wall
time, its figures and its table (with the papers' numbers beside ours where a table has them).

The estimate before the plan starts is each step's ``wall_s`` from its last finished run where one
exists, else the time its config's docstring states for 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys
import time

from absl import app, flags

from rvt import io
from scripts import readme_tables

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The script's flags, defined when it runs (not on import: scripts.sweep has a --root of its own)."""
    flags.DEFINE_string("root", "runs", "Where every step's workdir goes (<root>/<name>).")
    flags.DEFINE_bool("dry_run", False, "Print the plan and its estimated time; run nothing.")
    flags.DEFINE_list("only", [], "Run only these steps (by name); default: every step.")


@dataclasses.dataclass(frozen=True)
class Step:
    name: str  # the workdir's name under the root; the README's tables name the same folder
    experiment: str  # experiments.<experiment>
    estimate_s: float  # 2 CPU cores, from the config's docstring (used until a finished run gives wall_s)
    overrides: tuple[str, ...] = ()
    table: str = ""  # the readme_tables generator of its results ('' : the experiment's own name)

    def command(self, root: pathlib.Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            f"experiments.{self.experiment}",
            f"--workdir={root / self.name}",
            *self.overrides,
        ]


PLAN = (
    Step("copy_distance", "copy_distance", 120),
    Step("throughput", "throughput", 75),
    Step("bottleneck", "bottleneck", 130),
    Step("gradients", "gradients", 150),
    Step("copy_memory", "copy_memory", 180),
    Step("attention_cost", "attention_cost", 45),
    Step("streaming", "streaming", 40),
    Step("long_sequence", "long_sequence", 20),
    Step("edge", "edge", 20),
    Step("online", "online", 25),
    # the README's further runs: the gated cells' limit beyond the trained distances, a budget at which
    # an LSTM leaves the copying problem's baseline, and where a Transformer's plasticity is lost
    Step("copy_distance_limit", "copy_distance", 180, ("--config.eval_max_distance=400",), "copy_distance"),
    Step(
        "copy_memory_long",
        "copy_memory",
        900,
        (
            "--config.models=lstm",
            "--config.delays=10,100",
            "--config.seeds=1",
            "--config.train.steps=5000",
            "--config.train.batch_size=128",
            "--config.model.lstm.hidden_size=128",
            "--config.train.learning_rate=3e-3",
        ),
        "copy_memory",
    ),
    Step(
        "online_plasticity",
        "online",
        35,
        ("--config.models=transformer", "--config.on_change=none,reset_optimizer,reinit_qkv"),
        "online",
    ),
    *(  # measured on 2 cores (mqar: not yet run at its default; its 10-minute aim)
        Step(f"benchmarks_{table}", "benchmarks", seconds, (f"--config.table={table}",), "benchmarks")
        for table, seconds in (("selective_copy", 540), ("mqar", 600), ("induction_heads", 380), ("chomsky", 515))
    ),
)


def estimate(step: Step, root: pathlib.Path) -> tuple[float, str]:
    """Seconds the step will take and why: 0 for a finished run, else the last run's or the config's time."""
    path = root / step.name / io.CONFIG
    saved = io.read_json(path) if path.is_file() else {}
    if saved.get("complete"):
        return 0.0, "finished"
    if saved:
        return step.estimate_s, "resumes"
    return step.estimate_s, "new"


def _minutes(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def section(step: Step, root: pathlib.Path) -> str:
    """The report's section of one step: command, wall time, figures, table."""
    workdir = root / step.name
    command = " ".join(["python", "-m", f"experiments.{step.experiment}", f"--workdir {workdir}", *step.overrides])
    lines = [f"## {step.name}", "", f"`{command}`", ""]
    saved = io.read_json(workdir / io.CONFIG) if (workdir / io.CONFIG).is_file() else {}
    if not saved.get("complete"):
        return "\n".join([*lines, "Not run (or not finished): no results yet.", ""])
    seeds = saved.get("resolved", {}).get("seeds")
    lines += [f"Wall time {_minutes(saved.get('wall_s', 0))} on {saved.get('backend')}; seeds: {seeds or '-'}.", ""]
    lines += [f"![{png.name}]({step.name}/{png.name})" for png in sorted(workdir.glob("*.png"))]
    generator = readme_tables.TABLES.get(step.table or step.experiment)
    if generator is not None and (workdir / io.RESULTS).is_file():
        lines += ["", generator(workdir)]
    return "\n".join([*lines, ""])


def write_report(steps, root: pathlib.Path) -> pathlib.Path:
    header = [
        "# rvt: every experiment at its default",
        "",
        "Written by `python -m scripts.reproduce` from the runs' files; tables report the mean over seeds and",
        "the seeds' min-max range (benchmarks: in %, beside the statistic the paper reports and its number).",
        "",
    ]
    path = root / "report.md"
    io.write_text(path, "\n".join(header + [section(s, root) for s in steps]))
    return path


def run_plan(steps, root: pathlib.Path, estimates: dict[str, float]) -> list[str]:
    """Run every step under one progress bar (weighted by the estimates); returns the failed steps."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    failed = []
    total = max(sum(estimates.values()), 1.0)
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        bar = progress.add_task("reproduce", total=total)
        done = 0.0
        for step in steps:
            progress.update(bar, description=f"{step.name}")
            root.mkdir(parents=True, exist_ok=True)
            with open(root / f"{step.name}.log", "w") as log:
                started = time.time()
                process = subprocess.Popen(step.command(root), stdout=log, stderr=subprocess.STDOUT)
                while process.poll() is None:
                    elapsed = time.time() - started
                    progress.update(bar, completed=done + min(elapsed, estimates[step.name] * 0.99))
                    time.sleep(1.0)
            done += estimates[step.name]
            progress.update(bar, completed=done)
            if process.returncode != 0:
                failed.append(step.name)
                progress.console.print(f"{step.name}: failed (exit {process.returncode}); see {root / step.name}.log")
    return failed


def main(argv):
    del argv
    root = pathlib.Path(FLAGS.root)
    known = [s.name for s in PLAN]
    unknown = [n for n in FLAGS.only if n not in known]
    if unknown:
        print(f"error: only: unknown step {unknown[0]!r}; known: {', '.join(known)}", file=sys.stderr)
        sys.exit(2)
    steps = [s for s in PLAN if not FLAGS.only or s.name in FLAGS.only]
    planned = {s.name: estimate(s, root) for s in steps}
    for step in steps:
        seconds, why = planned[step.name]
        print(f"{step.name:28s} {_minutes(seconds):>14s}  {why:8s}  {' '.join(step.command(root)[1:])}")
    total = sum(s for s, _ in planned.values())
    print(f"{len(steps)} steps, estimated {_minutes(total)} on 2 CPU cores")
    if FLAGS.dry_run:
        return
    failed = run_plan(steps, root, {name: seconds for name, (seconds, _) in planned.items()})
    if readme_tables.README.value:  # --readme (scripts.readme_tables' flag); '' : none
        readme = pathlib.Path(readme_tables.README.value)
        text, missing = readme_tables.rewrite(readme.read_text(), readme.parent)
        readme.write_text(text)
        for name in missing:
            print(f"README table not regenerated (no run): {name}", file=sys.stderr)
    print(f"report: {write_report(steps, root)}")
    if failed:
        print(f"error: {len(failed)} step(s) failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
