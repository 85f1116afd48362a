"""Loading published (or our own) ``pixel_nerf_latest`` checkpoints: plain state dicts."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from pixelnerf.errors import PipelineError


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict with ``weights_only=True`` (a checkpoint is untrusted input)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise PipelineError(f"checkpoint {path} does not exist") from exc
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        AttributeError,
        TypeError,
    ) as exc:
        raise PipelineError(f"{path} is not a readable PyTorch checkpoint") from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise PipelineError(f"{path} is not a checkpoint: it does not hold a state dict of tensors")
    return dict(state)


def first_mismatch(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]
) -> str | None:
    """The first key (model order, then file order) that is missing, extra or reshaped."""
    for key, tensor in expected.items():
        if key not in found:
            return f"key {key} is missing from the checkpoint"
        if tuple(found[key].shape) != tuple(tensor.shape):
            return (
                f"key {key} has shape {list(found[key].shape)} in the checkpoint but "
                f"{list(tensor.shape)} in the model"
            )
    for key in found:
        if key not in expected:
            return f"key {key} in the checkpoint is not in the model"
    return None


def load_checkpoint(path: str | os.PathLike, model: nn.Module) -> nn.Module:
    """Load ``path`` into ``model`` strictly; any difference is one error line naming the key."""
    state = read_state_dict(path)
    mismatch = first_mismatch(model.state_dict(), state)
    if mismatch is not None:
        raise PipelineError(f"checkpoint {path} does not fit the model: {mismatch}")
    model.load_state_dict(state, strict=True)
    return model
