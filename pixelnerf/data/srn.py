"""SRN cars and chairs (format ``srn``).

Layout: ``<root>_<split>/<object>/intrinsics.txt`` (line 1 ``f cx cy _``, last line
``H W``, unused), ``pose/NNNNNN.txt`` (4x4 camera-to-world, OpenCV axes), ``rgb/NNNNNN.png``.
``root`` is e.g. ``data/srn/cars`` for ``data/srn/cars_train``; the public chairs training
split may sit one folder down in ``chairs_2.0_train``. Mask = pixels where no channel is 255.
Call chain: SRNDataset.__getitem__ -> open_object (intrinsics, file lists) -> load_view ->
assemble (stack, optional area resize scaling focal, c and bbox alike).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.data.common import (
    ObjectContext,
    ObjectDataset,
    ObjectEntry,
    as_size,
    image_to_tensor,
    mask_to_tensor,
    nonzero_bbox,
    read_rgb,
    resize_area,
    stack_images,
)
from pixelnerf.errors import PipelineError

# OpenCV camera axes (y down, looks along +z) -> the renderer's (y up, looks along -z).
FLIP_YZ = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
WHITE = 255
# Near and far bounds of the published reader, chosen by "chair" in the root's name.
CHAIR_BOUNDS = (1.25, 2.75)
CAR_BOUNDS = (0.8, 1.8)
CHAIRS_TRAIN_SUBFOLDER = "chairs_2.0_train"


def split_folder(root: Path, split: str) -> Path:
    """``<root>_<split>``, or its ``chairs_2.0_train`` sub-folder for the chairs training set."""
    base = Path(f"{root}_{split}")
    nested = base / CHAIRS_TRAIN_SUBFOLDER
    if "chair" in root.name and split == "train" and nested.is_dir():
        return nested
    return base


class SRNDataset(ObjectDataset):
    """SRN objects. Items: ``images (NV,3,H,W)`` in [-1,1], ``masks (NV,1,H,W)``,
    ``bbox (NV,4)``, ``poses (NV,4,4)``, ``focal`` (scalar, pixels), ``c (2,)``.
    ``image_size`` resizes by area (focal, c and bbox scaled by the height ratio);
    ``world_scale`` scales focal and pose translations, as the published option does."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        image_size: tuple[int, int] | None = None,
        world_scale: float = 1.0,
        z_near: float | None = None,
        z_far: float | None = None,
        category: str | None = None,
        strict: bool = True,
        cache: bool = False,
    ) -> None:
        self.root = Path(root)
        self.base = split_folder(self.root, split)
        if not self.base.is_dir():
            raise PipelineError(f"SRN split folder {self.base} does not exist")
        is_chair = "chair" in self.root.name
        near, far = CHAIR_BOUNDS if is_chair else CAR_BOUNDS
        self.z_near = near if z_near is None else z_near
        self.z_far = far if z_far is None else z_far
        category = category or ("chair" if is_chair else "car")
        entries, problems = [], []
        for folder in sorted(p for p in self.base.iterdir() if p.is_dir()):
            if (folder / "intrinsics.txt").is_file():
                entries.append(ObjectEntry(folder, folder.name, category))
            elif folder.name != CHAIRS_TRAIN_SUBFOLDER:
                problems.append(f"SRN object folder {folder} has no intrinsics.txt")
        super().__init__(entries, problems, strict, cache)
        self.image_size = as_size(image_size)
        self.world_scale = world_scale

    def open_object(self, entry: ObjectEntry) -> ObjectContext:
        intrinsics_path = entry.path / "intrinsics.txt"
        try:
            lines = intrinsics_path.read_text(encoding="utf-8").splitlines()
            focal, cx, cy, _ = map(float, lines[0].split())
        except (OSError, UnicodeDecodeError, ValueError, IndexError) as exc:
            raise PipelineError(f"cannot read intrinsics {intrinsics_path}: expected "
                                f"'f cx cy _' on line 1 ({exc})") from exc
        rgb_dir, pose_dir = entry.path / "rgb", entry.path / "pose"
        images = sorted(p for p in rgb_dir.glob("*") if p.is_file()) if rgb_dir.is_dir() else []
        poses = sorted(p for p in pose_dir.glob("*") if p.is_file()) if pose_dir.is_dir() else []
        if not images:
            raise PipelineError(f"object {entry.path} has no images in {rgb_dir}")
        if len(images) != len(poses):
            raise PipelineError(f"object {entry.path} has {len(images)} images in {rgb_dir} "
                                f"but {len(poses)} poses in {pose_dir}")
        return ObjectContext(list(zip(images, poses, strict=True)), {"focal": focal, "c": (cx, cy)})

    def load_view(self, entry: ObjectEntry, context: ObjectContext,
                  view: tuple[Path, Path]) -> dict[str, Any]:
        image_path, pose_path = view
        image = read_rgb(image_path)
        mask = (image != WHITE).all(axis=-1)[..., None].astype(np.uint8) * WHITE
        bbox = nonzero_bbox(mask)
        if bbox is None:
            raise PipelineError(f"image {image_path} has an empty mask (all pixels white)")
        try:
            pose = np.loadtxt(pose_path, dtype=np.float32).reshape(4, 4)
        except (OSError, ValueError) as exc:
            raise PipelineError(f"cannot read pose {pose_path}: expected 16 numbers") from exc
        return {
            "image": image_to_tensor(image),
            "mask": mask_to_tensor(mask),
            "bbox": bbox,
            "pose": torch.from_numpy(pose) @ FLIP_YZ,
        }

    def assemble(self, entry: ObjectEntry, context: ObjectContext,
                 views: list[dict[str, Any]]) -> dict[str, Any]:
        images = stack_images(entry, views)
        focal = context.data["focal"]
        cx, cy = context.data["c"]
        masks = torch.stack([v["mask"] for v in views])
        bbox = torch.stack([v["bbox"] for v in views])
        poses = torch.stack([v["pose"] for v in views])
        if self.image_size is not None and tuple(images.shape[-2:]) != self.image_size:
            scale = self.image_size[0] / images.shape[-2]
            focal, cx, cy = focal * scale, cx * scale, cy * scale
            bbox = bbox * scale
            images = resize_area(images, self.image_size)
            masks = resize_area(masks, self.image_size)
        if self.world_scale != 1.0:
            focal *= self.world_scale
            poses[:, :3, 3] *= self.world_scale
        return {
            "images": images,
            "masks": masks,
            "bbox": bbox,
            "poses": poses,
            "focal": torch.tensor(focal, dtype=torch.float32),
            "c": torch.tensor([cx, cy], dtype=torch.float32),
        }
