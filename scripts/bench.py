"""Speed of our building blocks against their peers, in one process, on whatever device jax sees.

    python -m scripts.bench [--quick] [--out runs/bench/bench.csv] [--rounds 3] [--cases lstm,gru,attention,scan]

Rows: ours against one peer at one shape, ``ratio`` = ours_s / peer_s (< 1: ours is faster).
lstm, gru: the training loop's own step (``rvt.train.make_train_step``) against the same step on
``flax.linen.RNN(OptimizedLSTMCell / GRUCell)`` in the same embedding and head, against torch.nn.LSTM / GRU
mirroring it (only when torch is importable; never a dependency), and (LSTM) ours without the embedding fold
and ours without the custom VJP of the recurrence (cells.lstm_scan).
attention: forward + backward of causal attention, ours vmapped and fused against jax.nn.dot_product_attention
called directly and torch's scaled_dot_product_attention; the Transformer's train step, vmapped against fused.
scan: lru, mingru, s6 (presets) train step, backend "associative" against "sequential", T swept upwards until
the next step would exceed ``scan_limit_s``. Every case is compiled (timed apart) before any is timed; then
``rounds`` interleaved rounds (every case, order reversed every other round, so drift hits all alike), blocking
before the clock is read; medians. ``flops``: ``profiling.traced_flops`` of ours; ``peak_fraction``: its FLOP/s
over the matmul peak measured in every round. Writes the CSV and bench_meta.json (device, versions) beside it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import os
import pathlib
import platform
import statistics
from collections.abc import Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from rvt import io, models, profiling, train
from rvt.models import attention
from rvt.models.cells import LSTMCell
from rvt.models.recurrent import RecurrentLM
from rvt.tasks.base import Batch
from rvt.typing import NO_DISTANCE

CASES = ("lstm", "gru", "attention", "scan")


@dataclasses.dataclass(frozen=True)
class Sizes:
    rnn_lengths: tuple[int, ...] = (256, 1024)
    batch: int = 32
    hidden: int = 256
    embed: int = 256
    vocab: int = 32
    unfolded: bool = True  # LSTM: also ours without the embedding fold
    attn_lengths: tuple[int, ...] = (256, 1024)
    attn_batch: int = 8
    heads: int = 4
    head_dim: int = 64
    tf_length: int = 1024  # Transformer train step (d_model = heads * head_dim); 0: none
    tf_layers: int = 4
    scan_lengths: tuple[int, ...] = (256, 2048, 16384)
    scan_batch: int = 4
    scan_models: tuple[str, ...] = ("lru", "mingru", "s6")
    scan_limit_s: float = 3.0  # a model's sweep stops where its next step would take longer than this
    rounds: int = 3
    min_time_s: float = 0.3  # per case and round (at least one run)
    peak_size: int = 1024
    torch: bool = True
    torch_threads: int = 0  # 0: one per CPU (on a loaded machine torch's spinning OpenMP threads can stall)
    cases: tuple[str, ...] = CASES
    fast_compile: bool = False  # XLA at its lowest optimisation level: for smoke tests, not for timing


QUICK = Sizes(
    rnn_lengths=(64,), batch=4, hidden=32, embed=32, attn_lengths=(64,), attn_batch=2, heads=2, head_dim=16,
    tf_length=64, tf_layers=1, scan_lengths=(64, 128), scan_batch=2, rounds=2, min_time_s=0.05, peak_size=256,
    fast_compile=True,
)  # fmt: skip
COLUMNS = (
    "case", "shape", "ours", "ours_s", "peer", "peer_s", "ratio", "target", "met", "flops", "peak_fraction",
    "ours_compile_s", "peer_compile_s", "ours_runs", "peer_runs",
)  # fmt: skip
# Targets: the largest ratio (ours / peer) that passes; per case and peer, and from which T on.
TARGETS = {("rnn", "torch"): 0.9, ("rnn", "flax"): 0.7, ("attention", "jax_dpa"): 1.2, ("scan", "sequential"): 1.0}
TARGET_FROM_T = {"attention": 1024, "scan": 1024, "rnn": 0}


@dataclasses.dataclass
class Case:
    """One timed thing: ``fn()`` runs one step and returns something to block on."""

    name: str
    fn: Callable[[], object]
    flops: Callable[[], float] | None = None
    warmup: int = 1  # untimed runs after the first call (torch's first few runs can be slow under load)
    compile_s: float | None = None  # the first call: trace, compile, run
    warm_s: float | None = None  # the fastest warm-up run
    runs: list = dataclasses.field(default_factory=list)

    def prepare(self) -> None:
        if self.compile_s is None:
            timing = profiling.time_fn(self.fn, repeats=self.warmup, jit=False)
            self.compile_s, self.warm_s = timing.compile_s, min(timing.runs_s)


@dataclasses.dataclass
class Group:
    """Ours against its peers at one shape: one CSV row per peer."""

    case: str
    kind: str  # "rnn", "attention", "transformer", "scan": which targets apply
    length: int
    shape: str
    ours: Case
    peers: list[Case]
    flops: float | None = None  # traced_flops of ours, filled in by measure


def random_batch(batch: int, length: int, vocab: int) -> Batch:
    inputs_BxT, targets_BxT = np.random.default_rng(length).integers(0, vocab, (2, batch, length), np.int32)
    mask_BxT, distance_BxT = np.ones((batch, length), np.float32), np.full((batch, length), NO_DISTANCE, np.int32)
    return jax.device_put(Batch(inputs=inputs_BxT, targets=targets_BxT, mask=mask_BxT, distance=distance_BxT))


def fresh_state(module: nn.Module, tokens_1xT) -> train.TrainState:
    """A TrainState with N(0, 0.1^2) params and zero AdamW moments, filled on the host (compiling
    ``module.init`` costs more than a quick run may spend; speed does not depend on the values)."""
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


def jit(fn: Callable, sizes: Sizes) -> Callable:
    options = dict(xla_backend_optimization_level=0, xla_llvm_disable_expensive_passes=True)
    return jax.jit(fn, compiler_options=options if sizes.fast_compile else None)


def step_case(name: str, module: nn.Module, batch: Batch, sizes: Sizes) -> Case:
    """The training loop's step on ``module``, not donated, so it reruns on one state."""
    state = fresh_state(module, batch.inputs[:1])
    loop_step = train.make_train_step(lambda key, step: batch, jax.random.key(0))
    train_step = functools.partial(loop_step.fn, key=loop_step.key)  # the loop's own step, unjitted
    step = jit(train_step, sizes)
    return Case(name, lambda: step(state), lambda: profiling.traced_flops(train_step, state))


