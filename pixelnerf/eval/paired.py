"""Paired differences between two scorings of the same objects, with bootstrap intervals.

Call chain: ``paired_summary -> paired_bootstrap``.

Two scorings (two runs, or a protocol variant against its reference) are paired by object:
each object gives one difference ``b - a`` per metric (its means over its target views),
and a group's effect is the mean of those differences. The interval is the percentile
interval of a paired bootstrap over objects: ``resamples`` times, as many objects as the
group has are drawn with replacement, and the mean of their differences is taken. One
resample of objects serves every metric of the group, and each group's draw starts from
the same ``seed``, so a group's interval depends on its own differences and the seed only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pixelnerf.errors import PipelineError
from pixelnerf.eval.metrics import METRICS

DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95
# Resampled object indices held in memory at once (int64): 128 MiB, whatever the group size.
BOOTSTRAP_BLOCK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class PairedEffect:
    """A metric's mean paired difference ``b - a`` over ``n`` objects and its interval."""

    n: int
    mean: float
    low: float
    high: float


def _check(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise PipelineError(f"bootstrap resamples must be positive, not {resamples}")
    if not 0.0 < confidence < 1.0:
        raise PipelineError(f"confidence must lie strictly between 0 and 1, not {confidence}")


def bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of ``resamples`` bootstrap samples of the rows of ``values``.

    values: (n, m) float64, one row per object, one column per metric. Returns
    (resamples, m): each row the column means over n objects drawn with replacement (the
    same draw for every column). Drawn in blocks so memory stays bounded for large n.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 1:
        raise PipelineError(f"bootstrap needs (objects, metrics) values, got {values.shape}")
    n = values.shape[0]
    rng = np.random.default_rng(seed)
    block = max(1, BOOTSTRAP_BLOCK_ELEMENTS // n)
    out = np.empty((resamples, values.shape[1]), dtype=np.float64)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        index = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[index].mean(axis=1)
    return out


def paired_bootstrap(
    differences: np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> list[PairedEffect]:
    """Mean and percentile bootstrap interval of each column of ``differences``.

    differences: (n, m) per-object differences ``b - a``; returns m effects. The bounds
    are the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles (numpy's
    linear interpolation) of the bootstrap means.
    """
    _check(resamples, confidence)
    differences = np.asarray(differences, dtype=np.float64)
    if differences.ndim == 1:
        differences = differences[:, None]
    if not np.all(np.isfinite(differences)):
        raise PipelineError("a paired difference is not finite (an image scored infinite PSNR?)")
    means = bootstrap_means(differences, resamples, seed)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    n = differences.shape[0]
    return [
        PairedEffect(n, math.fsum(differences[:, j]) / n, float(low[j]), float(high[j]))
        for j in range(differences.shape[1])
    ]


def paired_summary(
    a: Sequence[Mapping[str, float | None]],
    b: Sequence[Mapping[str, float | None]],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, PairedEffect | None]:
    """Per metric of :data:`METRICS`: the effect of ``b - a`` over objects paired by position.

    a, b: one mapping metric -> value per object, in the same object order. A metric that
    some object lacks on either side (LPIPS without weights) gives None; the others share
    one bootstrap draw.
    """
    if len(a) != len(b):
        raise PipelineError(f"paired scorings differ in length: {len(a)} and {len(b)} objects")
    if not a:
        raise PipelineError("no objects to pair")
    present = [m for m in METRICS
               if all(x.get(m) is not None for x in a) and all(y.get(m) is not None for y in b)]
    result: dict[str, PairedEffect | None] = dict.fromkeys(METRICS)
    if present:
        diffs = np.array([[float(y[m]) - float(x[m]) for m in present]  # type: ignore[arg-type]
                          for x, y in zip(a, b, strict=True)])
        for metric, effect in zip(present, paired_bootstrap(diffs, resamples, seed, confidence),
                                  strict=True):
            result[metric] = effect
    return result
