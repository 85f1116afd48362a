"""A picture of training progress: source view(s) | render | depth | ground truth.

``visualization -> render_image -> model.encode, renderer``. One held-out object, its
views and the renderer offsets drawn from ``(seed, step)``, rendered in eval mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.io import atomic_save_png
from pixelnerf.render import image_rays
from pixelnerf.train.objective import autocast, psnr
from pixelnerf.train.sampling import (
    STREAM_VIS,
    draw_nviews,
    draw_source_views,
    stack_intrinsics,
    step_generator,
)

DEPTH_COLORMAP = "magma"


@torch.no_grad()
def render_image(
    model: Any, renderer: Any, obj: Mapping[str, Any], sources: torch.Tensor, target: int,
    generator: torch.Generator | None, bf16: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render view ``target`` of ``obj`` from views ``sources (NS,)``.

    Returns ``rgb (H, W, 3)`` in [0, 1] and ``depth (H, W)`` (fine pass when there is one).
    """
    images, poses = obj["images"], obj["poses"]
    _, _, height, width = images.shape
    focal, c = stack_intrinsics([obj])
    device = images.device
    index = sources.to(device)
    rays = image_rays(poses[target : target + 1], height, width, obj["focal"],
                      float(obj["z_near"]), float(obj["z_far"]), c=obj.get("c"))
    with autocast(device, bf16):
        model.encode(images[index][None], poses[index][None], focal.to(device),
                     c=None if c is None else c.to(device))
        out = renderer(model, rays.reshape(1, height * width, -1), generator=generator)
    result = out.get("fine") or out["coarse"]
    rgb = result["rgb"].float().reshape(height, width, 3).clamp(0, 1)
    return rgb, result["depth"].float().reshape(height, width)


def image_hwc(image: torch.Tensor) -> np.ndarray:
    """A dataset image ``(3, H, W)`` in [-1, 1] as ``(H, W, 3)`` in [0, 1]."""
    return (image * 0.5 + 0.5).clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def depth_to_rgb(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """Depth ``(H, W)`` mapped from [near, far] through a colour map: ``(H, W, 3)`` in [0, 1]."""
    import matplotlib

    scaled = np.clip((depth - near) / max(far - near, 1e-12), 0.0, 1.0)
    return matplotlib.colormaps[DEPTH_COLORMAP](scaled)[..., :3]


def visualization(
    model: Any, renderer: Any, obj: Mapping[str, Any], nviews: Sequence[int], seed: int,
    step: int, bf16: bool = False,
) -> tuple[np.ndarray, float]:
    """The panel ``(H, (NS + 3) * W, 3)`` uint8 and the render's PSNR against the truth."""
    images = obj["images"]
    n_views = images.shape[0]
    generator = step_generator(seed, STREAM_VIS, step)
    n_source = min(draw_nviews(nviews, generator), n_views - 1)
    order = draw_source_views(n_views, n_source + 1, generator)
    sources, target = order[:n_source], int(order[n_source])
    render_generator = step_generator(seed, STREAM_VIS, step, images.device)
    model.eval()
    try:
        rgb, depth = render_image(model, renderer, obj, sources, target, render_generator, bf16)
    finally:
        model.train()
    truth = image_hwc(images[target])
    panels = [image_hwc(images[int(s)]) for s in sources]
    panels += [rgb.cpu().numpy(),
               depth_to_rgb(depth.cpu().numpy(), float(obj["z_near"]), float(obj["z_far"])),
               truth]
    panel = (np.concatenate(panels, axis=1) * 255).astype(np.uint8)
    return panel, psnr(float(np.mean((rgb.cpu().numpy() - truth) ** 2)))


def save_visualization(directory: Path, step: int, panel: np.ndarray) -> Path:
    """Write ``<directory>/step-XXXXXXX.png`` atomically."""
    path = Path(directory) / f"step-{step:07d}.png"
    atomic_save_png(path, panel)
    return path
