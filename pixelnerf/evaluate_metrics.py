"""``pixelnerf metrics``: score one render shard against the dataset's ground truth.

Call chain: ``run -> score_shard -> score_object -> pixelnerf.metrics.score_views``.

Reads the shard manifest ``{"setting", "objects"}``, each object's ``done.json``
(``sources``, ``targets``, ``category``) and its 8-bit renders
``<renders>/<setting>/<object_id>/{view:06d}.png``; ground truth is the dataset item's
``images * 0.5 + 0.5``. Writes one CSV row per object (pixelnerf.object_scores), plus
the two trivial baselines per object when the experiment sets ``eval.baselines``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelnerf import metrics
from pixelnerf.errors import PipelineError
from pixelnerf.object_scores import BASELINE_PREFIX, ObjectRow, write_rows

BASELINE_BACKGROUND = BASELINE_PREFIX + "background"
BASELINE_SOURCE_VIEW = BASELINE_PREFIX + "source_view"

# object_id -> dataset item (a mapping with at least ``images`` (NV, 3, H, W) in [-1, 1])
GroundTruth = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True)
class RenderedObject:
    """What the render step recorded for one object (its done.json)."""

    object_id: str
    category: str
    sources: tuple[int, ...]
    targets: tuple[int, ...]
    folder: Path


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PipelineError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{what} {path} is not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise PipelineError(f"{what} {path} must hold a JSON object")
    return data


def read_manifest(path: str | os.PathLike) -> tuple[str, list[str]]:
    """A shard manifest -> (setting, object ids in order)."""
    path = Path(path)
    data = _read_json(path, "render manifest")
    setting, objects = data.get("setting"), data.get("objects")
    if not isinstance(setting, str) or not setting:
        raise PipelineError(f"render manifest {path}: key 'setting' must be a non-empty string")
    if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
        raise PipelineError(f"render manifest {path}: key 'objects' must be a list of strings")
    return setting, objects


def read_done(renders_root: str | os.PathLike, setting: str, object_id: str) -> RenderedObject:
    """One object's done.json under ``<renders_root>/<setting>/<object_id>/``."""
    folder = Path(renders_root) / setting / object_id
    path = folder / "done.json"
    data = _read_json(path, "render record")
    for key in ("category", "sources", "targets"):
        if key not in data:
            raise PipelineError(f"render record {path} lacks the key '{key}'")
    if data.get("object_id", object_id) != object_id:
        raise PipelineError(f"render record {path} names object {data['object_id']!r}")
    views = {}
    for key in ("sources", "targets"):
        value = data[key]
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            raise PipelineError(f"render record {path}: '{key}' must be a list of view indices")
        views[key] = tuple(value)
    if not views["targets"]:
        raise PipelineError(f"render record {path} has no target views")
    return RenderedObject(object_id, str(data["category"]), views["sources"], views["targets"],
                          folder)


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
    lpips_batch_size: int = metrics.DEFAULT_LPIPS_BATCH_SIZE,
    baselines: bool = False,
    white_background: bool = True,
) -> list[ObjectRow]:
    """The object's row, then (with ``baselines``) its background and source-view rows."""
    gt_all = ground_truth_views(item, rendered.object_id)
    n_total = gt_all.shape[0]
    for view in rendered.targets + rendered.sources:
        if view >= n_total:
            raise PipelineError(f"render record {rendered.folder / 'done.json'} names view "
                                f"{view} but the object has {n_total} views")
    gts = [gt_all[view] for view in rendered.targets]
    preds = []
    for view in rendered.targets:
        png = rendered.folder / f"{view:06d}.png"
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
            raise PipelineError(f"render record {rendered.folder / 'done.json'} has no source "
                                "view for the source-view baseline")
        source = metrics.quantize_8bit(gt_all[rendered.sources[0]])
        rows.append(row(BASELINE_SOURCE_VIEW, [source] * len(gts)))
    return rows


