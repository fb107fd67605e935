"""Published tables, reproduced in their own layout: ``config.table`` picks one.

    selective_copy   Gu and Dao 2023 (Mamba) Table 1; Feng et al. 2024 (minGRU / minLSTM): accuracy of each
                     model at 1, 2, 3 layers
    mqar             Arora et al. 2023 (Zoology) Figure 2: accuracy against model width per (length, pairs)
    induction_heads  Gu and Dao 2023 Table 2: train at one length, test at 2x, 4x, ... (extrapolation)
    chomsky          Deletang et al. 2023 Table 2: train on lengths 1..N, test on longer strings

Every (setting, model, seed) trains from scratch through the one training loop (checkpointed, resumable)
and is scored on held-out batches of the setting's test task(s). ``results.csv`` has a row per
(setting, model, seed, test): ``benchmark,model,setting,accuracy,seed,paper,paper_model,paper_note``
(``paper``: the published number beside ours where there is one, from the papers (see PAPER) in the
study's PAPER dict; ``paper_model``: the paper's row it comes from). Accuracy is on the scored
positions; for chomsky it is the paper's score: per sequence the fraction of correct output tokens,
averaged over sequences whose lengths are uniform over the test range (= the mean over test lengths).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from rvt import io, models, train
from rvt.errors import check, settings_under
from rvt.studies import common
from rvt.tasks import make_task

EXPERIMENT = "benchmarks"
TABLES = ("selective_copy", "mqar", "induction_heads", "chomsky")
RESULT_COLUMNS = (
    "benchmark",
    "model",
    "setting",
    "test",
    "accuracy",
    "seed",
    "paper",
    "paper_model",
    "paper_note",
    "paper_statistic",
    "steps",
    "learning_rate",
    "params",
    "state_bytes",
    "chance",
)
# The statistic over seeds each paper reports (its Table's protocol): Deletang et al. report the best of 10
# seeds x 3 learning rates; Mamba's Tables 1 and 2 and Zoology's Figure 2 report one number per model.
PAPER_STATISTIC = {"chomsky": "max", "selective_copy": "mean", "mqar": "mean", "induction_heads": "mean"}
# Published numbers (%), transcribed from the papers; keys: (table, model, setting, test).
PAPER: dict[tuple[str, str, str, str], tuple[float | str, str, str]] = {
    ("selective_copy", "s6", "layers=2", ""): (99.8, "Mamba block with S6 (2 layers)", "Mamba Table 1"),
    **{
        ("selective_copy", m, f"layers={n}", ""): (v, f"{label} ({n} layer{'s' if n > 1 else ''})", note)
        for m, label, values, note in (
            ("mingru", "minGRU", (37.0, 96.8, 99.5), "Feng et al. 2024, from a summary"),
            ("minlstm", "minLSTM", (37.6, 85.7, 96.0), "Feng et al. 2024, from a summary"),
        )
        for n, v in zip((1, 2, 3), values, strict=True)
    },
    **{
        ("induction_heads", m, "", f"x{2**k}"): (v, label, "Mamba Table 2, trained at 256, tested at 256 x ratio")
        for m, label, values in (  # at the trained length (x1) every model of the table scores 100
            # "MHA-Abs": absolute positions, of a kind the paper does not name; ours: sinusoidal or learned
            ("transformer_sinusoidal", "MHA-Abs", (100.0, 58.6, 26.6, 18.8, 9.8)),
            ("transformer_learned", "MHA-Abs", (100.0, 58.6, 26.6, 18.8, 9.8)),
            ("transformer_rope", "MHA-RoPE", (100.0, 83.6, 31.3, 18.4, 8.6)),
            ("s6", "Mamba", (100.0, 100.0, 100.0, 100.0, 100.0)),
        )
        for k, v in zip((0, 1, 2, 3, 4), values, strict=True)
    },
    **{
        ("chomsky", m, rule, "ood"): (v, label, "Deletang et al. Table 2: max over seeds and 3 learning rates")
        for rule, values in (
            ("parity", (100.0, 100.0, 52.0)),
            ("even_pairs", ("solved", "solved", "solved")),
            ("cycle_navigation", ("solved", "solved", 61.9)),
            ("modular_arithmetic", (100.0, 100.0, 24.2)),
            ("reverse_string", (62.0, 60.9, 62.3)),
            ("duplicate_string", (50.3, 57.6, 52.8)),
        )
        for m, label, v in zip(("rnn", "lstm", "transformer"), ("RNN", "LSTM", "Transformer"), values, strict=True)
    },
}


@dataclasses.dataclass(frozen=True)
class Setting:
    """One column of the table: the task trained on, the tasks tested on (by name), model overrides."""

    name: str
    train_task: Any
    tests: tuple[tuple[str, Any], ...]
    overrides: dict  # model name -> settings that this column changes (layers, width)


@dataclasses.dataclass(frozen=True)
class Run:
    setting: Setting
    model: str  # the name in results.csv (a variant may fix settings: transformer_rope)
    base: str  # the registered model
    module: Any
    num_params: int
    state_bytes: int  # what the model keeps per sequence at the longest test length (state or KV cache)


VARIANTS = {  # results-table names that fix a setting of a registered model
    "transformer_rope": ("transformer", {"positional": "rope"}),
    "transformer_learned": ("transformer", {"positional": "learned"}),
    "transformer_sinusoidal": ("transformer", {"positional": "sinusoidal"}),
}
WIDTH_FIELDS = ("d_model", "hidden_size")  # what "width" sets in a model's settings
LAYER_FIELD = "num_layers"


def _task(name: str, settings: dict, where: str):
    with settings_under(where):
        return make_task(name, **settings)


def settings_of(config: ml_collections.ConfigDict) -> list[Setting]:
    """The table's columns from ``config.<table>`` (each validated, so bad settings fail before any run)."""
    table = config.table
    spec = config[table]
    where = table
    if table == "selective_copy":
        task = _task("selective_copy", spec.task.to_dict(), f"{where}.task")
        layers = common.parse_list(spec.layers, f"{where}.layers", int, minimum=1)
        return [Setting(f"layers={n}", task, (("", task),), {"*": {LAYER_FIELD: n}}) for n in layers]
    if table == "mqar":
        widths = common.parse_list(spec.widths, f"{where}.widths", int, minimum=1)
        lengths = common.parse_list(spec.lengths, f"{where}.lengths", int, minimum=3)
        pairs = common.parse_list(spec.pairs, f"{where}.pairs", int, minimum=1)
        check(len(lengths) == len(pairs), f"{where}.pairs", f"needs one per length ({len(lengths)}), got {len(pairs)}")
        out = []
        for length, kv in zip(lengths, pairs, strict=True):
            task = _task("associative_recall", dict(spec.task.to_dict(), length=length, num_pairs=kv), f"{where}.task")
            out += [Setting(f"T={length},kv={kv},width={w}", task, (("", task),), {"*": {"width": w}}) for w in widths]
        return out
    if table == "induction_heads":
        task = _task("induction_heads", spec.task.to_dict(), f"{where}.task")
        ratios = common.parse_list(spec.test_ratios, f"{where}.test_ratios", int, minimum=1)
        tests = tuple((f"x{r}", dataclasses.replace(task, length=task.length * r)) for r in ratios)
        return [Setting("", task, tests, {})]
    if table == "chomsky":
        rules = common.parse_list(spec.rules, f"{where}.rules")
        out = []
        for rule in rules:
            task = _task("chomsky", dict(rule=rule, min_length=1, max_length=spec.train_max_length), f"{where}")
            test = _task(
                "chomsky",
                dict(rule=rule, min_length=spec.train_max_length + 1, max_length=spec.test_max_length),
                f"{where}",
            )
            out.append(Setting(rule, task, (("ood", test), ("iid", task)), {}))
        return out
    raise AssertionError(table)


