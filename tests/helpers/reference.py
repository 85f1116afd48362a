"""Reading a reference set (vectors computed with the published code) into our objects.

Everything here is driven by the files: the model settings come from model_config.json,
the inputs from model_forward.npz; the weights come from a deterministic rule of sines (below),
the same rule the reference vectors were computed with, so no weights file is needed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import PROJECT_ROOT
from pixelnerf.model import PixelNeRF

# The set kept with the tests; the variable points them at another set in the same layout.
FIXTURE_REFERENCE = PROJECT_ROOT / "tests" / "fixtures" / "reference"
REFERENCE_DIR_VARIABLE = "PIXELNERF_REFERENCE_DIR"

LIN_OUT_GAIN = 40.0
# Network outputs against the published ones, fp32 (every parity test of the network).
NETWORK_ATOL = 1e-4
# Parity on the CPU in every run, on CUDA in the GPU runs (`make test-gpu`).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def reference_dir() -> Path:
    """The reference set: ``$PIXELNERF_REFERENCE_DIR`` when set, else tests/fixtures/reference."""
    configured = os.environ.get(REFERENCE_DIR_VARIABLE)
    return Path(configured) if configured else FIXTURE_REFERENCE


def load_vectors(root: Path) -> dict[str, np.ndarray]:
    """Every array of model_forward.npz."""
    with np.load(root / "model_forward.npz") as data:
        return {key: data[key] for key in data.files}


def deterministic_value(index: int, key: str, tensor: torch.Tensor) -> torch.Tensor | None:
    """The rule's value for the ``index``-th key (sorted order), or None to keep it as built."""
    if not tensor.is_floating_point():
        return None
    count = tensor.numel()
    s = np.sin((0.37 + 0.011 * index) * np.arange(count, dtype=np.float64) + 1.3 * index)
    s = s.reshape(tuple(tensor.shape))
    if key.endswith("running_var"):
        value = 1.0 + 0.5 * s**2
    elif key.endswith("running_mean"):
        value = 0.05 * s
    elif key.endswith("bias"):
        value = 0.02 * s
    elif key.endswith("weight") and tensor.dim() >= 2:
        fan_in = count / tensor.shape[0]
        value = s / np.sqrt(fan_in) * (LIN_OUT_GAIN if "lin_out" in key else 1.0)
    elif key.endswith("weight"):
        value = 1.0 + 0.1 * s
    else:
        return None
    return torch.from_numpy(value).to(tensor.dtype)


def fill_deterministic(model: torch.nn.Module) -> torch.nn.Module:
    """Overwrite every floating-point state-dict entry by the deterministic rule."""
    state = model.state_dict()
    filled = {}
    for index, key in enumerate(sorted(state)):
        value = deterministic_value(index, key, state[key])
        filled[key] = state[key] if value is None else value
    model.load_state_dict(filled)
    return model


def model_config(root: Path) -> dict:
    return json.loads((root / "model_config.json").read_text())


def reference_model(root: Path, device: torch.device) -> PixelNeRF:
    model = PixelNeRF.from_config(model_config(root)["model"])
    return fill_deterministic(model).to(device).eval()


def optional(array: np.ndarray) -> torch.Tensor | None:
    """The reference set's encoding of 'none': an array with no elements."""
    return None if array.size == 0 else torch.from_numpy(array)


def encode_sources(model: PixelNeRF, vectors: dict[str, np.ndarray], device: str) -> PixelNeRF:
    """``model.encode`` on a reference case's source views: ``images (NS, 3, H, W)``,
    ``poses (NS, 4, 4)``, ``focal`` and optional ``c``, all moved to ``device``; returns it."""
    c = optional(vectors["c"])
    with torch.no_grad():
        model.encode(
            torch.from_numpy(vectors["images"]).to(device),
            torch.from_numpy(vectors["poses"]).to(device),
            torch.from_numpy(vectors["focal"]).to(device),
            None if c is None else c.to(device),
        )
    return model


def assert_network_outputs(model: PixelNeRF, vectors: dict[str, np.ndarray], device: str,
                           coarse: bool) -> None:
    """The encoded ``model`` on a case's ``xyz`` and ``viewdirs`` equals its ``out_coarse``
    or ``out_fine`` (SB, B, 4) within :data:`NETWORK_ATOL`."""
    with torch.no_grad():
        out = model(
            torch.from_numpy(vectors["xyz"]).to(device),
            coarse=coarse,
            viewdirs=torch.from_numpy(vectors["viewdirs"]).to(device),
        )
    expected = vectors["out_coarse" if coarse else "out_fine"]
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=0, atol=NETWORK_ATOL)


def parse_state_dict_listing(path: Path) -> dict[str, tuple[list[int], torch.dtype]]:
    """``key [d0, d1] dtype`` per line -> {key: (shape, dtype)}."""
    listing = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"(\S+) \[([0-9, ]*)\] (\w+)", line.strip())
        if match is None:
            continue
        key, dims, dtype = match.groups()
        shape = [int(d) for d in dims.split(",") if d.strip()]
        listing[key] = (shape, getattr(torch, dtype))
    return listing
