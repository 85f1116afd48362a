"""The LPIPS models the sensitivity variants use, behind one small interface.

``LpipsModels`` maps a trunk name (``vgg`` or ``alex``) to a model, or to None where its
weights are absent. :func:`default_lpips_models` is the one place that builds them;
:func:`lpips_mean` is the one place that feeds them, in either input range.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pixelnerf.errors import PipelineError
from pixelnerf.eval import metrics

LpipsModels = Callable[[str], Any]  # net -> model or None
NETS = ("vgg", "alex")
REFERENCE_NET = "vgg"
# the range the published calc_metrics.py fed LPIPS, and the common mistake
INPUT_RANGES = ("[-1,1]", "[0,1]")
REFERENCE_RANGE = "[-1,1]"


def default_lpips_models(weights: str | os.PathLike | None, device: Any,
                         report: Callable[[str], None]) -> LpipsModels:
    """Trunk name -> its LPIPS model, built on first use and kept; None where absent.

    VGG: :func:`pixelnerf.eval.metrics.lpips_or_none` (the table's LPIPS). AlexNet: no
    weights loader exists in this package, so it is reported absent.
    """
    built: dict[str, Any] = {}

    def model(net: str) -> Any:
        if net not in NETS:
            raise PipelineError(f"LPIPS trunk must be one of {', '.join(NETS)}, not {net!r}")
        if net not in built:
            if net == "vgg":
                built[net] = metrics.lpips_or_none(weights, device, report)
            else:
                report("LPIPS AlexNet: no trunk weights available; its row is left empty")
                built[net] = None
        return built[net]

    return model


def lpips_mean(model: Any, preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
               input_range: str, batch_size: int) -> float:
    """Mean LPIPS over paired views (each (H, W, 3) in [0, 1]) fed in ``input_range``.

    :func:`pixelnerf.eval.metrics.lpips_distances` maps x to 2x - 1; handing it (x + 1) / 2
    makes the model see x itself, that is images in [0, 1].
    """
    if input_range not in INPUT_RANGES:
        raise PipelineError(f"LPIPS input range must be one of {', '.join(INPUT_RANGES)}")
    p, g = np.stack(preds), np.stack(gts)
    if input_range == "[0,1]":
        p, g = (p + 1.0) / 2.0, (g + 1.0) / 2.0
    return float(np.mean(metrics.lpips_distances(model, p, g, batch_size)))
