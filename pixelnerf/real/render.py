"""Real photos of a car through the model: normalise, encode, render a turntable and stills.

Call chain: process_photos -> (photos.read_image, segment.segment_car | segment.read_masks,
normalize.normalize_photo) -> render_turntable -> pixelnerf.video.render_path ->
pixelnerf.video.write_mp4. Outputs of one car, in ``<out>/<name>/``: ``input.png`` (or
``input-<k>.png`` per photo, the normalised model input), ``turntable.mp4``,
``view-<k>.png`` (the stills) and ``done.json`` written last.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.config import section
from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.inference import load_inference, to_uint8
from pixelnerf.eval.protocol import stable_seed
from pixelnerf.io import atomic_save_png, atomic_write_text
from pixelnerf.real.normalize import normalize_photo
from pixelnerf.real.photos import read_image, turntable_pose
from pixelnerf.real.settings import RealSettings
from pixelnerf.video.paths import loop_poses
from pixelnerf.video.render import render_path
from pixelnerf.video.writer import write_mp4

DONE_FILE = "done.json"
VIDEO_FILE = "turntable.mp4"
SEED_TAG = "real"


@dataclass(frozen=True)
class RealResult:
    """One car's outputs: its folder, turntable frames ``(F, S, S, 3)`` uint8, the normalised
    inputs ``(N, S, S, 3)`` uint8 and the turntable frames written as stills."""

    folder: Path
    frames: np.ndarray
    inputs: np.ndarray
    stills: tuple[int, ...]


def still_frames(frames: int, stills: int) -> tuple[int, ...]:
    """``stills`` frame indices evenly spaced over a loop of ``frames``."""
    return tuple(sorted({(k * frames) // stills for k in range(stills)})) if stills else ()


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """``(N, S, S, 3)`` uint8 -> ``(N, 3, S, S)`` float in [-1, 1] (the datasets' range)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def normalized_inputs(
    photos: Sequence[str | os.PathLike],
    masks: Sequence[np.ndarray | None],
    settings: RealSettings,
    segment: Callable[[np.ndarray, str], np.ndarray],
) -> np.ndarray:
    """Each photo segmented (or its given mask), centred, scaled and put on white ->
    ``(N, size, size, 3)`` uint8. ``segment(image, name)`` is called only for photos without
    a mask."""
    out = []
    for photo, mask in zip(photos, masks, strict=True):
        image = read_image(photo)
        name = str(photo)
        if mask is None:
            mask = segment(image, name)
        elif mask.shape != image.shape[:2]:
            raise PipelineError(f"the mask of {name} is {mask.shape[1]}x{mask.shape[0]} but the "
                                f"photo is {image.shape[1]}x{image.shape[0]}")
        out.append(normalize_photo(image, mask, settings.size, settings.minor_scale,
                                   settings.major_scale, name))
    return np.stack(out)


@torch.no_grad()
def render_turntable(
    model: torch.nn.Module,
    renderer: Any,
    inputs: np.ndarray,
    poses: torch.Tensor,
    settings: RealSettings,
    ray_batch: int,
    generator: torch.Generator,
    device: torch.device,
) -> np.ndarray:
    """The turntable of the car seen in ``inputs (N, S, S, 3)`` uint8 from ``poses (N, 4, 4)``
    -> frames ``(F, S, S, 3)`` uint8, frame 0 at the first photo's azimuth."""
    path = loop_poses(settings.frames, settings.elevation, settings.radius, y_up=True)
    rgb = render_path(model, renderer, to_model_input(inputs), poses, path,
                      torch.tensor(settings.focal), None, settings.z_near, settings.z_far,
                      ray_batch, generator, device)
    return to_uint8(rgb)


def process_photos(
    experiment: Mapping[str, Any],
    checkpoint: Path,
    photos: Sequence[str | os.PathLike],
    folder: Path,
    device: torch.device,
    segment: Callable[[np.ndarray, str], np.ndarray],
    masks: Sequence[np.ndarray | None] | None = None,
    poses: torch.Tensor | None = None,
    settings: RealSettings | None = None,
) -> RealResult:
    """Photos of ONE car -> its turntable video, stills and inputs in ``folder``.

    poses: ``(N, 4, 4)`` cameras of the photos (``--views``); None = one photo at the
    published camera (turntable azimuth 0, elevation 0).
    """
    settings = settings or RealSettings.of_experiment(experiment)
    photos = list(photos)
    masks = list(masks) if masks is not None else [None] * len(photos)
    if len(masks) != len(photos):
        raise PipelineError(f"{len(masks)} masks for {len(photos)} photos; give one per photo")
    if poses is None:
        if len(photos) != 1:
            raise PipelineError("several photos of one car need their cameras (--views FILE)")
        poses = turntable_pose(0.0, 0.0, settings.radius)[None]
    start = time.perf_counter()
    inputs = normalized_inputs(photos, masks, settings, segment)
    network = load_inference(section(experiment, "model"), section(experiment, "renderer"),
                             checkpoint, device)
    eval_config = EvalConfig.of_experiment(experiment)
    generator = torch.Generator(device=device)
    generator.manual_seed(stable_seed(eval_config.seed, SEED_TAG, folder.name))
    frames = render_turntable(network.model, network.renderer, inputs, poses, settings,
                              eval_config.ray_batch, generator, device)
    input_names = ["input.png"] if len(inputs) == 1 else [
        f"input-{k}.png" for k in range(len(inputs))]
    for name, image in zip(input_names, inputs, strict=True):
        atomic_save_png(folder / name, image)
    stills = still_frames(settings.frames, settings.stills)
    still_names = [f"view-{k}.png" for k in range(len(stills))]
    for name, index in zip(still_names, stills, strict=True):
        atomic_save_png(folder / name, frames[index])
    write_mp4(folder / VIDEO_FILE, frames, settings.fps, settings.quality)
    record = {
        "photos": [str(p) for p in photos],
        "inputs": input_names,
        "video": VIDEO_FILE,
        "frames": settings.frames,
        "stills": {name: {"frame": index, "azimuth": 360.0 * index / settings.frames}
                   for name, index in zip(still_names, stills, strict=True)},
        "poses": poses.tolist(),
        "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
        "seconds": round(time.perf_counter() - start, 3),
        "plan": network.plan.record(),
    }
    atomic_write_text(folder / DONE_FILE, json.dumps(record, indent=1) + "\n")
    return RealResult(folder=folder, frames=frames, inputs=inputs, stills=stills)
