"""The approximate evaluation: a seeded sample of objects and views, and 95% intervals.

Call chain: ``sample_plan -> sample_objects, sample_views``; ``summarize -> interval``.

The published ``eval_approx.py`` scores one random target view per object for a quick
look; ``eval.approx.protocol: published`` reproduces it (every object of the val split, one
view each, seed 1234: :class:`pixelnerf.eval.config.ApproxConfig`). Here the render step
(``--approx``) draws the objects with :func:`sample_objects` over the whole split, then
each object's target views with :func:`sample_views` once its views are known
(``eval.approx.objects``, ``eval.approx.views``, ``eval.approx.seed``);
:func:`sample_plan` is the same draw for a known candidate list, all at once.
``pixelnerf metrics`` scores the renders like any shard, and :func:`summarize` turns the
object rows into a mean and a confidence interval per metric.

The interval is Student's t over object means: each object's mean over its sampled views
is one observation, so the spread between objects already carries the view sampling
(a two-stage sample whose first stage is objects). The finite-population correction is
left out, which makes the interval conservative when a large share of objects is drawn.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pixelnerf.errors import PipelineError
from pixelnerf.eval.metrics import METRICS
from pixelnerf.eval.object_scores import ObjectRow
from pixelnerf.io import atomic_write_text

DEFAULT_CONFIDENCE = 0.95
SUMMARY_COLUMNS = ("setting", "metric", "n_objects", "n_views", "mean", "std", "ci_low",
                   "ci_high", "confidence")


@dataclass(frozen=True)
class ApproxPick:
    """One sampled object and its sampled target views (sorted)."""

    object_id: str
    views: tuple[int, ...]


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PipelineError(f"eval.approx.{name} must be a positive integer, not {value!r}")


def sample_objects(object_ids: Sequence[str], count: int | None, seed: int) -> list[str]:
    """``count`` distinct objects drawn with ``seed`` (all of them if fewer, or if ``count``
    is None: the published protocol), sorted.

    The draw runs over the sorted ids, so it does not depend on the dataset's order.
    """
    pool = sorted(set(object_ids))
    if len(pool) != len(object_ids):
        raise PipelineError("the object list given to the approximate sampler has duplicates")
    if count is None:
        return pool
    _check_count("objects", count)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return sorted(pool[i] for i in chosen)


def sample_views(
    object_id: str, candidates: Sequence[int], count: int, seed: int
) -> tuple[int, ...]:
    """``count`` distinct target views of one object (all if fewer), sorted.

    The generator is seeded by ``seed`` and the object's id, so an object's views do not
    change when other objects join or leave the sample.
    """
    _check_count("views", count)
    pool = sorted(set(int(v) for v in candidates))
    if not pool:
        raise PipelineError(f"object {object_id} has no candidate target views")
    rng = np.random.default_rng([seed, zlib.crc32(object_id.encode("utf-8"))])
    chosen = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return tuple(sorted(pool[i] for i in chosen))


def sample_plan(
    candidates: Mapping[str, Sequence[int]], n_objects: int | None, n_views: int, seed: int
) -> list[ApproxPick]:
    """Objects and views to render: candidates maps object_id -> its eligible target views
    (sources and excluded views already removed). Returns picks sorted by object id."""
    objects = sample_objects(list(candidates), n_objects, seed)
    return [ApproxPick(obj, sample_views(obj, candidates[obj], n_views, seed)) for obj in objects]


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` observations, sample standard deviation and the confidence interval;
    ``low``/``high`` are None with fewer than two observations."""

    n: int
    mean: float
    std: float | None
    low: float | None
    high: float | None


def interval(values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Student-t interval ``mean ± t_{(1+c)/2, n-1} * s / sqrt(n)`` of ``values``."""
    from scipy.stats import t as student_t

    if not 0.0 < confidence < 1.0:
        raise PipelineError(f"confidence must lie in (0, 1), not {confidence}")
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise PipelineError("no values to summarise")
    mean = float(data.mean())
    if data.size < 2:
        return Interval(1, mean, None, None, None)
    std = float(data.std(ddof=1))
    half = float(student_t.ppf(0.5 + confidence / 2.0, data.size - 1)) * std / math.sqrt(data.size)
    return Interval(int(data.size), mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class MetricSummary:
    setting: str
    metric: str
    n_views: int
    interval: Interval | None  # None: the metric was not computed (LPIPS without weights)


def summarize(
    rows: Sequence[ObjectRow], confidence: float = DEFAULT_CONFIDENCE
) -> list[MetricSummary]:
    """Per view setting and metric, the mean over objects with its interval.

    Baseline rows are left out. A metric that some object lacks is reported as not computed.
    """
    ours = [row for row in rows if not row.is_baseline]
    if not ours:
        raise PipelineError("no object rows to summarise")
    out = []
    for setting in sorted({row.setting for row in ours}):
        members = [row for row in ours if row.setting == setting]
        n_views = sum(row.n_views for row in members)
        for metric in METRICS:
            values = [getattr(row, metric) for row in members]
            result = None if any(v is None for v in values) else interval(values, confidence)
            out.append(MetricSummary(setting, metric, n_views, result))
    return out


def summary_csv_text(summaries: Sequence[MetricSummary], confidence: float) -> str:
    """CSV with columns ``SUMMARY_COLUMNS``; empty cells where a value is undefined."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)

    def cell(value: float | None) -> str:
        return "" if value is None else repr(value)

    for summary in summaries:
        iv = summary.interval
        writer.writerow([
            summary.setting, summary.metric, iv.n if iv else "", summary.n_views,
            cell(iv.mean if iv else None), cell(iv.std if iv else None),
            cell(iv.low if iv else None), cell(iv.high if iv else None), confidence,
        ])
    return buffer.getvalue()


def write_summary(path: str | os.PathLike, rows: Sequence[ObjectRow],
                  confidence: float = DEFAULT_CONFIDENCE) -> list[MetricSummary]:
    """Summarise ``rows`` and write ``results/approx/<exp>.csv`` atomically."""
    summaries = summarize(rows, confidence)
    atomic_write_text(path, summary_csv_text(summaries, confidence))
    return summaries
