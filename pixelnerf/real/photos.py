"""Reading photos and the cameras of several photos of one car (``--views``).

The cameras live in the world of the turntable: y up, the car at the origin, the first (or
only) photo's camera on +z at ``real.radius`` looking at it (the published single-photo
camera). A ``--views`` file (YAML or JSON) maps each photo's file name to either
``{azimuth: DEG, elevation: DEG[, radius: R]}`` (azimuth as in the turntable video, whose frame
k of F sits at ``360 k / F`` degrees; elevation negative above) or ``{pose: 4x4}`` (camera to
world in that world, camera x right, y up, looking along -z).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.errors import PipelineError
from pixelnerf.video.paths import orbit_pose

MASK_LEVEL = 127  # grey levels above this (half of 255) mark the car in a mask image
# The turntable's azimuth 0 is the published orbit's -180 degrees (the photo's viewpoint).
TURNTABLE_START = -180.0


def read_image(path: str | os.PathLike, mode: str = "RGB") -> np.ndarray:
    """An image file -> ``(H, W, 3)`` uint8 (``mode`` RGB) or ``(H, W)`` (``mode`` L), upright
    as its EXIF orientation says (phone photos)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as handle:
            image = ImageOps.exif_transpose(handle).convert(mode)
    except (OSError, UnidentifiedImageError) as exc:
        raise PipelineError(f"cannot read image {path}: {exc}") from exc
    return np.asarray(image, dtype=np.uint8)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask image (white where the car is; any grey above half counts) -> ``(H, W)`` bool."""
    return read_image(path, mode="L") > MASK_LEVEL


def turntable_pose(azimuth: float, elevation: float, radius: float) -> torch.Tensor:
    """The camera at turntable ``azimuth``/``elevation`` (degrees) and ``radius`` -> (4, 4)."""
    return torch.from_numpy(orbit_pose(TURNTABLE_START + azimuth, elevation, radius,
                                       y_up=True)).float()


def _entry_pose(name: str, entry: Any, radius: float) -> torch.Tensor:
    where = f"--views entry {name!r}"
    if not isinstance(entry, Mapping):
        raise PipelineError(f"{where}: want a mapping with azimuth/elevation or pose")
    if "pose" in entry:
        if set(entry) != {"pose"}:
            raise PipelineError(f"{where}: give either pose or azimuth/elevation, not both")
        try:
            pose = torch.tensor(entry["pose"], dtype=torch.float32)
        except (TypeError, ValueError) as exc:
            raise PipelineError(f"{where}: pose is not a 4x4 matrix of numbers") from exc
        if pose.shape != (4, 4) or not torch.isfinite(pose).all():
            raise PipelineError(f"{where}: pose must be a 4x4 matrix, not {tuple(pose.shape)}")
        return pose
    unknown = sorted(set(entry) - {"azimuth", "elevation", "radius"})
    if unknown or "azimuth" not in entry:
        raise PipelineError(f"{where}: want keys azimuth, elevation (and radius), "
                            f"not {sorted(entry)}")
    try:
        values = [float(entry["azimuth"]), float(entry.get("elevation", 0.0)),
                  float(entry.get("radius", radius))]
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"{where}: azimuth, elevation and radius must be numbers") from exc
    return turntable_pose(*values)


def read_view_poses(path: str | os.PathLike, photos: Sequence[str | os.PathLike],
                    radius: float) -> torch.Tensor:
    """The cameras of ``photos`` from a ``--views`` file -> ``(N, 4, 4)`` in photo order.

    A photo is looked up by the name given on the command line, then by its file name.
    """
    from pixelnerf.config import load_yaml  # YAML is a superset of JSON: one reader for both

    table = load_yaml(path)
    poses = []
    for photo in photos:
        key = str(photo) if str(photo) in table else Path(photo).name
        if key not in table:
            raise PipelineError(f"--views file {path} has no entry for photo {Path(photo).name}")
        poses.append(_entry_pose(key, table[key], radius))
    return torch.stack(poses)
