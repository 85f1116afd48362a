"""Validation loss on held-out objects (the ``val`` split), the same rays at every call.

``validation_loss -> sample_batch, batch_losses``. The views and rays come from one fixed
generator, so the curve over steps shows the model changing, not the draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from pixelnerf.train.batches import chunks
from pixelnerf.train.objective import autocast, batch_losses, psnr
from pixelnerf.train.sampling import (
    STREAM_VALIDATION,
    SamplerSettings,
    sample_batch,
    step_generator,
)


@torch.no_grad()
def validation_loss(
    model: Any,
    renderer: Any,
    objects: Sequence[Mapping[str, Any]],
    settings: SamplerSettings,
    batch_objects: int,
    seed: int,
    device: torch.device,
    bf16: bool = False,
    fold: bool = False,
) -> dict[str, float]:
    """Mean loss and PSNR over ``objects`` in eval mode (BatchNorm running statistics).

    ``settings`` should have ``use_bbox=False`` and no jitter, as the published validation.
    Returns ``{"loss", "psnr"}``; the model is put back in training mode.
    """
    sampler = step_generator(seed, STREAM_VALIDATION, 0)
    render_generator = step_generator(seed, STREAM_VALIDATION, 1, device)
    model.eval()
    try:
        total, fine_or_coarse, weight = 0.0, 0.0, 0
        for group in chunks(objects, batch_objects):
            batch = sample_batch(group, settings, sampler)
            with autocast(device, bf16):
                losses = batch_losses(model, renderer, batch, render_generator, fold)
            values = losses.values()
            mse = values["loss_fine"] if losses.fine is not None else values["loss_coarse"]
            total += values["loss"] * len(group)
            fine_or_coarse += mse * len(group)
            weight += len(group)
    finally:
        model.train()
    return {"loss": total / weight, "psnr": psnr(fine_or_coarse / weight)}
