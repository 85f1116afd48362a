"""``pixelnerf synth-demo OUT``: an embedded demo dataset in the DVR (NMR) layout, no download.

Procedural objects of a few categories (see :mod:`pixelnerf.data.shapes`) are rendered
exactly (see :mod:`pixelnerf.data.raycast`) from cameras on a circle around each, like the
NMR renderings: ``<OUT>/<category>/<object>/image/NNNN.png`` (RGB on white),
``mask/NNNN.png`` (0/255), ``cameras.npz`` (``world_mat_i`` world->camera and
``camera_mat_i`` with the focal for an image of side 2, the DVR convention, so the ``dvr``
reader gives back the poses used here), ``<OUT>/metadata.yaml`` and
``<category>/softras_{train,val,test}.lst``. Everything is determined by the settings.

Settings: the experiment config's ``dataset.synth`` mapping; every key is optional and
defaults to the field of :class:`SynthSettings` of the same name.

The dataset is built in a sibling staging folder, ``synth_demo.json`` (the settings and
counts) is written in it last, and the folder is then renamed to OUT, so OUT is either
complete or absent. Call chain: synthesize -> render_object -> render_rays.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelnerf.config import build, setting
from pixelnerf.data.raycast import render_rays, scaled
from pixelnerf.data.shapes import build_object
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_open, atomic_write_text

MARKER = "synth_demo.json"
SPLIT_NAMES = ("train", "val", "test")
LIST_PREFIX = "softras_"
# Renderer world -> DVR world and camera flips; the inverses of the dvr reader's transforms.
SHAPENET_WORLD = np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)
FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])
WHITE = np.ones(3)


@dataclass(frozen=True)
class SynthSettings:
    """``dataset.synth``: how ``pixelnerf synth-demo`` makes the demo dataset."""

    seed: int = setting(0, "the seed every object's proportions and colours derive from")
    categories: tuple[str, ...] = setting(
        ("chair", "table", "lamp", "car"), "procedural categories to make (of chair, table, "
        "lamp, car)")
    train_objects: int = setting(16, "objects per category in the train split")
    val_objects: int = setting(2, "objects per category in the val split")
    test_objects: int = setting(4, "objects per category in the test split")
    views: int = setting(24, "cameras per object, evenly spaced in azimuth (NMR: 24)")
    image_size: int = setting(64, "side of the square images in pixels (NMR: 64)")
    focal: float = setting(
        1.75, "focal length for an image of side 2, as DVR's camera_mat stores it (NMR: 1.75, "
        "i.e. 56 px at 64x64)")
    radius: float = setting(
        2.732, "distance of the cameras from the object's centre (NMR: 2.732)")
    object_scale: float = setting(
        1.6, "objects are built inside [-0.5, 0.5]^3 and scaled by this; 1.6 makes them fill "
        "the frame about as much as NMR's ShapeNet renderings do")
    elevations: tuple[float, ...] = setting(
        (30.0,), "camera elevations in degrees, used in turn over the views (NMR: 30)")
    azimuth_offset: float = setting(0.0, "azimuth of view 0 in degrees")
    light_direction: tuple[float, float, float] = setting(
        (0.4, 0.25, 1.0), "direction towards the light, world axes (z up); not all 0")
    ambient: float = setting(
        0.35, "shading = albedo * (ambient + diffuse * max(0, n.l)): the ambient term")
    diffuse: float = setting(0.65, "the diffuse term of the shading (see `ambient`)")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> SynthSettings:
        """Settings from a schema-checked ``dataset.synth`` mapping (None: the defaults)."""
        return build(cls, mapping, "dataset.synth")

    def check(self, origin: str) -> None:
        """What the schema cannot say."""
        if not any(self.light_direction):
            raise PipelineError(f"{origin}.light_direction must be 3 numbers, not all 0")

    def split_counts(self) -> dict[str, int]:
        return {"train": self.train_objects, "val": self.val_objects, "test": self.test_objects}



def camera_poses(settings: SynthSettings) -> np.ndarray:
    """Camera-to-world poses ``(V, 4, 4)`` in the renderer's axes (z up; the camera looks
    along its -z at the origin, its y up), on a circle of ``radius``."""
    poses = []
    for view in range(settings.views):
        azimuth = math.radians(settings.azimuth_offset + 360.0 * view / settings.views)
        elevation = math.radians(settings.elevations[view % len(settings.elevations)])
        position = settings.radius * np.array([
            math.cos(elevation) * math.cos(azimuth),
            math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation),
        ])
        back = position / np.linalg.norm(position)
        right = np.cross([0.0, 0.0, 1.0], back)
        right /= np.linalg.norm(right)
        up = np.cross(back, right)
        pose = np.eye(4)
        pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, back, position
        poses.append(pose)
    return np.stack(poses)


def camera_rays(pose: np.ndarray, size: int, focal_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Rays through the pixels of one view: origins, unit directions ``(size*size, 3)``.
    Pixel (x, y) looks along ``((x - W/2) / f, -(y - H/2) / f, -1)`` in camera axes, the
    published ray generator's convention (pixel indices, centre at W/2), so the model's rays
    meet the same points."""
    ys, xs = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64),
                         indexing="ij")
    camera = np.stack([(xs - size / 2) / focal_px, -(ys - size / 2) / focal_px,
                       -np.ones_like(xs)], axis=-1).reshape(-1, 3)
    camera /= np.linalg.norm(camera, axis=1, keepdims=True)
    directions = camera @ pose[:3, :3].T
    origins = np.broadcast_to(pose[:3, 3], directions.shape)
    return origins, directions


