"""The extra files of ``eval.outputs``, written per target view beside its render.

Under ``<out>/<setting>/<object_id>/`` (the render is ``{view:06d}.png``):

- ``depth/{view:06d}.png`` (``depth``): the expected depth of the pass rendered (fine when
  the renderer has fine samples), a 16-bit grayscale PNG on a fixed scale: a pixel value
  ``v`` is the depth ``v * depth_scale``, with ``depth_scale = z_far / 65535`` recorded in
  done.json, so maps of different views and objects compare and convert back to depth
  (the published eval.py normalises each map to its own range for viewing instead);
- ``coarse/{view:06d}.png`` (``coarse``): the coarse network's render, 8 bits like the render;
- ``with_src/{view:06d}.png`` (``include_src``): the source views, then the render, side by
  side;
- ``compare/{view:06d}.png`` (``compare``): source views | render | ground truth.

The renders the metrics step scores are written as without these; the files are listed
with their sizes under done.json's ``extra_files``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.eval.config import EvalOutputs
from pixelnerf.eval.inference import ViewPasses, to_uint8
from pixelnerf.eval.protocol import ViewSelection
from pixelnerf.eval.records import EXTRA_FILES_KEY
from pixelnerf.eval.render_files import png_name

DEPTH_LEVELS = 65535  # the largest 16-bit value: depth z_far
DEPTH_DIR, COARSE_DIR, WITH_SRC_DIR, COMPARE_DIR = "depth", "coarse", "with_src", "compare"


def depth_scale(z_far: float) -> float:
    """Depth units per 16-bit pixel value."""
    return float(z_far) / DEPTH_LEVELS


def depth_png(depth: torch.Tensor, z_far: float) -> np.ndarray:
    """A depth map ``(H, W)`` -> uint16 ``(H, W)`` on the scale :func:`depth_scale`."""
    values = torch.clamp(depth.float() / float(z_far), 0.0, 1.0).numpy()
    return np.rint(values * DEPTH_LEVELS).astype(np.uint16)


def side_by_side(images: list[np.ndarray]) -> np.ndarray:
    """``(H, W_i, 3)`` uint8 images -> one ``(H, sum W_i, 3)``."""
    return np.concatenate(images, axis=1)


def write_extras(folder: Path, outputs: EvalOutputs, selection: ViewSelection,
                 passes: ViewPasses, images: np.ndarray, item: Mapping[str, Any],
                 z_far: float) -> dict[str, Any]:
    """Write the asked extra files of every target view; returns done.json's keys for them
    (empty when none is asked).

    images: the renders ``(NT, H, W, 3)`` uint8; ``item["images"]``: ``(NV, 3, H, W)`` in
    [-1, 1] (the source views and the ground truth).
    """
    from pixelnerf.io import atomic_save_png

    if not outputs.any:
        return {}
    views = torch.as_tensor(item["images"])
    photos = to_uint8((views.permute(0, 2, 3, 1).float() + 1.0) / 2.0)
    sources = [photos[v] for v in selection.sources]
    written: dict[str, np.ndarray] = {}
    for index, view in enumerate(selection.targets):
        name = png_name(view)
        if outputs.depth:
            written[f"{DEPTH_DIR}/{name}"] = depth_png(passes.depth[index], z_far)
        if outputs.coarse:
            written[f"{COARSE_DIR}/{name}"] = to_uint8(passes.coarse_rgb[index])
        if outputs.include_src:
            written[f"{WITH_SRC_DIR}/{name}"] = side_by_side([*sources, images[index]])
        if outputs.compare:
            written[f"{COMPARE_DIR}/{name}"] = side_by_side(
                [*sources, images[index], photos[view]])
    for relative, image in written.items():
        atomic_save_png(folder / relative, image)
    keys: dict[str, Any] = {
        EXTRA_FILES_KEY: {relative: (folder / relative).stat().st_size for relative in written}
    }
    if outputs.depth:
        keys["depth_scale"] = depth_scale(z_far)
    return keys
