"""What every step that runs the network needs: the model, cameras, a split, rendering.

Call chain: load_inference -> resolve_plan (once per job), load_model ->
pixelnerf.model.load_checkpoint, Renderer; render_view_passes -> pixelnerf.render.image_rays,
Renderer. Used by the render step, the bench, videos, real photos and the report figure, so
all of them run the network the same way.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.config import build
from pixelnerf.data.config import DatasetConfig
from pixelnerf.errors import PipelineError
from pixelnerf.eval.protocol import ViewSelection
from pixelnerf.model.plan import DEFAULT_PLAN, InferencePlan

# object_id -> dataset item (a mapping with at least ``images`` (NV, 3, H, W) in [-1, 1])
ItemLookup = Callable[[str], Mapping[str, Any]]


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``(..., 3)`` float colours (any device) -> uint8 host array by clamping to [0, 1] and
    truncating ``x * 255`` (in float32)."""
    values = np.clip(rgb.detach().float().cpu().numpy(), 0.0, 1.0)
    return (values * 255).astype(np.uint8)


def device_label(device: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H100 ...)``: recorded per object for the provenance file."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _focal_batch(focal: torch.Tensor) -> torch.Tensor:
    """Per-object focal as the model wants it: ``(1,)`` for one value, ``(1, 2)`` for fx, fy."""
    focal = torch.as_tensor(focal, dtype=torch.float32)
    return focal.reshape(1) if focal.numel() == 1 else focal.reshape(1, 2)


def _principal_batch(c: Any) -> torch.Tensor | None:
    """``(2,)`` principal point -> ``(1, 2)``; None stays None (image centre)."""
    return None if c is None else torch.as_tensor(c, dtype=torch.float32).reshape(1, 2)


@dataclass(frozen=True)
class Cameras:
    """The cameras of one object: poses ``(NV, 4, 4)``, focal scalar or ``(2,)``, c ``(2,)``."""

    poses: torch.Tensor
    focal: torch.Tensor
    c: torch.Tensor | None
    z_near: float
    z_far: float

    @classmethod
    def of_item(cls, item: Mapping[str, Any]) -> Cameras:
        return cls(
            poses=torch.as_tensor(item["poses"], dtype=torch.float32),
            focal=torch.as_tensor(item["focal"], dtype=torch.float32),
            c=None if item.get("c") is None else torch.as_tensor(item["c"], dtype=torch.float32),
            z_near=float(item["z_near"]),
            z_far=float(item["z_far"]),
        )


def load_model(model_config: Mapping[str, Any], checkpoint: Path, device: torch.device,
               plan: InferencePlan = DEFAULT_PLAN):
    """The network of ``model_config`` (the ``model`` section) with the checkpoint's weights,
    in eval mode on ``device``, evaluated as ``plan`` says."""
    from pixelnerf.model import PixelNeRF, load_checkpoint

    if not checkpoint.is_file():
        raise PipelineError(f"checkpoint {checkpoint} does not exist")
    # Every weight comes from the checkpoint (strict load): no ImageNet download.
    model = PixelNeRF.from_config(model_config, pretrained_encoder=False, plan=plan)
    load_checkpoint(checkpoint, model)
    return model.to(device).eval()


@dataclass(frozen=True)
class Inference:
    """What a job runs the network with: the model and the renderer, built with one plan."""

    model: Any
    renderer: Any
    plan: InferencePlan


def load_inference(model_config: Mapping[str, Any], renderer_config: Mapping[str, Any],
                   checkpoint: Path, device: torch.device,
                   announce: Callable[[str], None] | None = None) -> Inference:
    """Resolve the job's plan once (``announce``: receives its one line, default stdout),
    then the model of ``checkpoint`` and the renderer, both built with it."""
    from pixelnerf.render import Renderer, resolve_plan

    plan = resolve_plan(renderer_config, device, model_config)
    (announce or _print)(plan.line())
    model = load_model(model_config, checkpoint, device, plan)
    return Inference(model, Renderer.from_config(renderer_config, plan).eval(), plan)


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class ViewPasses:
    """The passes of rendered target views, on the device that rendered them: ``rgb``
    ``(NT, H, W, 3)`` (fine pass when the renderer has fine samples, else coarse), ``depth``
    ``(NT, H, W)`` (expected depth of the same pass) and ``coarse_rgb`` ``(NT, H, W, 3)``
    (the coarse pass); the last two are None when they were not asked for."""

    rgb: torch.Tensor
    depth: torch.Tensor | None
    coarse_rgb: torch.Tensor | None


