"""Train-step speed: our LSTM against flax.linen's and torch's, our Transformer against the matmul peak.

    python -m scripts.bench_train_step [--quick] [--out runs/bench/train_step.csv] [--rounds 3] [--repeats 3]

One train step = forward + backward + AdamW update at the same shapes for every implementation:
tokens [B, T] -> embedding (width D) -> one LSTM layer (width H) -> linear head -> mean cross-entropy on
random targets. The JAX models -- ours, ours without the embedding fold (``ours_unfolded``, see
RecurrentLM.__call__) and ``flax.linen.RNN(OptimizedLSTMCell)`` inside the same embedding and head -- all
run ``rvt.train.make_train_step``'s step, the step our experiments run (grad clipping, AdamW, metrics); torch mirrors
it (``clip_grad_norm_``, ``torch.optim.AdamW``, accuracy and norms) when torch is importable -- optional,
never a dependency. The Transformer's step is divided into XLA's own FLOP count
(``rvt.profiling.cost``) and compared with ``rvt.profiling.matmul_peak`` measured in the same process.
LSTM rows carry the model's matmul FLOPs instead (3x the forward's, the same for every implementation),
because XLA's cost analysis counts a scan body once whatever its trip count.

The machine is shared, so every case is timed in ``rounds`` interleaved rounds of ``repeats`` runs
(cases alternate, so load drifts hit them all alike) and the median of all runs is reported, the 10%
quantile beside it. Compile time (the first call) is kept apart. Timings on a loaded CPU stay noisy.

Targets (issue 2, section 8): ours <= 1.0x torch and <= 0.7x flax at both lengths (``ratio_vs_ours``
is ours' median over the row's median, so a ratio <= target passes); Transformer >= 60% of peak.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import statistics
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from rvt import io, models, profiling, train
from rvt.models.recurrent import RecurrentLM
from rvt.tasks.base import Batch
from rvt.typing import NO_DISTANCE


@dataclasses.dataclass(frozen=True)
class Sizes:
    lengths: tuple[int, ...] = (256, 1024)
    batch: int = 32
    hidden: int = 256
    embed: int = 256
    vocab: int = 32
    unroll: int = 0  # our LSTM's scan unroll; 0: RecurrentConfig's default
    tf_length: int = 1024  # 0: no Transformer rows
    tf_batch: int = 8
    tf_d_model: int = 256
    tf_layers: int = 4
    tf_heads: int = 4
    attention: tuple[str, ...] = ("vmapped", "fused")  # the Transformer's attention paths to time
    unfolded: bool = True  # also time our LSTM without the embedding fold (what the fold buys)
    rounds: int = 3
    repeats: int = 3
    peak_size: int = 1024
    torch: bool = True


QUICK = Sizes(lengths=(64,), tf_length=128, tf_batch=4, rounds=2, repeats=2, peak_size=512)
COLUMNS = (
    "impl",
    "model",
    "T",
    "batch",
    "hidden",
    "median_s",
    "q10_s",
    "compile_s",
    "runs",
    "flops",
    "flops_per_s",
    "peak_fraction",
    "ratio_vs_ours",
    "target",
)


@dataclasses.dataclass
class Case:
    """One timed thing: ``fn()`` runs one blocking step; ``row`` holds its labels and results."""

    row: dict
    fn: Callable[[], object]
    flops: Callable[[], float] | None = None  # XLA's count, read after the first call compiled fn
    runs: list = dataclasses.field(default_factory=list)


class FlaxLSTM(nn.Module):
    """flax.linen's optimised LSTM inside the same embedding and head as ours."""

    vocab_size: int
    hidden: int
    embed: int

    @nn.compact
    def __call__(self, tokens_BxT):
        x_BxTxD = nn.Embed(self.vocab_size, self.embed)(tokens_BxT)
        return nn.Dense(self.vocab_size)(nn.RNN(nn.OptimizedLSTMCell(self.hidden))(x_BxTxD))


class UnfoldedLM(RecurrentLM):
    """Our LSTM without the embedding fold (RecurrentLM.__call__): projects all B*T embeddings."""

    def __call__(self, tokens_BxT):
        return self.from_embeddings(self.embed(tokens_BxT))[1]