def object_rng(settings: SynthSettings, category: str, index: int) -> np.random.Generator:
    """The generator of one object: from the seed, the category's name and the object's
    index, so adding a category or objects never changes the others."""
    return np.random.default_rng([settings.seed, zlib.crc32(category.encode()), index])


def render_object(settings: SynthSettings, category: str, index: int, poses: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Render one object from every camera: uint8 images ``(V, S, S, 3)``, masks ``(V, S, S)``
    (255 where a ray hits the object)."""
    primitives = [scaled(p, settings.object_scale)
                  for p in build_object(category, object_rng(settings, category, index))]
    size = settings.image_size
    focal_px = settings.focal * size / 2.0
    rays = [camera_rays(pose, size, focal_px) for pose in poses]
    origins = np.concatenate([o for o, _ in rays])
    directions = np.concatenate([d for _, d in rays])
    colour, hit, _ = render_rays(primitives, origins, directions,
                                 np.asarray(settings.light_direction, float),
                                 settings.ambient, settings.diffuse, WHITE)
    images = np.round(colour * 255).astype(np.uint8).reshape(len(poses), size, size, 3)
    masks = (hit.astype(np.uint8) * 255).reshape(len(poses), size, size)
    return images, masks


def world_matrices(poses: np.ndarray) -> np.ndarray:
    """DVR ``world_mat`` ``(V, 4, 4)`` for renderer poses: the inverse of
    ``Tw^-1 @ pose @ Tc^-1``, so that the reader's ``Tw @ inv(world_mat) @ Tc`` is ``pose``."""
    return np.stack([np.linalg.inv(SHAPENET_WORLD.T @ pose @ FLIP_YZ) for pose in poses])


def object_names(settings: SynthSettings, category: str) -> dict[str, list[str]]:
    """Object folder names per split; objects are numbered over the splits in order."""
    names, start = {}, 0
    for split, count in settings.split_counts().items():
        names[split] = [f"{category}_{i:03d}" for i in range(start, start + count)]
        start += count
    return names


def synthesize(settings: SynthSettings, out: str | os.PathLike) -> dict[str, Any]:
    """Write the whole demo dataset to ``out`` (see the module docstring) and return what
    ``synth_demo.json`` records. A demo dataset at ``out`` made with the same settings is
    kept; one made with other settings is replaced; any other non-empty ``out`` is an error."""
    out = Path(out)
    record = {"format": "dvr", "list_prefix": LIST_PREFIX, "settings": asdict(settings)}
    existing = _existing_record(out)
    if existing is not None and existing.get("settings") == json.loads(json.dumps(
            record["settings"])):
        return existing  # already made with these settings
    if existing is None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PipelineError(f"{out} exists and is not a demo dataset (no {MARKER}); "
                            "remove it or choose another folder")
    staging = out.parent / f".{out.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted run: never complete
    poses = camera_poses(settings)
    world = world_matrices(poses).astype(np.float32)
    size = settings.image_size
    camera_mat = np.diag([settings.focal, settings.focal, 1.0, 1.0]).astype(np.float32)
    metadata = {c: {"id": c, "name": c} for c in settings.categories}
    atomic_write_text(staging / "metadata.yaml", json.dumps(metadata, indent=1) + "\n")
    counts = {split: 0 for split in SPLIT_NAMES}
    for category in settings.categories:
        names = object_names(settings, category)
        index = 0
        for split in SPLIT_NAMES:
            for name in names[split]:
                folder = staging / category / name
                images, masks = render_object(settings, category, index, poses)
                _save_pngs(folder / "image", images)
                _save_pngs(folder / "mask", masks)
                cameras = {}
                for view in range(settings.views):
                    cameras[f"world_mat_{view}"] = world[view]
                    cameras[f"camera_mat_{view}"] = camera_mat
                _save_npz(folder / "cameras.npz", cameras)
                index += 1
            counts[split] += len(names[split])
            text = "".join(f"{n}\n" for n in names[split])
            atomic_write_text(staging / category / f"{LIST_PREFIX}{split}.lst", text)
    record["objects"] = counts
    record["image_size"] = [size, size]
    atomic_write_text(staging / MARKER, json.dumps(record, indent=1) + "\n")
    os.sync()  # the images above were written without per-file fsync
    if existing is not None:
        # A demo dataset made with other settings: move it aside, then delete it, so OUT
        # holds either the old or the new complete dataset at every moment.
        old = out.parent / f".{out.name}.old"
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old)
    else:
        if out.is_dir():
            out.rmdir()  # empty (checked above), e.g. made by Snakemake for its outputs
        os.replace(staging, out)
    return record


def _existing_record(out: Path) -> dict[str, Any] | None:
    """The ``synth_demo.json`` record of a demo dataset at ``out``, or None."""
    try:
        record = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _save_pngs(folder: Path, images: np.ndarray) -> None:
    """Write ``images (V, H, W[, 3])`` as ``NNNN.png``. They go into the staging folder,
    whose rename is the atomic step, so each file needs no temporary copy or fsync of its
    own (thousands of fsyncs would dominate the run); ``synthesize`` syncs once at the end."""
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    for view, image in enumerate(images):
        iio.imwrite(folder / f"{view:04d}.png", image, extension=".png")


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)
