"""The training objective: render a ray batch and compare with its colours.

``batch_losses -> model.encode, renderer``; loss = lambda_coarse * E(coarse) +
lambda_fine * E(fine) on [0, 1] colours, E the mean squared (published) or absolute error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import torch

from pixelnerf.train.sampling import RayBatch


@dataclasses.dataclass
class Losses:
    """Scalar losses of one batch (0-dim tensors); ``fine`` is ``None`` without a fine pass."""

    total: torch.Tensor
    coarse: torch.Tensor
    fine: torch.Tensor | None
    # MSE of the reported pass where the loss is not the MSE (``l1``), for the PSNR
    mse: torch.Tensor | None = None

    def values(self) -> dict[str, float]:
        """Plain floats (one device synchronisation for all of them)."""
        parts = [self.total, self.coarse] + ([] if self.fine is None else [self.fine])
        parts += [] if self.mse is None else [self.mse]
        numbers = torch.stack([p.detach().float() for p in parts]).tolist()
        out = {"loss": numbers[0], "loss_coarse": numbers[1]}
        out["loss_fine"] = numbers[2] if self.fine is not None else math.nan
        # PSNR of the pass that is reported as the render: fine when there is one.
        reported = out["loss_fine"] if self.fine is not None else out["loss_coarse"]
        out["psnr"] = psnr(numbers[-1] if self.mse is not None else reported)
        return out


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB for colours in [0, 1]."""
    return math.inf if mse <= 0 else -10.0 * math.log10(mse)


def render_batch(model: Any, renderer: Any, batch: RayBatch,
                 generator: torch.Generator | None,
                 fold: bool = False) -> dict[str, dict[str, torch.Tensor]]:
    """Encode the batch's source views and render its rays: the renderer's output dict.
    ``fold``: fold the MLPs' ``lin_z`` into the latent map first (``train.fold_latent``)."""
    model.encode(batch.src_images, batch.src_poses, batch.focal, c=batch.c)
    if fold:
        model.fold_latent_terms()
    return renderer(model, batch.rays, generator=generator)


@dataclasses.dataclass(frozen=True)
class LossSettings:
    """``kind``: ``mse`` or ``l1``; the weights of the coarse and fine terms."""

    kind: str = "mse"
    lambda_coarse: float = 1.0
    lambda_fine: float = 1.0


def colour_error(rgb: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean squared (``mse``) or absolute (``l1``) error over every element, float32."""
    diff = rgb.float() - target
    return torch.mean(diff.abs() if kind == "l1" else diff * diff)


def batch_losses(model: Any, renderer: Any, batch: RayBatch,
                 generator: torch.Generator | None, fold: bool = False,
                 settings: LossSettings = LossSettings()) -> Losses:
    """The weighted loss of one batch, computed in float32 (``fold``: see
    :func:`render_batch`). ``coarse``/``fine`` are the unweighted errors; without a fine
    pass the total is the coarse error unweighted, as published."""
    out = render_batch(model, renderer, batch, generator, fold)
    target = batch.target.float()
    coarse = colour_error(out["coarse"]["rgb"], target, settings.kind)
    fine_out = out.get("fine")
    fine = colour_error(fine_out["rgb"], target, settings.kind) if fine_out else None
    total = (coarse if fine is None
             else settings.lambda_coarse * coarse + settings.lambda_fine * fine)
    mse = None
    if settings.kind != "mse":
        shown = fine_out["rgb"] if fine_out else out["coarse"]["rgb"]
        mse = colour_error(shown.detach(), target, "mse")
    return Losses(total=total, coarse=coarse, fine=fine, mse=mse)


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast of the forward pass when ``bf16``, else nothing."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def tf32_matmul(enabled: bool) -> Iterator[None]:
    """Allow TF32 in CUDA matmuls and convolutions inside the block, restoring the old flags."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
