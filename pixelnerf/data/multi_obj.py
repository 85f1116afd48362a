"""Scenes of two ShapeNet chairs (format ``multi_obj``), in a NeRF-synthetic-like layout.

Layout: ``<root>/<split>/<scene>/transforms.json`` (``camera_angle_x`` and ``frames`` with
``file_path`` and ``transform_matrix``, already a camera-to-world pose in the renderer's
axes) and ``<frame>_obj.png`` (RGBA, composited on white here).
Call chain: MultiObjectDataset.__getitem__ -> open_object (transforms.json) -> load_view
-> assemble.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from pixelnerf.data.common import (
    ObjectContext,
    ObjectDataset,
    ObjectEntry,
    image_to_tensor,
    mask_to_tensor,
    nonzero_bbox,
    read_image,
    read_json,
    stack_images,
)
from pixelnerf.errors import PipelineError

TRANSFORMS = "transforms.json"
RGBA_CHANNELS = 4


class MultiObjectDataset(ObjectDataset):
    """Multi-object scenes. Items: ``images (NV,3,H,W)`` in [-1,1] on white, ``masks
    (NV,1,H,W)`` = alpha, ``bbox (NV,4)`` of any nonzero RGBA channel (the whole image when
    there is none, as published), ``poses (NV,4,4)``, ``focal`` (scalar, pixels)."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        z_near: float = 4.0,
        z_far: float = 9.0,
        category: str = "chair",
        strict: bool = True,
        cache: bool = False,
    ) -> None:
        self.root = Path(root)
        self.base = self.root / split
        if not self.base.is_dir():
            raise PipelineError(f"multi_obj split folder {self.base} does not exist")
        entries = []
        for directory, _, filenames in sorted(os.walk(self.base)):
            if TRANSFORMS in filenames:
                folder = Path(directory)
                object_id = "/".join(folder.relative_to(self.base).parts)
                entries.append(ObjectEntry(folder, object_id, category))
        super().__init__(entries, [], strict, cache)
        self.z_near, self.z_far = z_near, z_far

    def open_object(self, entry: ObjectEntry) -> ObjectContext:
        path = entry.path / TRANSFORMS
        transform = read_json(path)
        frames = transform.get("frames") if isinstance(transform, dict) else None
        angle = transform.get("camera_angle_x") if isinstance(transform, dict) else None
        if not isinstance(frames, list) or not frames:
            raise PipelineError(f"{path} has no frames")
        if not isinstance(angle, (int, float)):
            raise PipelineError(f"{path} has no camera_angle_x")
        return ObjectContext(frames, {"angle": float(angle), "path": path})

    def load_view(self, entry: ObjectEntry, context: ObjectContext,
                  frame: Any) -> dict[str, Any]:
        path = context.data["path"]
        try:
            stem = PurePosixPath(str(frame["file_path"])).stem
            pose = torch.tensor(frame["transform_matrix"], dtype=torch.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise PipelineError(f"{path}: a frame lacks file_path or transform_matrix") from exc
        if pose.shape != (4, 4):
            raise PipelineError(f"{path}: frame {stem} transform_matrix is not 4x4")
        image_path = entry.path / f"{stem}_obj.png"
        image = read_image(image_path)
        if image.ndim != 3 or image.shape[2] != RGBA_CHANNELS:
            raise PipelineError(f"image {image_path} is not RGBA (shape {image.shape})")
        mask = mask_to_tensor(image[..., 3])
        bbox = nonzero_bbox(image)
        if bbox is None:
            height, width = image.shape[:2]
            bbox = torch.tensor([0, 0, width, height], dtype=torch.float32)
        rgb = image_to_tensor(image[..., :3])
        return {"image": rgb * mask + (1.0 - mask), "mask": mask, "bbox": bbox, "pose": pose}

    def assemble(self, entry: ObjectEntry, context: ObjectContext,
                 views: list[dict[str, Any]]) -> dict[str, Any]:
        images = stack_images(entry, views)
        width = images.shape[-1]
        focal = 0.5 * width / math.tan(0.5 * context.data["angle"])
        return {
            "images": images,
            "masks": torch.stack([v["mask"] for v in views]),
            "bbox": torch.stack([v["bbox"] for v in views]),
            "poses": torch.stack([v["pose"] for v in views]),
            "focal": torch.tensor(focal, dtype=torch.float32),
        }

