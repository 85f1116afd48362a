"""The published normalisation of a car photo: centre, scale, composite on white, resize.

An ellipse is fitted to the car's mask (here from the mask's second moments: a filled ellipse
with semi-axis ``a`` has variance ``a^2 / 4`` along it, so the full axis is ``4 sqrt(eig)``);
the crop is a square centred on the ellipse whose side is the larger of ``minor * minor_scale``
and ``major * major_scale``, so every car takes the same share of the frame whatever the
photo's framing. Pixels off the mask, and the crop's part outside the photo, become white; the
crop is resized to ``size x size`` (bilinear, antialiased).

Call chain: normalize_photo -> (fit_ellipse, crop_square).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pixelnerf.errors import PipelineError

WHITE = 255
# Pixels of the mask a fit needs: fewer do not define an ellipse's two axes.
MIN_MASK_PIXELS = 3


@dataclass(frozen=True)
class Ellipse:
    """Centre (x right, y down, pixels) and full axis lengths (pixels) of a mask's ellipse."""

    cx: float
    cy: float
    minor: float
    major: float


def fit_ellipse(mask: np.ndarray, name: str = "mask") -> Ellipse:
    """The ellipse with the second moments of ``mask (H, W)`` bool."""
    ys, xs = np.nonzero(mask)
    if len(xs) < MIN_MASK_PIXELS:
        raise PipelineError(f"{name}: the car mask is empty (or has under {MIN_MASK_PIXELS} "
                            f"pixels); nothing to centre")
    points = np.stack((xs, ys)).astype(np.float64)
    centre = points.mean(axis=1)
    # A pixel is a unit square, not a point: add its own variance 1/12 along both axes.
    covariance = np.cov(points, bias=True) + np.eye(2) / 12.0
    eigen = np.clip(np.linalg.eigvalsh(covariance), 0.0, None)
    minor, major = 4.0 * np.sqrt(eigen)
    return Ellipse(cx=float(centre[0]), cy=float(centre[1]), minor=float(minor),
                   major=float(major))


def crop_square(image: np.ndarray, left: int, top: int, side: int, fill: int) -> np.ndarray:
    """The ``side x side`` window at (left, top) of ``image (H, W, C)``, ``fill`` outside it."""
    height, width = image.shape[:2]
    out = np.full((side, side, image.shape[2]), fill, dtype=image.dtype)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + side, width), min(top + side, height)
    if x1 > x0 and y1 > y0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return out


def normalize_photo(image: np.ndarray, mask: np.ndarray, size: int, minor_scale: float,
                    major_scale: float, name: str = "photo") -> np.ndarray:
    """``image (H, W, 3)`` uint8 and ``mask (H, W)`` bool -> ``(size, size, 3)`` uint8 on white."""
    from PIL import Image

    if image.ndim != 3 or image.shape[2] != 3:
        raise PipelineError(f"{name}: want an RGB image, not shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise PipelineError(f"{name}: the mask is {mask.shape[1]}x{mask.shape[0]} but the photo "
                            f"is {image.shape[1]}x{image.shape[0]}")
    ellipse = fit_ellipse(mask, name)
    half = math.ceil(0.5 * max(ellipse.minor * minor_scale, ellipse.major * major_scale))
    left, top = round(ellipse.cx) - half, round(ellipse.cy) - half
    composite = np.where(mask[..., None], image, np.uint8(WHITE)).astype(np.uint8)
    crop = crop_square(composite, left, top, 2 * half, WHITE)
    resized = Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)
