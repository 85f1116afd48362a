"""Segmenting the car of a photo with torchvision's Mask R-CNN (COCO, class 'car').

The published preprocessing used PointRend from detectron2, which no package registry serves;
Mask R-CNN (ResNet-50 FPN v2) is its closest maintained counterpart whose loader ships with
torchvision. Its weights come from torchvision's download URL into torch's hub cache at run
time; they are never replaced by random weights. When they cannot be had, one error line says
so and names ``--mask`` (a mask image the user supplies).

Call chain: load_segmenter -> segment_car -> pick_car_mask.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from pixelnerf.errors import PipelineError

CAR = "car"  # the COCO category name in torchvision's weight metadata


def _weights_enum():
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    return MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1


def default_weights_path() -> Path:
    """Where torchvision keeps the downloaded weights: ``<torch hub dir>/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(_weights_enum().url).name


def _state_dict(weights: Path | None, allow_download: bool) -> dict[str, torch.Tensor]:
    hint = "pass --mask MASK.png (white where the car is) instead"
    path = weights or default_weights_path()
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise PipelineError(f"Mask R-CNN weights {path} cannot be read ({exc}); "
                                f"{hint}") from exc
    if weights is not None or not allow_download:
        raise PipelineError(f"Mask R-CNN weights are absent ({path}); {hint}")
    url = _weights_enum().url
    # torchvision names its files <name>-<first hex digits of the SHA-256>.pth
    match = torch.hub.HASH_REGEX.search(path.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), match.group(1) if match else None,
                                       progress=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise PipelineError(f"Mask R-CNN weights are absent ({path}) and downloading {url} "
                            f"failed ({exc}); {hint}") from exc


def load_segmenter(weights: str | os.PathLike | None = None, allow_download: bool = True,
                   device: torch.device | str = "cpu") -> torch.nn.Module:
    """Mask R-CNN with its COCO weights, in eval mode.

    weights: a weights file; None = torchvision's cache, downloaded there when absent and
    ``allow_download``. Missing weights raise ``PipelineError`` (one line naming ``--mask``).
    """
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    state = _state_dict(None if weights is None else Path(weights), allow_download)
    categories = _weights_enum().meta["categories"]
    # weights=None and weights_backbone=None: built empty, then every weight from the file
    # (strict), so no random weight can survive.
    model = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None,
                                     num_classes=len(categories))
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def car_label() -> int:
    """Index of COCO 'car' among the model's output labels."""
    return list(_weights_enum().meta["categories"]).index(CAR)


def pick_car_mask(detections: Mapping[str, torch.Tensor], label: int, score_threshold: float,
                  mask_threshold: float) -> np.ndarray | None:
    """The mask of the best-scoring car of one image's detections, or None when none passes.

    detections: torchvision's ``labels (N,)``, ``scores (N,)``, ``masks (N, 1, H, W)``
    probabilities -> ``(H, W)`` bool.
    """
    keep = (detections["labels"] == label) & (detections["scores"] >= score_threshold)
    if not bool(keep.any()):
        return None
    scores = torch.where(keep, detections["scores"], torch.full_like(detections["scores"], -1))
    best = int(torch.argmax(scores))
    return (detections["masks"][best, 0] >= mask_threshold).cpu().numpy()


@torch.no_grad()
def segment_car(model: torch.nn.Module, image: np.ndarray, score_threshold: float,
                mask_threshold: float, name: str = "photo") -> np.ndarray:
    """The car of ``image (H, W, 3)`` uint8 -> mask ``(H, W)`` bool; no car is one error line."""
    device = next(model.parameters()).device
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    detections = model([tensor.to(device)])[0]
    mask = pick_car_mask(detections, car_label(), score_threshold, mask_threshold)
    if mask is None:
        raise PipelineError(f"{name}: Mask R-CNN found no car with score >= {score_threshold}; "
                            f"try another photo or pass --mask")
    return mask