def lstm_flops(sizes: Sizes, length: int) -> float:
    """Model FLOPs of one LSTM train step (XLA counts a scan body once): matmuls, backward = 2x forward."""
    forward = 2 * sizes.batch * length * ((sizes.embed + sizes.hidden) * 4 * sizes.hidden + sizes.hidden * sizes.vocab)
    return 3.0 * forward


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def random_batch(key, batch: int, length: int, vocab: int) -> Batch:
    k_in, k_out = jax.random.split(key)
    return Batch(
        inputs=jax.random.randint(k_in, (batch, length), 0, vocab),
        targets=jax.random.randint(k_out, (batch, length), 0, vocab),
        mask=jnp.ones((batch, length), jnp.float32),
        distance=jnp.full((batch, length), NO_DISTANCE, jnp.int32),
    )


def fresh_state(module: nn.Module, tokens_1xT) -> train.TrainState:
    """A TrainState with N(0, 0.1^2) params and zero AdamW moments (what ``tx.init`` gives), filled on the
    host: compiling ``module.init`` costs more than the toy-size smoke test may spend, and speed does not
    depend on the values."""
    config = train.TrainConfig(steps=1000, learning_rate=1e-3)
    shapes = jax.eval_shape(
        lambda key: train.create_state(module, module.init(key, tokens_1xT)["params"], config), jax.random.key(0)
    )
    rng = np.random.default_rng(0)
    return jax.device_put(
        shapes.replace(
            step=np.zeros((), np.int32),
            params=jax.tree.map(lambda x: (0.1 * rng.standard_normal(x.shape)).astype(x.dtype), shapes.params),
            opt_state=jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), shapes.opt_state),
        )
    )


def jax_case(row: dict, module: nn.Module, batch: Batch, xla_flops: bool = True) -> Case:
    """The training loop's step on ``module``: the step is not donated so it can rerun on one state."""
    state = fresh_state(module, batch.inputs[:1])
    train_step = train.make_train_step(lambda key, step: batch, None).fn  # the loop's own step, undonated
    step = jax.jit(train_step)
    flops = (lambda: profiling.traced_flops(train_step, state, None)) if xla_flops else None
    return Case(row, lambda: step(state, None), flops)


def torch_case(row: dict, sizes: Sizes, length: int) -> Case | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    embed = torch.nn.Embedding(sizes.vocab, sizes.embed)
    lstm = torch.nn.LSTM(sizes.embed, sizes.hidden, batch_first=True)
    head = torch.nn.Linear(sizes.hidden, sizes.vocab)
    params = [*embed.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    inputs = torch.randint(0, sizes.vocab, (sizes.batch, length))
    targets = torch.randint(0, sizes.vocab, (sizes.batch, length))

    def step():  # mirrors rvt.train.make_train_step's step: loss, accuracy, clipped grads, norms, AdamW
        opt.zero_grad(set_to_none=True)
        logits = head(lstm(embed(inputs))[0])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, sizes.vocab), targets.reshape(-1))
        loss.backward()
        accuracy = (logits.argmax(-1) == targets).float().mean()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        with torch.no_grad():
            param_norm = torch.sqrt(sum((p * p).sum() for p in params))
        opt.step()
        return float((loss + accuracy + grad_norm + param_norm).detach())

    return Case(dict(row, impl="torch"), step)


def lstm_cases(sizes: Sizes, length: int) -> list[Case]:
    row = dict(model="lstm", T=length, batch=sizes.batch, hidden=sizes.hidden)
    batch = random_batch(jax.random.key(length), sizes.batch, length, sizes.vocab)
    settings = dict(hidden_size=sizes.hidden, embed_dim=sizes.embed)
    if sizes.unroll:
        settings["unroll"] = sizes.unroll
    ours, _ = models.make_model("lstm", settings, vocab_size=sizes.vocab, length=length)
    unfolded = UnfoldedLM(sizes.vocab, tuple(c.clone() for c in ours.cells), ours.embed_dim, ours.unroll)
    flax_lstm = FlaxLSTM(sizes.vocab, sizes.hidden, sizes.embed)
    row["flops"] = lstm_flops(sizes, length)
    cases = [jax_case(dict(row, impl="ours"), ours, batch, xla_flops=False)]
    if sizes.unfolded:
        cases.append(jax_case(dict(row, impl="ours_unfolded"), unfolded, batch, xla_flops=False))
    cases.append(jax_case(dict(row, impl="flax", target="ours <= 0.7x"), flax_lstm, batch, xla_flops=False))
    if sizes.torch and (case := torch_case(dict(row, target="ours <= 1.0x"), sizes, length)):
        cases.append(case)
    return cases


