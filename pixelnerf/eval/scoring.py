"""Score one render shard against the dataset's ground truth.

Call chain: ``score_shard -> score_object -> pixelnerf.eval.metrics.score_views``.

Reads each object's ``done.json`` (``sources``, ``targets``, ``category``, through
pixelnerf.eval.records) and its 8-bit renders ``<renders>/<setting>/<object_id>/{view:06d}.png``;
ground truth is the dataset item's ``images * 0.5 + 0.5``. Gives one row per object
(pixelnerf.eval.object_scores), plus the two trivial baselines per object when the experiment
sets ``eval.baselines``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pixelnerf.errors import PipelineError
from pixelnerf.eval import metrics
from pixelnerf.eval.config import DEFAULT_LPIPS_BATCH_SIZE
from pixelnerf.eval.inference import ItemLookup
from pixelnerf.eval.object_scores import BASELINE_PREFIX, ObjectRow
from pixelnerf.eval.records import RenderedObject, read_done

BASELINE_BACKGROUND = BASELINE_PREFIX + "background"
BASELINE_SOURCE_VIEW = BASELINE_PREFIX + "source_view"


def ground_truth_views(item: Mapping[str, Any], object_id: str) -> np.ndarray:
    """Dataset item -> all its views as (NV, H, W, 3) float64 in [0, 1]."""
    images = item.get("images")
    if images is None:
        raise PipelineError(f"dataset item of {object_id} has no 'images'")
    array = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if array.ndim != 4 or array.shape[1] < 3:
        raise PipelineError(f"dataset images of {object_id} have shape {array.shape}, "
                            "expected (NV, 3, H, W)")
    return np.transpose(array[:, :3].astype(np.float64) * 0.5 + 0.5, (0, 2, 3, 1))


def score_object(
    setting: str,
    rendered: RenderedObject,
    item: Mapping[str, Any],
    lpips_model=None,
    lpips_batch_size: int = DEFAULT_LPIPS_BATCH_SIZE,
    baselines: bool = False,
    white_background: bool = True,
) -> list[ObjectRow]:
    """The object's row, then (with ``baselines``) its background and source-view rows."""
    gt_all = ground_truth_views(item, rendered.object_id)
    n_total = gt_all.shape[0]
    for view in rendered.targets + rendered.sources:
        if view >= n_total:
            raise PipelineError(f"render record {rendered.record_path} names view "
                                f"{view} but the object has {n_total} views")
    gts = [gt_all[view] for view in rendered.targets]
    preds = []
    for view in rendered.targets:
        png = rendered.render_path(view)
        if not png.is_file():
            raise PipelineError(f"render {png} is missing (listed as a target in done.json)")
        pred = metrics.read_png(png)
        if pred.shape != gts[0].shape:
            raise PipelineError(f"render {png} has shape {pred.shape[:2]}, ground truth "
                                f"{gts[0].shape[:2]}")
        preds.append(pred)

    def row(category: str, predictions: Sequence[np.ndarray]) -> ObjectRow:
        scores = metrics.score_views(predictions, gts, lpips_model, lpips_batch_size)
        return ObjectRow(setting, category, rendered.object_id, scores.n_views, scores.psnr,
                         scores.ssim, scores.lpips)

    rows = [row(rendered.category, preds)]
    if baselines:
        height, width = gts[0].shape[:2]
        background = metrics.quantize_8bit(
            metrics.background_image(height, width, white_background))
        rows.append(row(BASELINE_BACKGROUND, [background] * len(gts)))
        if not rendered.sources:
            raise PipelineError(f"render record {rendered.record_path} has no source "
                                "view for the source-view baseline")
        source = metrics.quantize_8bit(gt_all[rendered.sources[0]])
        rows.append(row(BASELINE_SOURCE_VIEW, [source] * len(gts)))
    return rows


def score_shard(
    setting: str,
    object_ids: Sequence[str],
    renders_root: str | os.PathLike,
    ground_truth: ItemLookup,
    lpips_model=None,
    lpips_batch_size: int = DEFAULT_LPIPS_BATCH_SIZE,
    baselines: bool = False,
    white_background: bool = True,
    progress: bool = True,
    workers: int = 1,
) -> list[ObjectRow]:
    """Score every object of a shard, rows in manifest order, with a progress bar.

    ``workers`` threads score objects at once: decoding PNGs and SSIM's filters run outside
    Python's lock, and SSIM is most of the time (about 4 ms a 64 x 64 view, against 0.04 ms
    for PSNR), so that a shard's metrics keep up with a fast render. The first object that
    fails, in manifest order, raises its error.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    def score(object_id: str) -> list[ObjectRow]:
        rendered = read_done(renders_root, setting, object_id)
        return score_object(setting, rendered, ground_truth(object_id), lpips_model,
                            lpips_batch_size, baselines, white_background)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="metrics") as pool:
        scored = tqdm(pool.map(score, object_ids), total=len(object_ids),
                      desc=f"metrics {setting}", unit="obj", disable=not progress)
        return [row for rows in scored for row in rows]
