"""The DVR layout with ShapeNet cameras: NMR 64x64 renderings (formats ``dvr``, ``dvr_gen``)
and the demo dataset.

Layout: ``<root>/<category>/<object>/{image,mask}/NNNN.png`` and ``cameras.npz``; split lists
``<root>/<category>/<prefix><split>.lst`` (a category without the list is skipped);
``<root>/metadata.yaml`` (JSON: category folder -> ``{id, name}``) names the categories.
Call chain: DVRDataset.__getitem__ -> open_object (cameras, image and mask files) ->
load_view (image, mask, bbox, pose) -> assemble (stack, focal, optional resize).
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
    image_files,
    image_to_tensor,
    mask_to_tensor,
    nonzero_bbox,
    read_json,
    read_list,
    read_mask,
    read_npz,
    read_rgb,
    resize_area,
    stack_images,
)
from pixelnerf.errors import PipelineError

# DVR's world (y up) and OpenCV-style camera axes -> the renderer's (z up; camera looks along -z).
SHAPENET_WORLD = torch.tensor(
    [[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.float32
)
FLIP_YZ = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
# Tolerances of the published reader's checks on camera_mat (fx == fy, one focal per object).
FX_FY_TOLERANCE = 1e-9
FOCAL_TOLERANCE = 1e-5


def category_names(root: Path) -> dict[str, str]:
    """Category folder -> display name from ``<root>/metadata.yaml`` (JSON despite the name);
    the first of comma-separated synonyms is kept ("airplane,aeroplane,plane" -> "airplane").
    Without the file the folder name is the category."""
    meta_path = root / "metadata.yaml"
    if not meta_path.exists():
        return {}
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise PipelineError(f"{meta_path} must map category folders to {{id, name}}")
    names = {}
    for key, value in meta.items():
        name = value.get("name") if isinstance(value, dict) else None
        names[str(key)] = str(name).split(",")[0].strip() if name else str(key)
    return names


def list_objects(
    root: Path, list_prefix: str, split: str, names: dict[str, str] | None = None
) -> tuple[list[ObjectEntry], list[str]]:
    """Objects of ``split``: every category folder of ``root`` (sorted) with its list file
    ``<prefix><split>.lst``, objects in list order. Returns (entries, problems), a problem
    being a listed object whose folder is missing."""
    if not root.is_dir():
        raise PipelineError(f"dataset folder {root} does not exist")
    names = names or {}
    entries: list[ObjectEntry] = []
    problems: list[str] = []
    for category_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        list_path = category_dir / f"{list_prefix}{split}.lst"
        if not list_path.is_file():
            continue
        category = names.get(category_dir.name, category_dir.name)
        for name in read_list(list_path):
            folder = category_dir / name
            if not folder.is_dir():
                problems.append(f"list {list_path} names missing object folder {folder}")
                continue
            object_id = "/".join(folder.relative_to(root).parts)
            entries.append(ObjectEntry(folder, object_id, category))
    return entries, problems


def view_files(folder: Path) -> tuple[list[tuple[int, Path, Path | None]], str | None]:
    """The views of an object: (camera index, image path, mask path or None), the camera
    index being the image's position in sorted order, as published.
    Returns (views, problem or None)."""
    images = image_files(folder / "image")
    masks = sorted(p for p in (folder / "mask").glob("*.png")) if (folder / "mask").is_dir() else []
    if not images:
        return [], f"object {folder} has no images in {folder / 'image'}"
    if masks and len(masks) != len(images):
        return [], (f"object {folder} has {len(images)} images but {len(masks)} masks in "
                    f"{folder / 'mask'}")
    views = [(i, image, masks[i] if masks else None) for i, image in enumerate(images)]
    return views, None


class CamerasNpzDataset(ObjectDataset):
    """Objects whose views are ``image/*.png`` (and ``mask/*.png``) beside a ``cameras.npz``:
    the DVR layout, shared by the NMR and DTU readers, which differ in how they read cameras."""

    def setup_views(
        self,
        entries: list[ObjectEntry],
        problems: list[str],
        strict: bool,
        cache: bool,
        image_size: tuple[int, int] | None,
        bounds: tuple[float, float],
        max_views: int | None,
        seed: int | None,
    ) -> None:
        """The constructor's common part: objects, resizing, near/far and view subsampling."""
        super().__init__(entries, problems, strict, cache)
        self.image_size = as_size(image_size)
        self.z_near, self.z_far = bounds
        self.max_views = max_views
        self.rng = np.random.default_rng(seed) if max_views is not None else None

    def choose_views(self, n_views: int) -> list[int]:
        """All views, or where there are more than ``max_views``, that many drawn at random
        without replacement (not sorted), anew at every access as published, cache or not."""
        if self.max_views is None or n_views <= self.max_views:
            return list(range(n_views))
        if self.rng is None:
            raise PipelineError("max_views needs a random generator (option seed)")
        return [int(i) for i in self.rng.choice(n_views, self.max_views, replace=False)]

    def open_object(self, entry: ObjectEntry) -> ObjectContext:
        views, problem = view_files(entry.path)
        if problem:
            raise PipelineError(problem)
        return ObjectContext(views, {"cameras": read_npz(entry.path / "cameras.npz"),
                                     "camera_path": entry.path / "cameras.npz"})

    def view_count(self, index: int) -> int:
        """Views an access of object ``index`` reads, from its image folder alone (no camera
        file read, no view drawn)."""
        views, problem = view_files(self.entries[index].path)
        if problem:
            raise PipelineError(problem)
        return len(views) if self.max_views is None else min(len(views), self.max_views)


class DVRDataset(CamerasNpzDataset):
    """ShapeNet objects in the DVR layout. Items: ``images (NV,3,H,W)`` in [-1,1],
    ``masks (NV,1,H,W)`` and ``bbox (NV,4)`` where masks exist, ``poses (NV,4,4)``,
    ``focal`` (scalar, pixels), plus the common keys of :class:`ObjectDataset`."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        list_prefix: str = "softras_",
        image_size: tuple[int, int] | None = None,
        z_near: float = 1.2,
        z_far: float = 4.0,
        max_views: int | None = None,
        seed: int | None = None,
        strict: bool = True,
        cache: bool = False,
    ) -> None:
        self.root = Path(root)
        entries, problems = list_objects(self.root, list_prefix, split, category_names(self.root))
        self.setup_views(entries, problems, strict, cache, image_size, (z_near, z_far),
                         max_views, seed)

    def load_view(self, entry: ObjectEntry, context: ObjectContext,
                  view: tuple[int, Path, Path | None]) -> dict[str, Any]:
        index, image_path, mask_path = view
        cameras, camera_path = context.data["cameras"], context.data["camera_path"]
        image = read_rgb(image_path)
        height, width = image.shape[:2]
        result: dict[str, Any] = {"image": image_to_tensor(image), "pose": self._pose(
            cameras, camera_path, index)}
        intrinsics = _camera_entry(cameras, camera_path, f"camera_mat_{index}")
        fx, fy = float(intrinsics[0, 0]), float(intrinsics[1, 1])
        if abs(fx - fy) > FX_FY_TOLERANCE:
            raise PipelineError(f"{camera_path}: camera_mat_{index} has fx {fx} != fy {fy}")
        # camera_mat holds the focal for an image of side 2; pixels = fx * W / 2.
        result["focal"] = intrinsics[0, 0] * (width / 2.0)
        if mask_path is not None:
            mask = read_mask(mask_path)
            if mask.shape[:2] != (height, width):
                raise PipelineError(f"mask {mask_path} is {mask.shape[:2]}, image is "
                                    f"{(height, width)}")
            bbox = nonzero_bbox(mask)
            if bbox is None:
                raise PipelineError(f"mask {mask_path} is empty (image {image_path})")
            result["mask"], result["bbox"] = mask_to_tensor(mask), bbox
        return result

    @staticmethod
    def _pose(cameras: dict[str, np.ndarray], camera_path: Path, index: int) -> torch.Tensor:
        """Camera-to-world ``(4, 4)`` in the renderer's axes from world_mat(_inv)_<index>."""
        inverse_key = f"world_mat_inv_{index}"
        if inverse_key in cameras:
            camera_to_world = cameras[inverse_key]
        else:
            world_to_camera = _camera_entry(cameras, camera_path, f"world_mat_{index}")
            if world_to_camera.shape[0] == 3:
                world_to_camera = np.vstack((world_to_camera, np.array([0, 0, 0, 1])))
            try:
                camera_to_world = np.linalg.inv(world_to_camera)
            except np.linalg.LinAlgError as exc:
                raise PipelineError(f"{camera_path}: world_mat_{index} is singular") from exc
        if camera_to_world.shape != (4, 4):
            raise PipelineError(f"{camera_path}: camera {index} pose has shape "
                                f"{camera_to_world.shape}, expected 4x4")
        pose = torch.tensor(camera_to_world, dtype=torch.float32)
        return SHAPENET_WORLD @ pose @ FLIP_YZ

    def assemble(self, entry: ObjectEntry, context: ObjectContext,
                 views: list[dict[str, Any]]) -> dict[str, Any]:
        images = stack_images(entry, views)
        focal = views[0]["focal"]
        for view in views[1:]:
            if abs(view["focal"] - focal) > FOCAL_TOLERANCE:
                raise PipelineError(f"{context.data['camera_path']}: views have different focal "
                                    f"lengths ({focal} and {view['focal']})")
        item: dict[str, Any] = {
            "images": images,
            "poses": torch.stack([v["pose"] for v in views]),
        }
        focal = float(focal)
        has_masks = "mask" in views[0]
        if has_masks:
            item["masks"] = torch.stack([v["mask"] for v in views])
            item["bbox"] = torch.stack([v["bbox"] for v in views])
        if self.image_size is not None and tuple(item["images"].shape[-2:]) != self.image_size:
            scale = self.image_size[0] / item["images"].shape[-2]
            focal *= scale
            item["images"] = resize_area(item["images"], self.image_size)
            if has_masks:
                item["bbox"] = item["bbox"] * scale
                item["masks"] = resize_area(item["masks"], self.image_size)
        item["focal"] = torch.tensor(focal, dtype=torch.float32)
        return item


def _camera_entry(cameras: dict[str, np.ndarray], camera_path: Path, key: str) -> np.ndarray:
    """One matrix of a cameras.npz; a missing key names the file and the key."""
    if key not in cameras:
        raise PipelineError(f"{camera_path} has no {key}")
    value = cameras[key]
    if value.ndim != 2 or value.shape[1] != 4 or value.shape[0] not in (3, 4):
        raise PipelineError(f"{camera_path}: {key} has shape {value.shape}, expected 3x4 or 4x4")
    return value
