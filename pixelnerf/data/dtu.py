"""DTU in the DVR layout (format ``dvr_dtu``, the published ``rs_dtu_4``).

Layout: ``<root>/DTU/<scan>/image/NNNNNN.png`` and ``cameras.npz`` holding projection
matrices ``world_mat_i`` (``P = K [R|t]``) and optional ``scale_mat_i``; lists
``<root>/DTU/new_{train,val}.lst``. Each projection is decomposed as OpenCV's
``decomposeProjectionMatrix`` does (implemented here with numpy), so no OpenCV is needed.
Call chain: DTUDataset.__getitem__ -> open_object -> load_view -> decompose_projection ->
rq_decomposition; assemble averages the intrinsics over the views read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.data.common import (
    ObjectContext,
    ObjectEntry,
    image_to_tensor,
    mask_to_tensor,
    read_mask,
    read_rgb,
    resize_area,
    stack_images,
)
from pixelnerf.data.dvr import FLIP_YZ, CamerasNpzDataset, _camera_entry, list_objects
from pixelnerf.errors import PipelineError


def rq_decomposition(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``matrix (3, 3) = upper (3, 3) @ rotation (3, 3)`` with OpenCV's sign convention.

    OpenCV's ``RQDecomp3x3`` builds the rotation from three Givens rotations (determinant +1)
    and then flips pairs of signs so that the first two diagonal entries of the triangular
    factor are non-negative (the last keeps its sign). Those two conditions and det = +1 fix
    the decomposition uniquely, so any RQ decomposition followed by the same sign fix gives
    OpenCV's result.
    """
    flip = np.eye(3)[::-1]
    q, r = np.linalg.qr((flip @ matrix).T)
    upper = flip @ r.T @ flip
    rotation = flip @ q.T
    s0 = 1.0 if upper[0, 0] >= 0 else -1.0
    s1 = 1.0 if upper[1, 1] >= 0 else -1.0
    s2 = s0 * s1 * float(np.sign(np.linalg.det(rotation)))
    signs = np.diag([s0, s1, s2])
    return upper @ signs, signs @ rotation


def decompose_projection(projection: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV ``decomposeProjectionMatrix``: ``P (3, 4)`` -> intrinsics ``K (3, 3)`` (not
    normalised), rotation ``R (3, 3)`` and the homogeneous camera centre ``C (4,)``, the
    null vector of ``P`` (its sign is arbitrary; ``C[:3] / C[3]`` is not)."""
    projection = np.asarray(projection, dtype=np.float64)
    intrinsics, rotation = rq_decomposition(projection[:, :3])
    _, _, vt = np.linalg.svd(np.vstack((projection, np.zeros((1, 4)))))
    return intrinsics, rotation, vt[3]


class DTUDataset(CamerasNpzDataset):
    """DTU scans. Items: ``images (NV,3,H,W)`` in [-1,1], ``poses (NV,4,4)``, ``focal (2,)``
    = (fx, fy) in pixels and ``c (2,)``, both averaged over the views read; ``masks`` only
    where a scan has a ``mask`` folder; never a bbox (the published reader has none)."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        list_prefix: str = "new_",
        image_size: tuple[int, int] | None = None,
        z_near: float = 0.1,
        z_far: float = 5.0,
        max_views: int | None = None,
        seed: int | None = None,
        category: str = "scan",
        strict: bool = True,
        cache: bool = False,
    ) -> None:
        self.root = Path(root)
        entries, problems = list_objects(self.root, list_prefix, split)
        entries = [ObjectEntry(e.path, e.object_id, category) for e in entries]
        self.setup_views(entries, problems, strict, cache, image_size, (z_near, z_far),
                         max_views, seed)

    def load_view(self, entry: ObjectEntry, context: ObjectContext,
                  view: tuple[int, Path, Path | None]) -> dict[str, Any]:
        index, image_path, mask_path = view
        cameras, camera_path = context.data["cameras"], context.data["camera_path"]
        image = read_rgb(image_path)
        projection = _camera_entry(cameras, camera_path, f"world_mat_{index}")[:3]
        try:
            intrinsics, rotation, centre = decompose_projection(projection)
        except np.linalg.LinAlgError as exc:
            raise PipelineError(f"{camera_path}: world_mat_{index} cannot be decomposed") from exc
        if intrinsics[2, 2] == 0 or centre[3] == 0:
            raise PipelineError(f"{camera_path}: world_mat_{index} is degenerate")
        intrinsics = intrinsics / intrinsics[2, 2]
        pose = np.eye(4, dtype=np.float32)
        pose[:3, :3] = rotation.T
        pose[:3, 3] = centre[:3] / centre[3]
        scale_key = f"scale_mat_{index}"
        if scale_key in cameras:
            # Undo the scene normalisation per axis: translation first, then the diagonal.
            scale = _camera_entry(cameras, camera_path, scale_key)
            pose[:3, 3:] -= scale[:3, 3:]
            pose[:3, 3:] /= np.diagonal(scale[:3, :3])[..., None]
        result = {
            "image": image_to_tensor(image),
            "pose": FLIP_YZ @ torch.tensor(pose, dtype=torch.float32) @ FLIP_YZ,
            "intrinsics": (float(intrinsics[0, 0]), float(intrinsics[1, 1]),
                           float(intrinsics[0, 2]), float(intrinsics[1, 2])),
        }
        if mask_path is not None:
            result["mask"] = mask_to_tensor(read_mask(mask_path))
        return result

    def assemble(self, entry: ObjectEntry, context: ObjectContext,
                 views: list[dict[str, Any]]) -> dict[str, Any]:
        images = stack_images(entry, views)
        # Sum in view order, then divide, exactly as the published reader averages.
        fx = fy = cx = cy = 0.0
        for view in views:
            vx, vy, vcx, vcy = view["intrinsics"]
            fx, fy, cx, cy = fx + vx, fy + vy, cx + vcx, cy + vcy
        count = len(views)
        focal = torch.tensor((fx / count, fy / count), dtype=torch.float32)
        c = torch.tensor((cx / count, cy / count), dtype=torch.float32)
        item: dict[str, Any] = {
            "images": images,
            "poses": torch.stack([v["pose"] for v in views]),
        }
        if "mask" in views[0]:
            item["masks"] = torch.stack([v["mask"] for v in views])
        if self.image_size is not None and tuple(item["images"].shape[-2:]) != self.image_size:
            scale = self.image_size[0] / item["images"].shape[-2]
            focal, c = focal * scale, c * scale
            item["images"] = resize_area(item["images"], self.image_size)
            if "masks" in item:
                item["masks"] = resize_area(item["masks"], self.image_size)
        item["focal"], item["c"] = focal, c
        return item