def score_shard(
    setting: str,
    object_ids: Sequence[str],
    renders_root: str | os.PathLike,
    ground_truth: GroundTruth,
    lpips_model=None,
    lpips_batch_size: int = metrics.DEFAULT_LPIPS_BATCH_SIZE,
    baselines: bool = False,
    white_background: bool = True,
    progress: bool = True,
) -> list[ObjectRow]:
    """Score every object of a shard, in manifest order, with a progress bar."""
    from tqdm import tqdm

    rows: list[ObjectRow] = []
    for object_id in tqdm(object_ids, desc=f"metrics {setting}", unit="obj", disable=not progress):
        rendered = read_done(renders_root, setting, object_id)
        rows.extend(score_object(setting, rendered, ground_truth(object_id), lpips_model,
                                 lpips_batch_size, baselines, white_background))
    return rows


def dataset_lookup(dataset: Any) -> GroundTruth:
    """object_id -> item for a dataset of :func:`pixelnerf.data.open_dataset`.

    Uses the dataset's listing (``entries``, each with an ``object_id``, as
    ``pixelnerf.data.ObjectDataset`` keeps them), so only the objects asked for are loaded;
    a dataset without one is read once, item by item, to learn the ids.
    """
    entries = getattr(dataset, "entries", None)
    if entries is not None:
        ids = [entry.object_id for entry in entries]
    else:
        ids = [dataset[i]["object_id"] for i in range(len(dataset))]
    index = {object_id: i for i, object_id in enumerate(ids)}

    def lookup(object_id: str) -> Mapping[str, Any]:
        if object_id not in index:
            raise PipelineError(f"object {object_id} is not in the evaluation split of the dataset")
        item = dataset[index[object_id]]
        if item.get("object_id", object_id) != object_id:
            raise PipelineError(f"dataset item {index[object_id]} is {item['object_id']}, "
                                f"expected {object_id}")
        return item

    return lookup


def open_ground_truth(config: Mapping[str, Any], data_root: str | os.PathLike) -> GroundTruth:
    """The experiment's evaluation split (``eval.split``) as an object_id -> item lookup."""
    from pixelnerf.config import section
    from pixelnerf.data import open_dataset

    dataset_cfg = section(config, "dataset")
    eval_cfg = section(config, "eval")
    root = Path(data_root) / dataset_cfg["dir"]
    if not root.exists():
        raise PipelineError(f"dataset folder {root} does not exist")
    options = {}
    if dataset_cfg.get("list_prefix") is not None:
        options["list_prefix"] = dataset_cfg["list_prefix"]
    image_size = dataset_cfg.get("image_size")
    dataset = open_dataset(dataset_cfg["format"], root, eval_cfg["split"],
                           image_size=tuple(image_size) if image_size else None, **options)
    return dataset_lookup(dataset)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--data-root", required=True, help="root folder of the datasets")
    parser.add_argument("--manifest", required=True,
                        help="results/<exp>/render/<setting>/shard-k-of-K.json")
    parser.add_argument("--renders", required=True, help="results/<exp>/render")
    parser.add_argument("--out", required=True, help="output CSV of this shard")
    parser.add_argument("--lpips-weights", default=None,
                        help="torchvision VGG16 weights file; default: torch's hub cache")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (LPIPS)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment, section
    from pixelnerf.device import resolve_device

    config = load_experiment(args.config)
    eval_cfg = section(config, "eval")
    renderer_cfg = section(config, "renderer")
    setting, object_ids = read_manifest(args.manifest)
    ground_truth = open_ground_truth(config, args.data_root)
    lpips_model = metrics.lpips_or_none(
        args.lpips_weights, resolve_device(args.device),
        report=lambda line: print(line, file=sys.stderr),
    )
    rows = score_shard(
        setting, object_ids, args.renders, ground_truth, lpips_model,
        lpips_batch_size=int(eval_cfg.get("lpips_batch_size", metrics.DEFAULT_LPIPS_BATCH_SIZE)),
        baselines=bool(eval_cfg.get("baselines", False)),
        white_background=bool(renderer_cfg["white_bkgd"]),
        progress=not args.no_progress,
    )
    write_rows(args.out, rows)
    return 0