class FlaxRNN(nn.Module):
    """flax.linen's own LSTM / GRU inside the same embedding and head as ours."""

    vocab_size: int
    hidden: int
    embed: int
    cell: str

    @nn.compact
    def __call__(self, tokens_BxT):
        x_BxTxD = nn.Embed(self.vocab_size, self.embed)(tokens_BxT)
        cell = nn.OptimizedLSTMCell(self.hidden) if self.cell == "lstm" else nn.GRUCell(self.hidden)
        return nn.Dense(self.vocab_size)(nn.RNN(cell)(x_BxTxD))


class AutodiffLSTMCell(LSTMCell):
    """Our LSTM cell without its custom VJP (cells.lstm_scan): the layer scans ``step``, autodiff does the rest."""

    def scan(self, carry, xp_TxBx4H):
        return None


class UnfoldedLM(RecurrentLM):
    """Our recurrent LM without the embedding fold (RecurrentLM.__call__): projects all B*T embeddings."""

    def __call__(self, tokens_BxT):
        return self.from_embeddings(self.embed(tokens_BxT))[1]


def import_torch(sizes: Sizes):
    if not sizes.torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(sizes.torch_threads or os.cpu_count() or 1)
    torch.manual_seed(0)
    return torch


def torch_rnn_case(torch, sizes: Sizes, cell: str, length: int) -> Case:
    embed = torch.nn.Embedding(sizes.vocab, sizes.embed)
    rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(sizes.embed, sizes.hidden, batch_first=True)
    head = torch.nn.Linear(sizes.hidden, sizes.vocab)
    params = [*embed.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    inputs_BxT = torch.randint(0, sizes.vocab, (sizes.batch, length))
    targets_BxT = torch.randint(0, sizes.vocab, (sizes.batch, length))

    def step():  # mirrors make_train_step's step: loss, accuracy, clipped grads, norms, AdamW
        opt.zero_grad(set_to_none=True)
        logits = head(rnn(embed(inputs_BxT))[0])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, sizes.vocab), targets_BxT.reshape(-1))
        loss.backward()
        accuracy = (logits.argmax(-1) == targets_BxT).float().mean()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        with torch.no_grad():
            param_norm = torch.sqrt(sum((p * p).sum() for p in params))
        opt.step()
        return float((loss + accuracy + grad_norm + param_norm).detach())

    return Case("torch", step, warmup=3)


