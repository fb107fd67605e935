"""Loss and accuracy: per token, per sequence, and per dependency distance.

On device everything is a sum (correct counts, target counts, summed loss), so the sums of several
evaluation batches add up exactly; ratios are taken on the host at the end. Per-distance tables are
``jax.ops.segment_sum`` over the distance labels, sized by the task's ``max_distance``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rvt.tasks.base import Batch
from rvt.typing import Array


def masked_cross_entropy(logits_BxTxV: Array, batch: Batch) -> Array:
    """Mean cross-entropy over the positions the mask selects."""
    ce_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, batch.targets)
    return jnp.sum(ce_BxT * batch.mask) / jnp.maximum(jnp.sum(batch.mask), 1.0)


def correct(logits_BxTxV: Array, batch: Batch) -> Array:
    """[B, T] float 1.0 where the argmax prediction equals the target."""
    return (jnp.argmax(logits_BxTxV, axis=-1) == batch.targets).astype(jnp.float32)


def accuracy(logits_BxTxV: Array, batch: Batch) -> Array:
    hits_BxT = correct(logits_BxTxV, batch) * batch.mask
    return jnp.sum(hits_BxT) / jnp.maximum(jnp.sum(batch.mask), 1.0)


def token_sums(ce_BxT: Array, hits_BxT: Array, mask_BxT: Array) -> dict[str, Array]:
    """The additive scalars :func:`summarize` reads: ``loss_sum, correct, count, seq_correct, seq_count``
    (a sequence is correct when every scored position is; sequences with nothing scored do not count)."""
    scored_B = jnp.sum(mask_BxT, axis=-1) > 0
    seq_ok_B = jnp.all((hits_BxT > 0) | (mask_BxT == 0), axis=-1) & scored_B
    return dict(
        loss_sum=jnp.sum(ce_BxT * mask_BxT),
        correct=jnp.sum(hits_BxT),
        count=jnp.sum(mask_BxT),
        seq_correct=jnp.sum(seq_ok_B.astype(jnp.float32)),
        seq_count=jnp.sum(scored_B.astype(jnp.float32)),
    )


def eval_sums(logits_BxTxV: Array, batch: Batch, num_distances: int) -> dict[str, Array]:
    """Additive statistics of one batch; ``num_distances`` = task.max_distance + 1.

    Returns the scalars of :func:`token_sums` and [N] tables ``distance_correct, distance_count``
    indexed by exact distance (label -1 is dropped).
    """
    ce_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, batch.targets)
    hits_BxT = correct(logits_BxTxV, batch) * batch.mask
    labelled_BxT = (batch.distance >= 0) & (batch.mask > 0)
    # Unlabelled positions go to segment num_distances, which segment_sum drops.
    ids = jnp.where(labelled_BxT, batch.distance, num_distances).reshape(-1)
    return dict(
        **token_sums(ce_BxT, hits_BxT, batch.mask),
        distance_correct=jax.ops.segment_sum(hits_BxT.reshape(-1), ids, num_distances),
        distance_count=jax.ops.segment_sum(labelled_BxT.astype(jnp.float32).reshape(-1), ids, num_distances),
    )


def position_sums(logits_BxTxV: Array, batch) -> dict[str, Array]:
    """Additive statistics of one batch: the scalars of :func:`token_sums` and [T] per-position tables
    ``position_correct, position_count`` (accuracy by output position)."""
    ce_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, batch.targets)
    hits_BxT = correct(logits_BxTxV, batch) * batch.mask
    return dict(
        **token_sums(ce_BxT, hits_BxT, batch.mask),
        position_correct=jnp.sum(hits_BxT, axis=0),
        position_count=jnp.sum(batch.mask, axis=0),
    )


def position_rows(sums: dict) -> list[dict]:
    """One row per output position: ``position, accuracy``."""
    correct_T, count_T = np.asarray(sums["position_correct"]), np.asarray(sums["position_count"])
    return [dict(position=t, accuracy=float(correct_T[t] / max(count_T[t], 1.0))) for t in range(len(count_T))]


def summarize(sums: dict) -> dict[str, float]:
    """Host-side ratios of accumulated :func:`eval_sums`."""
    sums = jax.device_get(sums)
    return dict(
        loss=float(sums["loss_sum"] / max(sums["count"], 1.0)),
        accuracy=float(sums["correct"] / max(sums["count"], 1.0)),
        seq_accuracy=float(sums["seq_correct"] / max(sums["seq_count"], 1.0)),
    )


def distance_rows(sums: dict) -> list[dict]:
    """One row per distance that occurred: ``distance, accuracy, count``."""
    correct_N = np.asarray(sums["distance_correct"])
    count_N = np.asarray(sums["distance_count"])
    return [
        dict(distance=int(d), accuracy=float(correct_N[d] / count_N[d]), count=int(count_N[d]))
        for d in np.flatnonzero(count_N)
    ]


def bucket(distances, accuracies, counts, edges) -> list[dict]:
    """Count-weighted accuracy in buckets ``[edges[i], edges[i+1])``; empty buckets are omitted."""
    distances, accuracies, counts = map(np.asarray, (distances, accuracies, counts))
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (distances >= lo) & (distances < hi)
        n = counts[sel].sum()
        if n > 0:
            acc = float((accuracies[sel] * counts[sel]).sum() / n)
            rows.append(dict(lo=int(lo), hi=int(hi), accuracy=acc, count=int(n)))
    return rows


# Student t 0.975 quantiles for 1..30 degrees of freedom (a 95% two-sided interval of a mean).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def mean_range(values) -> tuple[float, float, float, int]:
    """Mean over seeds and the range every seed fell in: ``(mean, min, max, n)`` (NaNs, e.g. a regime
    never learnt, left out). With 2-5 seeds a t-interval is wider than an accuracy's range (t = 12.7 at
    n = 2); the min-max range is what the seeds did, and it never leaves the metric's own range."""
    values = np.asarray([v for v in values if v == v], np.float64)
    if not values.size:
        return float("nan"), float("nan"), float("nan"), 0
    return float(values.mean()), float(values.min()), float(values.max()), int(values.size)


def mean_interval(values) -> tuple[float, float, int]:
    """Mean over seeds and the half-width of its 95% confidence interval (Student t; 0 for one seed):
    ``(mean, half_width, n)``."""
    values = np.asarray(values, np.float64)
    n = values.size
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return mean, 0.0, n
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    return mean, float(t * values.std(ddof=1) / np.sqrt(n)), n
