"""Writing and reading mp4 videos (H.264 through imageio-ffmpeg's bundled ffmpeg binary).

The video is encoded in memory and written with ``pixelnerf.io.atomic_write_bytes``, so a
killed job never leaves a truncated file under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_bytes

# yuv420p (the pixel format every player decodes) needs even frame sides; imageio would
# otherwise resample the frames to a multiple of its default macro block of 16 pixels.
MACRO_BLOCK = 2


def _even_sides(frames: np.ndarray) -> np.ndarray:
    """Pad ``(F, H, W, 3)`` by repeating the last row/column where a side is odd."""
    pad_h, pad_w = frames.shape[1] % MACRO_BLOCK, frames.shape[2] % MACRO_BLOCK
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames


def encode_mp4(frames: np.ndarray, fps: float, quality: float) -> bytes:
    """``frames (F, H, W, 3)`` uint8 -> the bytes of an H.264 mp4 at ``fps`` frames a second.

    quality: imageio-ffmpeg's 0 (worst) to 10 (best) scale; the published videos used 8.
    """
    import imageio.v3 as iio

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise PipelineError(f"video frames must be (F, H, W, 3) uint8 with F >= 1, "
                            f"not {frames.shape} {frames.dtype}")
    if fps <= 0:
        raise PipelineError(f"video.fps must be positive, not {fps}")
    if not 0 <= quality <= 10:
        raise PipelineError(f"video.quality must be in [0, 10], not {quality}")
    try:
        return iio.imwrite("<bytes>", _even_sides(frames), extension=".mp4", plugin="FFMPEG",
                           fps=fps, quality=quality, macro_block_size=MACRO_BLOCK)
    except (OSError, RuntimeError) as exc:
        raise PipelineError(f"ffmpeg could not encode the video (is imageio-ffmpeg installed?): "
                            f"{exc}") from exc


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float, quality: float) -> Path:
    """Encode ``frames (F, H, W, 3)`` uint8 and write them to ``path`` atomically."""
    path = Path(path)
    atomic_write_bytes(path, encode_mp4(frames, fps, quality))
    return path


def read_mp4(path: str | os.PathLike) -> np.ndarray:
    """Decode every frame of a video -> ``(F, H, W, 3)`` uint8."""
    import imageio.v3 as iio

    try:
        return np.asarray(iio.imread(Path(path), plugin="FFMPEG", index=None))
    except (OSError, RuntimeError, ValueError) as exc:
        raise PipelineError(f"cannot decode video {path}: {exc}") from exc


def video_fps(path: str | os.PathLike) -> float:
    """Frames a second recorded in the video's header."""
    import imageio.v3 as iio

    return float(iio.immeta(Path(path), plugin="FFMPEG")["fps"])