def torch_sdpa_case(torch, qkv: list, g_BxTxHxK) -> Case:
    """torch's attention on the same q, k, v and cotangent, in its [B, H, T, K] layout."""
    q, k, v = (torch.tensor(np.asarray(x)).transpose(1, 2).contiguous().requires_grad_() for x in qkv)
    g_BxHxTxK = torch.tensor(np.asarray(g_BxTxHxK)).transpose(1, 2).contiguous()

    def step():
        for x in (q, k, v):
            x.grad = None
        torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g_BxHxTxK)
        return float(q.grad[0, 0, 0, 0])

    return Case("torch_sdpa", step, warmup=3)


def _cell_fields(cell) -> dict:
    return {f.name: getattr(cell, f.name) for f in dataclasses.fields(cell) if f.name not in ("parent", "name")}


def rnn_groups(sizes: Sizes, cell: str, torch) -> list[Group]:
    groups = []
    for length in sizes.rnn_lengths:
        batch = random_batch(sizes.batch, length, sizes.vocab)
        settings = dict(hidden_size=sizes.hidden, embed_dim=sizes.embed)
        ours, _ = models.make_model(cell, settings, vocab_size=sizes.vocab, length=length)
        peers = [step_case("flax", FlaxRNN(sizes.vocab, sizes.hidden, sizes.embed, cell), batch, sizes)]
        if torch is not None:
            peers.append(torch_rnn_case(torch, sizes, cell, length))
        if cell == "lstm" and sizes.unfolded:
            unfolded = UnfoldedLM(sizes.vocab, tuple(c.clone() for c in ours.cells), ours.embed_dim, ours.unroll)
            peers.append(step_case("ours_unfolded", unfolded, batch, sizes))
            autodiff = ours.clone(cells=tuple(AutodiffLSTMCell(**_cell_fields(c)) for c in ours.cells))
            peers.append(step_case("ours_autodiff", autodiff, batch, sizes))
        shape = f"B{sizes.batch}xT{length}xH{sizes.hidden}"
        groups.append(Group(cell, "rnn", length, shape, step_case("ours", ours, batch, sizes), peers))
    return groups


def attention_case(name: str, attend: Callable, qkv: list, g_BxTxHxK, mask_BxTxS, sizes: Sizes) -> Case:
    """Forward + backward (a vector-Jacobian product with a fixed cotangent) of ``attend``."""

    def vjp(q, k, v, mask):
        out, pullback = jax.vjp(lambda q, k, v: attend(q, k, v, mask), q, k, v)
        return out, pullback(g_BxTxHxK)

    step = jit(vjp, sizes)
    return Case(name, lambda: step(*qkv, mask_BxTxS), lambda: profiling.traced_flops(vjp, *qkv, mask_BxTxS))


def direct_dpa(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, mask_BxTxS):
    del mask_BxTxS  # the peer as one would call it: its own causal mask
    return jax.nn.dot_product_attention(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, is_causal=True)


