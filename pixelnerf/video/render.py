"""Rendering the frames of a video: novel views along a camera path from a few source views.

Call chain: make_object_video -> render_object_video -> (camera_path, render_path ->
pixelnerf.eval.inference.render_view_passes) -> writer.write_mp4. The network, renderer and ray
batching are those of ``pixelnerf render``, so a video frame equals a test-view render of the
same pose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.config import section
from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.inference import (
    Cameras,
    load_inference,
    object_ids_of,
    open_split,
    render_view_passes,
    to_uint8,
)
from pixelnerf.eval.protocol import Protocol, ViewSelection, stable_seed
from pixelnerf.video.paths import dtu_spline_poses, loop_poses
from pixelnerf.video.settings import VideoSettings
from pixelnerf.video.writer import write_mp4

SEED_TAG = "video"  # keeps video sample offsets apart from the test renders' of an object


@dataclass(frozen=True)
class VideoFrames:
    """Rendered frames ``(F, H, W, 3)`` uint8, their poses ``(F, 4, 4)`` and the source views."""

    frames: np.ndarray
    poses: torch.Tensor
    sources: tuple[int, ...]


def camera_path(settings: VideoSettings, dataset_format: str, z_near: float,
                z_far: float) -> torch.Tensor:
    """The video's camera poses ``(F, 4, 4)`` for a dataset of ``dataset_format``."""
    if settings.path_kind(dataset_format) == "dtu_spline":
        return dtu_spline_poses(settings.frames, settings.spline_distance)
    radius = settings.radius if settings.radius is not None else 0.5 * (z_near + z_far)
    return loop_poses(settings.frames, settings.elevation, radius)


def source_views(eval_config: EvalConfig, settings: VideoSettings, object_id: str,
                 n_views: int) -> tuple[int, ...]:
    """The object's source views: ``video.sources`` as views or a setting of ``eval.settings``
    (null: the first setting), chosen as the render step chooses them."""
    if isinstance(settings.sources, tuple):
        bad = [v for v in settings.sources if v >= n_views]
        if bad:
            raise PipelineError(f"video.sources: views {bad} do not exist in object {object_id} "
                                f"({n_views} views)")
        return settings.sources
    protocol = Protocol.from_config(eval_config)
    setting = settings.sources or protocol.setting_names[0]
    return protocol.select(setting, object_id, n_views).sources


@torch.no_grad()
def render_path(
    model: torch.nn.Module,
    renderer: Any,
    images: torch.Tensor,
    poses: torch.Tensor,
    path: torch.Tensor,
    focal: torch.Tensor,
    c: torch.Tensor | None,
    z_near: float,
    z_far: float,
    ray_batch: int,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Render the poses of a camera path from source views.

    images: ``(NS, 3, H, W)`` in [-1, 1]; poses: ``(NS, 4, 4)``; path: ``(F, 4, 4)``;
    focal: scalar or ``(2,)``; c: None or ``(2,)`` -> ``(F, H, W, 3)`` float colours on the CPU.
    """
    num_sources = images.shape[0]
    # The sources followed by the path, as one object's cameras: the render step's code path.
    cameras = Cameras(
        poses=torch.cat((poses.float(), path.float()), dim=0),
        focal=torch.as_tensor(focal, dtype=torch.float32),
        c=None if c is None else torch.as_tensor(c, dtype=torch.float32),
        z_near=float(z_near),
        z_far=float(z_far),
    )
    selection = ViewSelection(
        sources=tuple(range(num_sources)),
        targets=tuple(range(num_sources, num_sources + path.shape[0])),
    )
    return render_view_passes(model, renderer, images, cameras, selection, ray_batch, generator,
                              device).rgb


def render_object_video(
    experiment: Mapping[str, Any],
    data_root: Path,
    checkpoint: Path,
    object_id: str,
    device: torch.device,
    settings: VideoSettings | None = None,
) -> VideoFrames:
    """Render the video frames of one object of the experiment's dataset."""
    settings = settings or VideoSettings.of_experiment(experiment)
    eval_config = EvalConfig.of_experiment(experiment)
    split = settings.split or eval_config.split
    dataset = open_split(section(experiment, "dataset"), data_root, split)
    ids = object_ids_of(dataset)
    if object_id not in ids:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise PipelineError(f"object {object_id!r} is not in split {split} of "
                            f"{experiment['name']} ({len(ids)} objects: {shown})")
    item = dataset[ids.index(object_id)]
    images = torch.as_tensor(item["images"])
    cameras = Cameras.of_item(item)
    sources = source_views(eval_config, settings, object_id, int(images.shape[0]))
    path = camera_path(settings, section(experiment, "dataset")["format"],
                       cameras.z_near, cameras.z_far)
    network = load_inference(section(experiment, "model"), section(experiment, "renderer"),
                             checkpoint, device)
    generator = torch.Generator(device=device)
    generator.manual_seed(stable_seed(eval_config.seed, SEED_TAG, object_id))
    index = list(sources)
    rgb = render_path(
        network.model, network.renderer, images[index], cameras.poses[index], path,
        cameras.focal, cameras.c, cameras.z_near, cameras.z_far, eval_config.ray_batch,
        generator, device,
    )
    return VideoFrames(frames=to_uint8(rgb), poses=path, sources=tuple(sources))


def make_object_video(
    experiment: Mapping[str, Any],
    data_root: Path,
    checkpoint: Path,
    object_id: str,
    out: Path,
    device: torch.device,
    settings: VideoSettings | None = None,
) -> VideoFrames:
    """Render one object's video and write it to ``out`` (mp4, atomically)."""
    settings = settings or VideoSettings.of_experiment(experiment)
    video = render_object_video(experiment, data_root, checkpoint, object_id, device, settings)
    write_mp4(out, video.frames, settings.fps, settings.quality)
    return video
