"""What one training step sees: objects, source views, rays and their colours.

Call chain: ``sample_batch -> draw_nviews, draw_source_views, draw_pixels, color_jitter``.
Every draw takes an explicit ``torch.Generator``; ``step_generator(seed, stream, step)``
derives a generator from the step number alone, so a run resumed at step ``s`` draws
exactly what an unbroken run draws at step ``s`` without carrying sampler state.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pixelnerf.errors import PipelineError
from pixelnerf.render import pixel_directions

# Independent random streams of a run; each step seeds each stream from (seed, stream, step).
STREAM_ORDER = 0  # object order of an epoch (the "step" is the epoch number)
STREAM_SAMPLE = 1  # views, rays and colour jitter of a training step
STREAM_RENDER = 2  # the renderer's stratified and importance offsets of a training step
STREAM_VALIDATION = 3  # views and rays of the validation loss (the same at every step)
STREAM_VIS = 4  # views and renderer offsets of the visualisation


def step_seed(seed: int, stream: int, step: int) -> int:
    """A 63-bit seed mixed from ``(seed, stream, step)`` (NumPy's SeedSequence hashing)."""
    words = np.random.SeedSequence([seed, stream, step]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def step_generator(
    seed: int, stream: int, step: int, device: torch.device | str = "cpu"
) -> torch.Generator:
    """A fresh generator on ``device`` seeded from ``(seed, stream, step)``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(step_seed(seed, stream, step))
    return generator


def object_batch(n_objects: int, batch_objects: int, seed: int, step: int) -> list[int]:
    """Dataset indices of the objects of training step ``step``.

    As the published DataLoader (shuffle, last batch kept even when short): epochs of
    ``ceil(n_objects / batch_objects)`` batches, each epoch a fresh permutation.
    """
    if n_objects <= 0:
        raise PipelineError("the training split has no objects")
    per_epoch = math.ceil(n_objects / batch_objects)
    epoch, position = divmod(step, per_epoch)
    order = torch.randperm(n_objects, generator=step_generator(seed, STREAM_ORDER, epoch))
    return order[position * batch_objects : (position + 1) * batch_objects].tolist()


def draw_nviews(nviews: Sequence[int], generator: torch.Generator) -> int:
    """One source-view count for the whole batch, uniformly from the ``nviews`` list."""
    return int(nviews[int(torch.randint(len(nviews), (), generator=generator))])


def draw_source_views(n_views: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` distinct view indices out of ``n_views``, random order: ``(count,)`` int64."""
    if count > n_views:
        raise PipelineError(
            f"train.nviews asks for {count} source views but an object has {n_views}"
        )
    return torch.randperm(n_views, generator=generator)[:count]


def draw_pixels(
    n_views: int,
    height: int,
    width: int,
    count: int,
    generator: torch.Generator,
    bbox: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels for ``count`` rays, with replacement, over all views of one object.

    With ``bbox`` (``(n_views, 4)`` as ``x_min, y_min, x_max, y_max``, inclusive): a view
    uniformly, then a pixel uniformly inside that view's box; without: uniformly over all
    ``n_views * height * width`` pixels. Returns ``(view, row, col)``, each ``(count,)`` int64.
    """
    if bbox is None:
        flat = torch.randint(n_views * height * width, (count,), generator=generator)
        view, rest = flat // (height * width), flat % (height * width)
        return view, rest // width, rest % width
    view = torch.randint(n_views, (count,), generator=generator)
    box = bbox.detach().to("cpu", torch.float64)[view]
    u = torch.rand(count, generator=generator, dtype=torch.float64)
    v = torch.rand(count, generator=generator, dtype=torch.float64)
    # Inclusive box: the +1 makes x_max reachable; truncation as the published sampler.
    col = (u * (box[:, 2] + 1 - box[:, 0]) + box[:, 0]).long().clamp_(0, width - 1)
    row = (v * (box[:, 3] + 1 - box[:, 1]) + box[:, 1]).long().clamp_(0, height - 1)
    return view, row, col


def color_jitter(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """One random colour jitter applied alike to all views of an object.

    ``images``: ``(NV, 3, H, W)`` in [-1, 1]; returns a new tensor of the same shape. The
    factors are drawn in the published order (hue, saturation, brightness, contrast) and
    applied to [0, 1] colours in the published order: saturation ``x U(1-s, 1+s)``, hue
    ``+ U(-s, s)``, contrast ``x U(1-s, 1+s)``, brightness ``x U(1-s, 1+s)``.
    """
    # torchvision is imported here, not at the top: only DTU's training jitters colours,
    # and the import costs every other training process about 1.6 s of CPU.
    import torchvision.transforms.functional as TF

    u = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
    hue, saturation, brightness, contrast = (
        (2 * u[0] - 1) * strength,
        1 + (2 * u[1] - 1) * strength,
        1 + (2 * u[2] - 1) * strength,
        1 + (2 * u[3] - 1) * strength,
    )
    x = images * 0.5 + 0.5
    x = TF.adjust_saturation(x, saturation)
    x = TF.adjust_hue(x, hue)
    x = TF.adjust_contrast(x, contrast)
    x = TF.adjust_brightness(x, brightness)
    return x * 2.0 - 1.0


@dataclasses.dataclass
class RayBatch:
    """One step's input and target.

    Attributes:
        src_images: ``(SB, NS, 3, H, W)`` in [-1, 1], the views the model is conditioned on.
        src_poses: ``(SB, NS, 4, 4)`` camera-to-world.
        focal: ``(SB,)`` or ``(SB, 2)``.
        c: ``(SB, 2)`` principal points, or ``None`` (image centre).
        rays: ``(SB, R, 8)`` as ``[origin, direction, near, far]``.
        target: ``(SB, R, 3)`` colours in [0, 1].
    """

    src_images: torch.Tensor
    src_poses: torch.Tensor
    focal: torch.Tensor
    c: torch.Tensor | None
    rays: torch.Tensor
    target: torch.Tensor

    @property
    def n_rays(self) -> int:
        return int(self.rays.shape[0] * self.rays.shape[1])


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    """How rays and views are drawn (from ``TrainConfig``)."""

    nviews: tuple[int, ...]
    rays_per_object: int
    use_bbox: bool  # draw inside an object's bbox when it has one
    color_jitter: float | None  # jitter strength, or None for no jitter


def object_rays(
    obj: Mapping[str, Any], views: torch.Tensor, row: torch.Tensor, col: torch.Tensor
) -> torch.Tensor:
    """Rays ``(R, 8)`` through pixels ``(views[i], row[i], col[i])`` of one object.

    The same rays as ``pixelnerf.render.image_rays`` gives for whole images, built only for
    the drawn pixels: the camera-axis directions of the image grid (``pixel_directions``,
    shared by all views of the object) rotated by each ray's pose.
    """
    _, _, height, width = obj["images"].shape
    poses = obj["poses"]
    device = poses.device
    view, row, col = views.to(device), row.to(device), col.to(device)
    dirs_cam = pixel_directions(height, width, obj["focal"], obj.get("c"), device)  # (H, W, 3)
    pose = poses[view]  # (R, 4, 4)
    dirs = torch.matmul(pose[:, :3, :3], dirs_cam[row, col].unsqueeze(-1))[..., 0]
    bounds = dirs.new_tensor([float(obj["z_near"]), float(obj["z_far"])]).expand(len(view), 2)
    return torch.cat((pose[:, :3, 3], dirs, bounds), dim=-1)


def sample_object(
    obj: Mapping[str, Any],
    n_source: int,
    settings: SamplerSettings,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source views and rays of one object.

    Returns ``src_images (NS, 3, H, W)``, ``src_poses (NS, 4, 4)``, ``rays (R, 8)`` and
    ``target (R, 3)`` in [0, 1].
    """
    images = obj["images"]
    n_views, _, height, width = images.shape
    if settings.color_jitter is not None:
        images = color_jitter(images, settings.color_jitter, generator)
    sources = draw_source_views(n_views, n_source, generator)
    bbox = obj.get("bbox") if settings.use_bbox else None
    view, row, col = draw_pixels(n_views, height, width, settings.rays_per_object, generator, bbox)
    device = images.device
    target = images[view.to(device), :, row.to(device), col.to(device)] * 0.5 + 0.5
    rays = object_rays(obj, view, row, col)
    return images[sources.to(device)], obj["poses"][sources.to(device)], rays, target


def stack_intrinsics(
    objects: Sequence[Mapping[str, Any]],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-object focal ``(SB,)`` or ``(SB, 2)`` and principal point ``(SB, 2)`` or None."""
    focal = torch.stack([torch.as_tensor(o["focal"], dtype=torch.float32) for o in objects])
    has_c = [o.get("c") is not None for o in objects]
    if any(has_c) and not all(has_c):
        raise PipelineError("objects of one batch disagree on having a principal point 'c'")
    if not all(has_c):
        return focal, None
    return focal, torch.stack([torch.as_tensor(o["c"], dtype=torch.float32) for o in objects])


def sample_batch(
    objects: Sequence[Mapping[str, Any]], settings: SamplerSettings, generator: torch.Generator
) -> RayBatch:
    """A training (or validation) batch from decoded dataset items, all on one device.

    The source-view count is drawn once for the batch from ``settings.nviews``, then per
    object that many distinct views, its rays (with replacement, over all its views) and,
    when enabled, its colour jitter. Item keys used: ``images (NV, 3, H, W)`` in [-1, 1],
    ``poses (NV, 4, 4)``, ``focal``, ``c`` (optional), ``bbox (NV, 4)`` (optional),
    ``z_near``, ``z_far``.
    """
    n_source = draw_nviews(settings.nviews, generator)
    parts = [sample_object(obj, n_source, settings, generator) for obj in objects]
    focal, c = stack_intrinsics(objects)
    device = objects[0]["images"].device
    return RayBatch(
        src_images=torch.stack([p[0] for p in parts]),
        src_poses=torch.stack([p[1] for p in parts]),
        focal=focal.to(device),
        c=None if c is None else c.to(device),
        rays=torch.stack([p[2] for p in parts]),
        target=torch.stack([p[3] for p in parts]),
    )