def attention_groups(sizes: Sizes, torch) -> list[Group]:
    groups = []
    for length in sizes.attn_lengths:
        shape_BxTxHxK = (sizes.attn_batch, length, sizes.heads, sizes.head_dim)
        *qkv, g_BxTxHxK = (jax.random.normal(key, shape_BxTxHxK) for key in jax.random.split(jax.random.key(0), 4))
        mask_BxTxS = jnp.broadcast_to(attention.causal_mask(length, length), (sizes.attn_batch, length, length))
        jax_dpa = attention_case("jax_dpa", direct_dpa, qkv, g_BxTxHxK, mask_BxTxS, sizes)
        torch_sdpa = [torch_sdpa_case(torch, qkv, g_BxTxHxK)] if torch is not None else []
        shape = "x".join(f"{k}{n}" for k, n in zip("BTHK", shape_BxTxHxK, strict=True))
        for name, attend in attention.ATTENTION.items():
            ours = attention_case(name, attend, qkv, g_BxTxHxK, mask_BxTxS, sizes)
            groups.append(Group(f"attention_{name}", "attention", length, shape, ours, [jax_dpa, *torch_sdpa]))
    return groups


def transformer_group(sizes: Sizes) -> Group:
    length, d_model = sizes.tf_length, sizes.heads * sizes.head_dim
    batch = random_batch(sizes.attn_batch, length, sizes.vocab)
    cases = []
    for name in ("vmapped", "fused"):
        settings = dict(d_model=d_model, num_layers=sizes.tf_layers, num_heads=sizes.heads, attention=name)
        module, _ = models.make_model("transformer", settings, vocab_size=sizes.vocab, length=length)
        cases.append(step_case(name, module, batch, sizes))
    shape = f"B{sizes.attn_batch}xT{length}xD{d_model}xL{sizes.tf_layers}"
    return Group("transformer", "transformer", length, shape, cases[0], cases[1:])


def scan_groups(sizes: Sizes) -> list[Group]:
    """Associative against sequential scan per model, T increasing while the next step would take at most
    ``scan_limit_s`` (each pair is compiled and run once here to decide)."""
    groups = []
    for name in sizes.scan_models:
        for length, following in zip(sizes.scan_lengths, (*sizes.scan_lengths[1:], None), strict=True):
            batch = random_batch(sizes.scan_batch, length, sizes.vocab)
            cases = []
            for backend in ("associative", "sequential"):
                settings = dict(models.PRESETS[name], backend=backend)
                module, _ = models.make_model(name, settings, vocab_size=sizes.vocab, length=length)
                cases.append(step_case(backend, module, batch, sizes))
                cases[-1].prepare()
            width = models.PRESETS[name].get("d_model", 0)
            shape = f"B{sizes.scan_batch}xT{length}xD{width}"
            groups.append(Group(name, "scan", length, shape, cases[0], cases[1:]))
            slowest = max(case.warm_s for case in cases)
            logging.info("%s T=%d: slowest step %.2fs", name, length, slowest)
            if following and slowest * following / length > sizes.scan_limit_s:
                logging.info("%s: stopping the sweep before T=%d", name, following)
                break
    return groups


def build(sizes: Sizes) -> list[Group]:
    torch = import_torch(sizes) if {"lstm", "gru", "attention"} & set(sizes.cases) else None
    groups = []
    for cell in ("lstm", "gru"):
        if cell in sizes.cases:
            groups += rnn_groups(sizes, cell, torch)
    if "attention" in sizes.cases:
        groups += attention_groups(sizes, torch)
        groups += [transformer_group(sizes)] if sizes.tf_length else []
    if "scan" in sizes.cases:
        groups += scan_groups(sizes)
    return groups


def measure(groups: list[Group], sizes: Sizes) -> list[float]:
    """Compile every case, then interleaved rounds over all of them; returns the matmul peak of each round."""
    cases = list({id(case): case for group in groups for case in (group.ours, *group.peers)}.values())
    for i, case in enumerate(cases):
        case.prepare()
        logging.info("%d/%d compiled %s in %.1fs", i + 1, len(cases), case.name, case.compile_s)
    for group in groups:
        group.flops = group.ours.flops() if group.ours.flops else None
    peaks = []
    for r in range(sizes.rounds):
        peaks.append(profiling.matmul_peak(sizes.peak_size))
        for case in cases if r % 2 == 0 else cases[::-1]:
            case.runs.extend(profiling.time_fn(case.fn, repeats=1, min_time_s=sizes.min_time_s, jit=False).runs_s)
        logging.info("round %d/%d done (peak %.3g FLOP/s)", r + 1, sizes.rounds, peaks[-1])
    return peaks