def _model_settings(config, name: str, base: str, overrides: dict) -> dict:
    """A model's settings in one table: the model's own, then the table's preset for it
    (``config.<table>.model.<model>``: the paper's architecture), then the variant's and the column's."""
    table = config[config.table]
    preset = table.model[base].to_dict() if "model" in table and base in table.model else {}
    settings = {**common.model_settings(config, base), **preset, **VARIANTS.get(name, (base, {}))[1]}
    change = {**overrides.get("*", {}), **overrides.get(name, {})}
    known = models.model_settings(base)
    if "width" in change:
        width = change.pop("width")
        field = next(f for f in WIDTH_FIELDS if f in known)
        settings[field] = width
        if base == "transformer":  # keep the head size of the preset's ratio: width / heads >= 8
            settings["num_heads"] = max(1, min(settings.get("num_heads", 4), width // 8))
    if LAYER_FIELD in change:
        check(LAYER_FIELD in known, f"{config.table}.layers", f"model {base} has no {LAYER_FIELD} setting")
    settings.update(change)
    return settings


def plan(config: ml_collections.ConfigDict) -> list[Run]:
    check(config.table in TABLES, "table", f"must be one of {', '.join(TABLES)}, got {config.table!r}")
    runs = []
    for setting in settings_of(config):
        longest = max((t for _, t in setting.tests), key=lambda t: t.length)
        for name in common.parse_names(config[config.table].models, f"{config.table}.models"):
            base = VARIANTS.get(name, (name, {}))[0]
            settings = _model_settings(config, name, base, setting.overrides)
            module, model_config = models.make_model(
                base, settings, vocab_size=longest.vocab_size, length=longest.length
            )
            shapes = jax.eval_shape(
                lambda k, m=module, n=longest.length: models.init_params(m, k, n), jax.random.key(0)
            )
            state = model_config.state_bytes(setting.train_task.length)
            runs.append(Run(setting, name, base, module, models.count_params(shapes), state))
    return runs


def identity(config: ml_collections.ConfigDict, runs: list[Run]) -> ml_collections.ConfigDict:
    """What a table's run uses, and so what names it in config.json: the table's own section, the seed and
    train settings, and the settings of the models it trains; another table's settings or another
    model's preset changing leaves the run resumable."""
    used = dict.fromkeys(r.base for r in runs)
    keep = {k: v for k, v in config.to_dict().items() if k not in ("model", *TABLES) or k == config.table}
    return ml_collections.ConfigDict(dict(keep, model={m: config.model[m].to_dict() for m in used}))


def resolve_train(config: ml_collections.ConfigDict, model: str | None = None):
    """The training settings of ``model`` in the chosen table, in layers: rvt's defaults; the table's own
    budget (``config.<table>.train``: the steps and learning rate its measured learning curves call
    for); the table's settings for that model alone (``config.<table>.train_by_model.<model>``: a
    learning rate a measured sweep chose for it, as the papers pick each model's best rate); and last
    whatever ``config.train`` sets (its settings are unset placeholders until the command line gives
    one), so ``--config.train.steps=100`` means every model of every table."""
    table = config[config.table]
    by_model = table.train_by_model.to_dict() if "train_by_model" in table else {}
    layers = [
        (f"{config.table}.train", table.train.to_dict() if "train" in table else {}),
        (f"{config.table}.train_by_model.{model}", by_model.get(model, {})),
        ("train", {k: v for k, v in config.train.to_dict().items() if v is not None}),
    ]
    merged = common.train_settings().to_dict()
    for where, settings in layers:
        for key, value in settings.items():
            check(key in merged, f"{where}.{key}", f"unknown setting; known: {', '.join(sorted(merged))}")
            merged[key] = value
        with settings_under(where, was="train"):  # so what fails names the layer it came from
            resolved = common.resolve_train(ml_collections.ConfigDict(dict(train=merged)))
    return resolved


def sequence_score_sums(logits_BxTxV, batch) -> dict:
    """Per sequence: the fraction of its scored tokens predicted right; summed over the batch, with the
    token counts for token accuracy too."""
    hits_BxT = (jnp.argmax(logits_BxTxV, -1) == batch.targets) * batch.mask
    per_sequence_B = hits_BxT.sum(1) / jnp.maximum(batch.mask.sum(1), 1.0)
    return dict(
        sequence_score=per_sequence_B.sum(),
        sequences=jnp.float32(per_sequence_B.shape[0]),
        correct=hits_BxT.sum(),
        count=batch.mask.sum(),
    )


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    runs = plan(config)
    table = config[config.table]
    for name in table.train_by_model if "train_by_model" in table else {}:
        check(name in models.MODELS or name in VARIANTS, f"{config.table}.train_by_model.{name}", "unknown model")
    budgets = {r.model: resolve_train(config, r.model) for r in runs}
    seeds = common.resolve_seeds(config)
    for r in runs:
        longest = max((t for _, t in r.setting.tests), key=lambda t: t.length)
        init = lambda key, m=r.module, n=longest.length: models.init_params(m, key, n)
        common.check_memory(
            r.model,
            r.module,
            init,
            r.setting.train_task,
            budgets[r.model],
            len(seeds.chunks[0]),
            sums_fn=sequence_score_sums,
        )
    resolved = dict(
        table=config.table,
        seeds=list(seeds.seeds),
        runs=[dict(setting=r.setting.name, model=r.model, params=r.num_params) for r in runs],
        train={m: dataclasses.asdict(t) for m, t in budgets.items()},
    )
    path = common.start_run(workdir, overwrite, EXPERIMENT, identity(config, runs), resolved)
    validation_key, eval_key = common.held_out_keys(config.seed)
    rows = []
    with io.MetricsWriter(path / io.METRICS) as writer:
        for r in runs:
            task = r.setting.train_task
            longest = max((t for _, t in r.setting.tests), key=lambda t: t.length)
            init = lambda key, m=r.module, n=longest.length: models.init_params(m, key, n)
            label = f"{r.model} {r.setting.name}".strip()
            tags = dict(model=r.model, setting=r.setting.name)
            tag = f"{r.model}/{r.setting.name or 'default'}".replace(",", "_").replace("=", "")
            for chunk, result in common.train_seeds(
                label,
                r.module,
                init,
                task,
                budgets[r.model],
                seeds,
                path,
                writer,
                tags,
                checkpoint_tag=tag,
                validation_key=validation_key,
                sums_fn=sequence_score_sums,
            ):
                for test_name, test_task in r.setting.tests:
                    sums = train.evaluate(
                        result.state, test_task, budgets[r.model], eval_key, sums_fn=sequence_score_sums, seed_axis=True
                    )
                    for i, seed in enumerate(chunk):
                        s = common.seed_slice(sums, i)
                        score = float(s["sequence_score"] / s["sequences"])
                        paper, paper_model, note = PAPER.get(
                            (config.table, r.model, r.setting.name, test_name), ("", "", "")
                        )
                        rows.append(
                            dict(
                                benchmark=config.table,
                                model=r.model,
                                setting=r.setting.name,
                                test=test_name,
                                accuracy=score,
                                seed=seed,
                                paper=paper if isinstance(paper, float) else "",
                                paper_model=paper_model,
                                paper_note=note
                                if isinstance(paper, float)
                                else f"{paper} (>= 90%); {note}"
                                if paper
                                else "",
                                paper_statistic=PAPER_STATISTIC[config.table],
                                steps=budgets[r.model].steps,
                                learning_rate=result.learning_rate,
                                params=r.num_params,
                                state_bytes=r.state_bytes,
                                chance=test_task.chance_accuracy,
                            )
                        )
                        writer.write(dict(kind="eval", **tags, test=test_name, seed=seed, accuracy=score))
                        logging.info("%-28s %-5s seed %d  accuracy %.3f", label, test_name, seed, score)
                io.write_csv(path / io.RESULTS, rows, RESULT_COLUMNS)
    return common.finish_run(path)