def transformer_cases(sizes: Sizes) -> list[Case]:
    length = sizes.tf_length
    row = dict(model="transformer", T=length, batch=sizes.tf_batch, hidden=sizes.tf_d_model, target=">= 0.6 peak")
    batch = random_batch(jax.random.key(7), sizes.tf_batch, length, sizes.vocab)
    cases = []
    for attention in sizes.attention:
        settings = dict(
            d_model=sizes.tf_d_model, num_layers=sizes.tf_layers, num_heads=sizes.tf_heads, attention=attention
        )
        module, _ = models.make_model("transformer", settings, vocab_size=sizes.vocab, length=length)
        cases.append(jax_case(dict(row, impl=f"ours_{attention}"), module, batch))
    return cases


def measure(cases: list[Case], sizes: Sizes) -> list[float]:
    """Interleaved rounds over all cases (and the matmul peak); returns the peak of every round."""
    for case in cases:  # compile (first call) apart from every timed run; cost() then hits jit's cache
        case.row["compile_s"] = profiling.time_fn(case.fn, repeats=1, jit=False).compile_s
        logging.info(
            "compiled %s %s T=%d in %.1fs", case.row["impl"], case.row["model"], case.row["T"], case.row["compile_s"]
        )
        if case.flops:
            case.row["flops"] = case.flops()
    peaks = []
    for _ in range(sizes.rounds):
        peaks.append(profiling.matmul_peak(sizes.peak_size))
        for case in cases:
            case.runs.extend(profiling.time_fn(case.fn, repeats=sizes.repeats, jit=False).runs_s)
        logging.info("round %d/%d done (peak %.3g FLOP/s)", len(peaks), sizes.rounds, peaks[-1])
    return peaks


def summarize(cases: list[Case], peaks: list[float]) -> list[dict]:
    peak = statistics.median(peaks)
    rows = []
    for case in cases:
        median, flops = statistics.median(case.runs), case.row.get("flops")
        rows.append(
            dict(
                case.row,
                median_s=median,
                runs=len(case.runs),
                q10_s=profiling.Timing(0.0, median, tuple(case.runs)).quantile(0.1),
                flops_per_s=flops / median if flops else None,
                peak_fraction=flops / median / peak if flops else None,
            )
        )
    for row in rows:  # ours' median over this row's, same model and length: <= 1 means ours is faster
        same = [r for r in rows if r["model"] == row["model"] and r["T"] == row["T"]]
        ours = next(r for r in same if r["impl"].startswith("ours"))  # first ours: ours / ours_vmapped
        row["ratio_vs_ours"] = ours["median_s"] / row["median_s"]
    rows.append(dict(impl="xla", model="matmul_peak", runs=len(peaks), flops_per_s=peak, peak_fraction=1.0))
    return rows


def run(sizes: Sizes, out: str | None) -> list[dict]:
    """Build every case, time them interleaved, print the table, write the CSV (if ``out``)."""
    cases = [case for length in sizes.lengths for case in lstm_cases(sizes, length)]
    if sizes.tf_length:
        cases += transformer_cases(sizes)
    rows = summarize(cases, measure(cases, sizes))
    print_table(rows)
    if out:
        path = pathlib.Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        io.write_csv(path, rows, COLUMNS)
    return rows


def _fmt(value) -> str:
    if value is None or value == "":
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict]) -> None:
    shown = [c for c in COLUMNS if c not in ("runs", "flops")]
    table = [shown] + [[_fmt(row.get(c)) for c in shown] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(shown))]
    for line in table:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)), flush=True)


_OUT = flags.DEFINE_string("out", "runs/bench/train_step.csv", "CSV file to write.")
_QUICK = flags.DEFINE_bool("quick", False, "Smoke-test sizes: T=64 LSTM, T=128 Transformer, 2x2 runs.")
_ROUNDS = flags.DEFINE_integer("rounds", None, "Interleaved rounds (default 3; quick 2).")
_REPEATS = flags.DEFINE_integer("repeats", None, "Timed runs per case per round (default 3; quick 2).")
_UNROLL = flags.DEFINE_integer("unroll", None, "Our LSTM's scan unroll (default: RecurrentConfig's).")
_TORCH = flags.DEFINE_bool("torch", True, "Include torch.nn.LSTM when torch is importable.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    overrides = dict(rounds=_ROUNDS.value, repeats=_REPEATS.value, unroll=_UNROLL.value, torch=_TORCH.value)
    sizes = dataclasses.replace(
        QUICK if _QUICK.value else Sizes(), **{k: v for k, v in overrides.items() if v is not None}
    )
    run(sizes, _OUT.value)


if __name__ == "__main__":
    app.run(main)
