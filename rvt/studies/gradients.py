"""Vanishing gradients, measured: gradient against distance, the tanh RNN's spectrum, LSTM forget gates.

For every model, at initialisation and after training on the task, the norm of the gradient of the
last position's loss with respect to the input embedding k positions earlier (:mod:`rvt.probes`).
For a tanh RNN, the fitted per-step log-slope of that norm beside log sigma_max of the recurrent
matrix (Pascanu et al. 2013) and the mean log-norm of the actual step Jacobians between them. For an
LSTM, the product of forget gates along the path and the cell-path gradient computed by autodiff (the
same numbers), swept over the forget-gate bias at initialisation, plus the trained LSTM's.

Writes: config.json, metrics.jsonl, results.csv (model,trained,distance,grad_norm,seed), gates.csv,
spectral.csv, summary.csv; figures gradient_vs_distance.png, forget_products.png, spectral.png.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from rvt import io, metrics, models, probes, train
from rvt.errors import check_positive_int
from rvt.studies import common
from rvt.typing import NO_DISTANCE

EXPERIMENT = "gradients"
# target_distance: how far back the last position's target depends (the task's label; -1 where none),
# so the figure can mark where a model that learnt the task should keep its gradient.
RESULT_COLUMNS = ("model", "trained", "distance", "grad_norm", "seed", "target_distance")
GATE_COLUMNS = (
    "model",
    "forget_bias",
    "trained",
    "distance",
    "forget_product",
    "forget_product_median",
    "cell_path_grad",
    "seed",
)
SUMMARY_COLUMNS = (
    "model",
    "trained",
    "params",
    "slope",
    "fit_lo",
    "fit_hi",
    "sigma_max",
    "log_sigma_max",
    "jacobian_log_norm",
    "grad_first",
    "grad_last",
    "eval_loss",
    "eval_accuracy",
    "eval_dependent_accuracy",
    "seed",
)
GATES, SUMMARY = "gates.csv", "summary.csv"


@dataclasses.dataclass(frozen=True)
class ForgetSweep:
    biases: tuple[float, ...]
    modules: tuple  # one LSTM per bias, the configured lstm settings with that forget_bias
    length: int
    batch_size: int


def resolve_forget(config: ml_collections.ConfigDict, vocab_size: int) -> ForgetSweep:
    sweep = config.forget
    biases = common.parse_list(sweep.biases, "forget.biases", float)
    for field in ("length", "batch_size"):
        value = sweep[field]
        check_positive_int(value, f"forget.{field}")
    settings = config.model.lstm.to_dict() if "lstm" in config.model else {}
    modules = tuple(
        models.make_model("lstm", {**settings, "forget_bias": b}, vocab_size=vocab_size, length=sweep.length)[0]
        for b in biases
    )
    return ForgetSweep(biases, modules, sweep.length, sweep.batch_size)


def gate_curves(module, params, inputs_BxT):
    """Mean and median over batch and units of prod f, and the mean autodiff cell-path gradient: 3 x [T]."""
    gates = probes.sown(probes.intermediates(module, params, inputs_BxT), "gates")
    products_TxBxH = probes.forget_products(gates["f"])
    flat = products_TxBxH.reshape(products_TxBxH.shape[0], -1)
    path_TxBxH = probes.cell_path_gradient(gates)
    return jnp.mean(flat, axis=1), jnp.median(flat, axis=1), jnp.mean(path_TxBxH, axis=(1, 2))


# The module is static: init and trained probes of one model share one executable.
_gate_fn = jax.jit(gate_curves, static_argnums=0)


def gate_rows(module, params, inputs_BxT, **labels) -> list[dict]:
    mean_K, median_K, path_K = map(np.asarray, _gate_fn(module, params, inputs_BxT))
    return [
        dict(
            labels,
            distance=k,
            forget_product=float(mean_K[k]),
            forget_product_median=float(median_K[k]),
            cell_path_grad=float(path_K[k]),
        )
        for k in range(mean_K.shape[0])
    ]


def spectral_fields(module, params, inputs_BxT) -> dict:
    """The model's bound on the step Jacobian (tanh RNN: sigma_max of W_hh) and the trajectory's mean
    log step-Jacobian norm (any recurrence); blanks where a model has neither."""
    sigma = probes.recurrence_bound(module, params)
    log_norms = probes.step_jacobian_log_norms(module, params, inputs_BxT)
    return dict(
        sigma_max=sigma,
        log_sigma_max=None if sigma is None else float(np.log(sigma)),
        jacobian_log_norm=None if log_norms is None else float(jnp.mean(log_norms)),
    )


def probe_task(task):
    """The task the gradients are probed on: the trained task itself where its last position is always a
    recall (the copying memory problem), else (variable-delay copy) the same task with every delay at its
    longest, so the last position recalls the last symbol from ``max_distance`` back."""
    fields = {f.name for f in dataclasses.fields(task)}
    if {"min_distance", "max_distance", "length"} <= fields:
        return dataclasses.replace(task, min_distance=task.max_distance, length=0)
    return task


def dependent_accuracy(sums) -> float:
    """Accuracy on the targets that a distance labels (they depend on an earlier token): on the copying
    memory problem the copied symbols alone, not the blanks a memoryless model also gets right."""
    rows = metrics.distance_rows(sums)
    count = sum(r["count"] for r in rows)
    return sum(r["accuracy"] * r["count"] for r in rows) / count if count else float("nan")


def probe_model(plan, params, batch, trained: bool, seed: int, out: dict) -> dict:
    """Append this model's gradient rows (and trained-LSTM gate rows) to ``out``; return its summary row."""
    norms_K = np.asarray(probes.gradient_vs_distance(plan.module, params, batch.inputs, batch.targets[:, -1]))
    labels = dict(model=plan.name, trained=trained, seed=seed)
    target = np.unique(np.asarray(batch.distance[:, -1]))
    target_distance = int(target[0]) if target.size == 1 else NO_DISTANCE  # one shared distance, or none
    out["results"] += [
        dict(labels, distance=k, grad_norm=float(g), target_distance=target_distance) for k, g in enumerate(norms_K)
    ]
    gates = probes.sown(probes.intermediates(plan.module, params, batch.inputs), "gates")
    if trained and gates is not None and "f" in gates:  # a model with forget gates; init is the sweep's
        bias = dict(plan.config.cell_options).get("forget_bias", "")
        out["gates"] += gate_rows(plan.module, params, batch.inputs, forget_bias=bias, **labels)
    slope, lo, hi = probes.fit_log_slope(norms_K)
    return dict(
        labels,
        params=plan.num_params,
        slope=slope,
        fit_lo=lo,
        fit_hi=hi,
        grad_first=float(norms_K[1]),
        grad_last=float(norms_K[-1]),
        **spectral_fields(plan.module, params, batch.inputs),
    )


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False):
    task = common.resolve_task(config)
    plans = common.resolve_models(config, task)
    train_config = common.resolve_train(config)
    check_positive_int(config.probe.batch_size, "probe.batch_size")
    sweep = resolve_forget(config, task.vocab_size)
    seeds = common.resolve_seeds(config)
    for plan in plans:
        init = lambda key, m=plan.module: models.init_params(m, key, task.length)
        common.check_memory(plan.name, plan.module, init, task, train_config, seeds=len(seeds.chunks[0]))
    resolved = dict(
        seeds=list(seeds.seeds),
        seed_strategy=seeds.strategy,
        task=common.describe_task(config.task, task),
        models={p.name: dict(params=p.num_params, **dataclasses.asdict(p.config)) for p in plans},
        train=dataclasses.asdict(train_config),
        forget_biases=sweep.biases,
    )
    path = common.start_run(workdir, overwrite, EXPERIMENT, config, resolved)

    # one held-out set, one probe batch and one sweep input for every seed
    _, _, eval_key, probe_key, sweep_key = jax.random.split(jax.random.key(config.seed), 5)
    probe_batch = probe_task(task).sample(probe_key, config.probe.batch_size)
    out = dict(results=[], gates=[], summary=[])
    with io.MetricsWriter(path / io.METRICS) as writer:
        for plan in plans:
            init = lambda key, m=plan.module: models.init_params(m, key, task.length)
            trained = common.train_seeds(
                plan.name,
                plan.module,
                init,
                task,
                train_config,
                seeds,
                path,
                writer,
                dict(model=plan.name),
                validation_key=common.validation_key(eval_key),
            )
            for chunk, result in trained:
                init_params = jax.vmap(init)(common.seed_keys(chunk)[0])  # what train_seeds started from
                sums = train.evaluate(result.state, task, train_config, eval_key, seed_axis=True)
                for i, seed in enumerate(chunk):
                    seed_sums = common.seed_slice(sums, i)
                    overall = metrics.summarize(seed_sums)
                    dependent = dependent_accuracy(seed_sums)
                    writer.write(dict(kind="eval", model=plan.name, seed=seed, step=train_config.steps, **overall))
                    before = probe_model(plan, common.seed_slice(init_params, i), probe_batch, False, seed, out)
                    after = probe_model(plan, common.seed_slice(result.state.params, i), probe_batch, True, seed, out)
                    evals = dict(
                        eval_loss=overall["loss"], eval_accuracy=overall["accuracy"], eval_dependent_accuracy=dependent
                    )
                    for row in (before, after):
                        out["summary"].append(dict(row, **evals))
                    logging.info(
                        "%-12s seed %d  eval loss %.4f acc %.3f (on targets that depend on an earlier token: %.3f); "
                        "gradient slope %.4f -> %.4f per step",
                        plan.name,
                        seed,
                        overall["loss"],
                        overall["accuracy"],
                        dependent,
                        before["slope"],
                        after["slope"],
                    )
                io.write_csv(path / io.RESULTS, out["results"], RESULT_COLUMNS)  # partial runs still plot

        tokens_BxT = jax.random.randint(sweep_key, (sweep.batch_size, sweep.length), 0, task.vocab_size)
        # forget_bias only initialises a bias: every sweep module applies the same function, so one compile.
        for seed, init_key in zip(seeds.seeds, common.seed_keys(seeds.seeds)[0], strict=True):
            for bias, module in zip(sweep.biases, sweep.modules, strict=True):
                params = models.init_params(module, init_key, sweep.length)
                out["gates"] += gate_rows(
                    sweep.modules[0], params, tokens_BxT, model="lstm", forget_bias=bias, trained=False, seed=seed
                )
    io.write_csv(path / GATES, out["gates"], GATE_COLUMNS)
    io.write_csv(path / SUMMARY, out["summary"], SUMMARY_COLUMNS)
    report(out)
    return common.finish_run(path)


