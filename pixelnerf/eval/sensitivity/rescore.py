"""Variants that only re-score the reference's PNGs: each object's row is the reference's
own row (from its metrics file) with the one metric the variant changes scored again."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from pixelnerf.errors import PipelineError
from pixelnerf.eval import metrics
from pixelnerf.eval.inference import ItemLookup
from pixelnerf.eval.object_scores import ObjectRow
from pixelnerf.eval.records import read_done
from pixelnerf.eval.scoring import ground_truth_views
from pixelnerf.eval.sensitivity.choices import RescoreVariant
from pixelnerf.eval.sensitivity.lpips_seam import LpipsModels
from pixelnerf.eval.sensitivity.scoring import lpips_of, ssim_mean


@dataclass(frozen=True)
class ObjectImages:
    """One object's rendered views (from its PNGs) beside their truths, each (H, W, 3)
    float64 in [0, 1]; ``sources`` as its render record lists them."""

    object_id: str
    views: tuple[int, ...]
    sources: tuple[int, ...]
    preds: list[np.ndarray]
    truths: list[np.ndarray]


def object_images(renders: str | os.PathLike, setting: str, object_id: str,
                  ground_truth: ItemLookup, views: Sequence[int] | None = None) -> ObjectImages:
    """The object's PNGs (of ``views``, default all its targets) and their truths."""
    rendered = read_done(renders, setting, object_id)
    chosen = tuple(rendered.targets if views is None else views)
    missing = sorted(set(chosen) - set(rendered.targets))
    if missing:
        raise PipelineError(f"object {object_id}: views {missing} have no render")
    truth = ground_truth_views(ground_truth(object_id), object_id)
    if max(chosen) >= truth.shape[0]:
        raise PipelineError(f"render record {rendered.record_path} names view {max(chosen)} "
                            f"but the object has {truth.shape[0]} views")
    preds = [metrics.read_png(rendered.render_path(view)) for view in chosen]
    return ObjectImages(object_id, chosen, rendered.sources, preds,
                        [truth[view] for view in chosen])


def rescore_row(row: ObjectRow, images: ObjectImages, variant: RescoreVariant,
                models: LpipsModels, batch_size: int) -> ObjectRow:
    """``row`` with ``variant.metric`` scored again on ``images``."""
    if variant.metric == "ssim":
        value: float | None = ssim_mean(images.preds, images.truths, variant.scoring.ssim_window)
    else:
        value = lpips_of(images.preds, images.truths, variant.scoring, models, batch_size)
    return dataclasses.replace(row, **{variant.metric: value})


def rescore(rows: Sequence[ObjectRow], renders: str | os.PathLike, ground_truth: ItemLookup,
            variants: Sequence[RescoreVariant], models: LpipsModels, batch_size: int,
            workers: int = 1) -> list[list[ObjectRow]]:
    """Per variant, the reference rows (non-baseline, one setting) re-scored, in order.

    A variant whose LPIPS model is absent is not scored: its rows keep lpips None. Objects
    are scored by ``workers`` threads (decoding and SSIM's filters release Python's lock).
    """
    active = [v for v in variants if v.metric != "lpips" or models(v.scoring.lpips_net)]
    if any(row.is_baseline for row in rows):
        raise PipelineError("baseline rows cannot be re-scored")

    def one(row: ObjectRow) -> list[ObjectRow]:
        images = object_images(renders, row.setting, row.object_id, ground_truth)
        if len(images.views) != row.n_views:
            raise PipelineError(f"object {row.object_id}: {len(images.views)} rendered views, "
                                f"{row.n_views} in its metrics row")
        scored = {v: rescore_row(row, images, v, models, batch_size) for v in active}
        unscored = dataclasses.replace(row, lpips=None, lpips_trunk=None)
        return [scored.get(v, unscored) for v in variants]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        per_object = list(pool.map(one, rows))
    return [[scored[i] for scored in per_object] for i in range(len(variants))]
