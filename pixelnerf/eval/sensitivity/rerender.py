"""Variants that change the rendering, on a seeded sample of objects and target views.

Call chain: ``sample_plan -> variant_selection``; ``variant_inference``, then
``render_views`` per sampled object.

Each sampled object gets the same target views in every variant: drawn (seeded) among the
views that are targets of the reference and of every variant (a source draw that takes a
view makes it no target). The reference is scored on those views from its PNGs; each
variant renders them through the render step's own functions (the evaluation renderer of a
changed ``renderer`` section, built with that section's inference plan as the render step
builds it, so that a ``precision`` variant runs in its precision; the object's seed, its
source views under the variant's protocol) and is scored the same way, on its 8-bit images
as the render step writes them, or on the float renders for ``score_float``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pixelnerf.errors import PipelineError
from pixelnerf.eval.approx import sample_views
from pixelnerf.eval.inference import Cameras, Inference, load_inference, to_uint8, view_count
from pixelnerf.eval.protocol import Protocol, ViewSelection, stable_seed
from pixelnerf.eval.render import ObjectPlan, RenderJob, render_object
from pixelnerf.eval.scoring import ground_truth_views
from pixelnerf.eval.sensitivity.choices import RenderVariant


@dataclass(frozen=True)
class SampledObject:
    """A sampled object: its index in the split, category and the target views scored."""

    object_id: str
    index: int
    category: str
    views: tuple[int, ...]


@dataclass(frozen=True)
class RenderedViews:
    """A variant's renders of one sampled object, each (NT, H, W, 3) float64 in [0, 1]:
    ``images`` as rendered (clamped), ``eight_bit`` as the render step writes them."""

    images: np.ndarray
    eight_bit: np.ndarray


def first_object_cameras(dataset: Any) -> Cameras:
    """The split's first object's cameras (the published DTU quirk renders all with them)."""
    return Cameras.of_item(dataset[0])


def variant_views(variant: RenderVariant, dataset: Any, index: int,
                  first: Cameras | None) -> int:
    """The views of object ``index`` under the variant's cameras."""
    if variant.eval.reuse_first_object_cameras:
        if first is None:
            raise PipelineError("the first object's cameras were not loaded")
        return int(first.poses.shape[0])
    return view_count(dataset, index)


def variant_selection(variant: RenderVariant, setting: str, object_id: str,
                      n_views: int) -> ViewSelection:
    return Protocol.from_config(variant.eval).select(setting, object_id, n_views)


def sample_plan(objects: Sequence[tuple[str, int, str, Sequence[int]]],
                variants: Sequence[RenderVariant], setting: str, dataset: Any,
                first: Cameras | None, views: int, seed: int) -> list[SampledObject]:
    """Per object (id, split index, category, reference targets): ``views`` target views
    (seeded) that every variant also has as targets."""
    plan = []
    for object_id, index, category, targets in objects:
        candidates = set(targets)
        for variant in variants:
            n_views = variant_views(variant, dataset, index, first)
            candidates &= set(variant_selection(variant, setting, object_id, n_views).targets)
        if not candidates:
            raise PipelineError(f"object {object_id}: no target view is common to every "
                                "protocol variant")
        plan.append(SampledObject(object_id, index, category,
                                  sample_views(object_id, sorted(candidates), views, seed)))
    return plan


def variant_inference(job: RenderJob, variant: RenderVariant, device: torch.device,
                      announce: Callable[[str], None] | None = None) -> Inference:
    """The model of ``job``'s checkpoint and the renderer of the variant's ``renderer``
    section, built with the plan resolved from that section (``announce``: its one line)."""
    return load_inference(job.model, variant.renderer, job.checkpoint, device, announce)


def render_views(model: torch.nn.Module, renderer: Any, job: RenderJob, variant: RenderVariant,
                 setting: str, item: Mapping[str, Any], sampled: SampledObject,
                 first: Cameras | None, device: torch.device) -> RenderedViews:
    """The sampled views of one object rendered under ``variant``."""
    cameras = first if variant.eval.reuse_first_object_cameras else Cameras.of_item(item)
    if cameras is None:
        raise PipelineError("the first object's cameras were not loaded")
    n_views = int(cameras.poses.shape[0])
    selection = variant_selection(variant, setting, sampled.object_id, n_views)
    plan = ObjectPlan(sampled.object_id, ViewSelection(selection.sources, sampled.views),
                      stable_seed(job.eval.seed, setting, sampled.object_id), fingerprint="")
    passes = render_object(model, renderer, item, cameras, plan, job.eval.ray_batch,
                           device, extras=False)
    images = np.clip(passes.rgb.detach().float().cpu().numpy().astype(np.float64), 0.0, 1.0)
    return RenderedViews(images, to_uint8(passes.rgb).astype(np.float64) / 255.0)


def truths_of(item: Mapping[str, Any], sampled: SampledObject) -> list[np.ndarray]:
    truth = ground_truth_views(item, sampled.object_id)
    return [truth[view] for view in sampled.views]
