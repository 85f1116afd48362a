"""Combining per-view rows of the MLPs over the source views (mean or max)."""

from __future__ import annotations

import torch

from pixelnerf.errors import PipelineError

COMBINE_TYPES = ("average", "max")


def reduce_views(h: torch.Tensor, combine_type: str) -> torch.Tensor:
    """h: (SB, NS, B, D) -> (SB, 1, B, D), mean or max over the source views."""
    if combine_type not in COMBINE_TYPES:
        raise PipelineError(
            f"model.mlp_*.combine_type must be 'average' or 'max', not {combine_type!r}"
        )
    if h.shape[1] == 1:
        return h  # one view: its mean and its max are itself, bit for bit
    if combine_type == "average":
        return h.mean(dim=1, keepdim=True)
    return h.max(dim=1, keepdim=True).values