def report(out: dict) -> None:
    """The key numbers on stdout: slopes, the tanh RNN's bound, forget products at a few distances."""
    print("model        trained  slope/step (fit range)   ln sigma_max  mean ln||J_t||")
    for row in out["summary"]:
        fmt = lambda v: "    -  " if v is None or v == "" else f"{v:+.4f}"
        extra = f"   {fmt(row['log_sigma_max'])}       {fmt(row['jacobian_log_norm'])}"
        fit = f"{row['slope']:+.4f} [{row['fit_lo']}, {row['fit_hi']}]"
        print(f"{row['model']:<12} {str(row['trained']).lower():<8} {fit}{extra}")
    curves: dict[tuple, dict[int, dict]] = {}
    for row in out["gates"]:
        curves.setdefault((row["forget_bias"], row["trained"]), {})[row["distance"]] = row
    for (bias, trained), curve in curves.items():
        gap = max(abs(r["forget_product"] - r["cell_path_grad"]) for r in curve.values())
        shown = ", ".join(f"k={k}: {curve[k]['forget_product']:.3g}" for k in (10, 100, 500) if k in curve)
        label = f"lstm forget_bias {bias:g} trained={str(trained).lower()}"
        print(f"{label}: mean prod f {shown}; max |prod f - dc/dc| {gap:.1e}")
