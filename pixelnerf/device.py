"""Choosing the torch device from the config value (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""

from __future__ import annotations

import os

import torch

from pixelnerf.errors import PipelineError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks the first CUDA device when one is present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise PipelineError(f"device {name!r} is not a torch device name: {exc}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"device {name!r} was asked for but CUDA is not available here")
    return device


def triton_interpreting() -> bool:
    """Whether Triton runs kernels in its interpreter on the CPU (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
