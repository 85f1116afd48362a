"""Scoring one object's views one way or another: the reference's metrics, or SSIM with
another window, or LPIPS with another trunk or input range.

Images are (H, W, 3) float arrays in [0, 1], predictions and truths paired by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pixelnerf.eval import metrics
from pixelnerf.eval.sensitivity.lpips_seam import (
    REFERENCE_NET,
    REFERENCE_RANGE,
    LpipsModels,
    lpips_mean,
)

SSIM_WINDOWS = ("published", "gaussian11")
# Wang et al.'s SSIM: an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma: radius
# 5) and population covariances; the published code used scikit-image's defaults instead
GAUSSIAN_SIGMA = 1.5


@dataclass(frozen=True)
class Scoring:
    """How views are scored: SSIM's window, LPIPS's trunk and input range."""

    ssim_window: str = "published"
    lpips_net: str = REFERENCE_NET
    lpips_range: str = REFERENCE_RANGE


REFERENCE_SCORING = Scoring()


def ssim_gaussian(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM with an 11x11 Gaussian window (sigma 1.5), per channel then averaged."""
    from skimage.metrics import structural_similarity

    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    return float(structural_similarity(pred, gt, channel_axis=-1, data_range=1.0,
                                       gaussian_weights=True, sigma=GAUSSIAN_SIGMA,
                                       use_sample_covariance=False))


def ssim_mean(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], window: str) -> float:
    ssim = metrics.ssim if window == "published" else ssim_gaussian
    return float(np.mean([ssim(p, g) for p, g in zip(preds, gts, strict=True)]))


def lpips_of(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], scoring: Scoring,
             models: LpipsModels, batch_size: int) -> float | None:
    """Mean LPIPS of ``scoring``'s trunk and range, or None where its weights are absent."""
    model = models(scoring.lpips_net)
    if model is None:
        return None
    return lpips_mean(model, preds, gts, scoring.lpips_range, batch_size)


def score_views(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], scoring: Scoring,
                models: LpipsModels, batch_size: int) -> dict[str, float | None]:
    """psnr, ssim, lpips means over the views, as ``scoring`` says."""
    return {
        "psnr": float(np.mean([metrics.psnr(p, g) for p, g in zip(preds, gts, strict=True)])),
        "ssim": ssim_mean(preds, gts, scoring.ssim_window),
        "lpips": lpips_of(preds, gts, scoring, models, batch_size),
    }