def target(group: Group, peer: str) -> float | None:
    """The largest ratio that meets the target for this row; None where no target applies."""
    if group.case == "attention_fused" or group.length < TARGET_FROM_T.get(group.kind, 0):
        return None
    return TARGETS.get((group.kind, peer))


def summarize(groups: list[Group], peak: float) -> list[dict]:
    rows = []
    for group in groups:
        ours_s = statistics.median(group.ours.runs)
        for peer in group.peers:
            peer_s, limit = statistics.median(peer.runs), target(group, peer.name)
            row = dict(case=group.case, shape=group.shape, ours=group.ours.name, ours_s=ours_s, peer=peer.name)
            row.update(peer_s=peer_s, ratio=ours_s / peer_s, target=limit, flops=group.flops)
            row.update(met=None if limit is None else ours_s / peer_s <= limit)
            row.update(peak_fraction=group.flops / ours_s / peak if group.flops else None)
            row.update(ours_compile_s=group.ours.compile_s, peer_compile_s=peer.compile_s)
            rows.append(dict(row, ours_runs=len(group.ours.runs), peer_runs=len(peer.runs)))
    return rows


def meta(sizes: Sizes, peaks: list[float]) -> dict:
    torch = import_torch(sizes)
    device = jax.devices()[0]
    return dict(
        backend=jax.default_backend(), device=str(device), device_kind=device.device_kind,
        jax=jax.__version__, jaxlib=importlib.metadata.version("jaxlib"),
        flax=flax.__version__, torch=torch.__version__ if torch else None, cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads() if torch else None,
        platform=platform.platform(), python=platform.python_version(), matmul_peak_flops=statistics.median(peaks),
        matmul_peaks_flops=peaks, matmul_peak_size=sizes.peak_size, sizes=dataclasses.asdict(sizes),
    )  # fmt: skip


def run(sizes: Sizes, out: str | None) -> list[dict]:
    """Build every case, time them interleaved, print the table, write the CSV and meta (if ``out``)."""
    groups = build(sizes)
    peaks = measure(groups, sizes)
    rows = summarize(groups, statistics.median(peaks))
    print_table(rows)
    if out:
        path = pathlib.Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        io.write_csv(path, rows, COLUMNS)
        io.write_json(path.parent / "bench_meta.json", meta(sizes, peaks))
    return rows


def _fmt(value) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict]) -> None:
    shown = [c for c in COLUMNS if not c.endswith(("_runs", "compile_s"))]
    table = [shown] + [[_fmt(row.get(c)) for c in shown] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(shown))]
    for line in table:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)), flush=True)


_OUT = flags.DEFINE_string("out", "runs/bench/bench.csv", "CSV to write (bench_meta.json beside it).")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny sizes (seconds): a smoke test of every case.")
_ROUNDS = flags.DEFINE_integer("rounds", None, "Interleaved rounds (default 3; quick 2).")
_CASES = flags.DEFINE_list("cases", list(CASES), f"Which of {','.join(CASES)} to run.")
_TORCH = flags.DEFINE_bool("torch", True, "Include torch rows when torch is importable.")
_TORCH_THREADS = flags.DEFINE_integer("torch_threads", 0, "torch's threads (0: one per CPU).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if unknown := set(_CASES.value) - set(CASES):
        raise app.UsageError(f"--cases: unknown {sorted(unknown)}; known: {','.join(CASES)}")
    overrides = dict(cases=tuple(_CASES.value), torch=_TORCH.value, torch_threads=_TORCH_THREADS.value)
    if _ROUNDS.value is not None:
        overrides["rounds"] = _ROUNDS.value
    run(dataclasses.replace(QUICK if _QUICK.value else Sizes(), **overrides), _OUT.value)


if __name__ == "__main__":
    app.run(main)