@torch.no_grad()
def render_view_passes(
    model: torch.nn.Module,
    renderer: Any,
    images: torch.Tensor,
    cameras: Cameras,
    selection: ViewSelection,
    ray_batch: int,
    generator: torch.Generator,
    device: torch.device,
    extras: bool = True,
) -> ViewPasses:
    """Render the target views of one object from its source views; ``extras``: keep the
    depth and the coarse pass too.

    images: ``(NV, 3, H, W)`` in [-1, 1]. The passes stay on ``device``: nothing in here
    waits for the device, so the host can queue the next batches while it computes.
    """
    import pixelnerf.render as R

    sources = list(selection.sources)
    targets = list(selection.targets)
    _, _, height, width = images.shape
    focal = _focal_batch(cameras.focal).to(device)
    c = _principal_batch(cameras.c)
    model.encode(
        images[sources].unsqueeze(0).to(device),
        cameras.poses[sources].unsqueeze(0).to(device),
        focal,
        c=None if c is None else c.to(device),
    )
    rays = R.image_rays(
        cameras.poses[targets].to(device),
        height,
        width,
        cameras.focal.to(device),
        cameras.z_near,
        cameras.z_far,
        c=None if cameras.c is None else cameras.c.to(device),
    ).reshape(-1, 8)
    colours, depths, coarse = [], [], []
    for batch in torch.split(rays, ray_batch, dim=0):
        out = renderer(model, batch.unsqueeze(0), generator=generator)
        passes = out.get("fine") or out["coarse"]
        colours.append(passes["rgb"][0].float())
        if extras:
            depths.append(passes["depth"][0].float())
            coarse.append(out["coarse"]["rgb"][0].float())
    shape = (len(targets), height, width)
    if not extras:
        return ViewPasses(torch.cat(colours).reshape(*shape, 3), None, None)
    return ViewPasses(torch.cat(colours).reshape(*shape, 3), torch.cat(depths).reshape(shape),
                      torch.cat(coarse).reshape(*shape, 3))


def open_split(dataset_config: DatasetConfig | Mapping[str, Any], data_root: str | os.PathLike,
               split: str, scale: float = 1.0):
    """Split ``split`` of the experiment's dataset (its ``dataset`` section, typed or as the
    experiment file gives it) under ``data_root``, as :meth:`DatasetConfig.open` opens it.

    ``scale`` (``eval.scale``, the published ``--scale``): images resized by area to
    ``floor(scale * size)`` (of ``dataset.image_size``, else of the split's first object),
    focal and principal point scaled with them by the readers.
    """
    config = (dataset_config if isinstance(dataset_config, DatasetConfig)
              else build(DatasetConfig, dataset_config, "dataset"))
    data_root = Path(data_root)
    root = data_root / config.dir
    if not data_root.is_dir():
        raise PipelineError(f"data root {data_root} does not exist")
    if not root.exists():
        raise PipelineError(f"dataset folder {root} does not exist (dataset.dir)")
    dataset = config.open(data_root, split)
    if scale == 1.0:
        return dataset
    image_size = config.image_size
    if not image_size:
        if len(dataset) == 0:
            return dataset
        image_size = tuple(dataset[0]["images"].shape[-2:])
    scaled = tuple(int(side * scale) for side in image_size)
    if min(scaled) < 1:
        raise PipelineError(f"eval.scale {scale} leaves images of {image_size} without pixels")
    return dataclasses.replace(config, image_size=scaled).open(data_root, split)


def view_count(dataset: Any, index: int) -> int:
    """Views of object ``index``: from the listing where the dataset has one, else decoded."""
    if hasattr(dataset, "view_count"):
        return int(dataset.view_count(index))
    return int(dataset[index]["images"].shape[0])


def object_ids_of(dataset: Any) -> list[str]:
    """Object ids of a dataset in its order, from its listing (no image is decoded)."""
    entries = getattr(dataset, "entries", None)
    if entries is not None:
        return [str(entry.object_id) for entry in entries]
    return [str(dataset[i]["object_id"]) for i in range(len(dataset))]


def item_lookup(dataset: Any) -> ItemLookup:
    """object_id -> item of a dataset of :func:`open_split`; only the objects asked for
    are loaded (ids come from the dataset's listing)."""
    index = {object_id: i for i, object_id in enumerate(object_ids_of(dataset))}

    def lookup(object_id: str) -> Mapping[str, Any]:
        if object_id not in index:
            raise PipelineError(f"object {object_id} is not in the evaluation split of the dataset")
        item = dataset[index[object_id]]
        if item.get("object_id", object_id) != object_id:
            raise PipelineError(f"dataset item {index[object_id]} is {item['object_id']}, "
                                f"expected {object_id}")
        return item

    return lookup
