"""The InferencePlan of a job, resolved once from the ``renderer`` section, the model's MLP
sections and the device, with a self-check where a choice needs one.

resolve_plan -> resolve_precision, resolve_mlp_kernel (a Triton kernel: self-check),
folds_latent, compile_mode (compiled: compile_problem), chunk_memory.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import torch

from pixelnerf.model.config import ModelConfig
from pixelnerf.model.plan import EAGER, InferencePlan
from pixelnerf.render.compiling import compile_mode, compile_problem
from pixelnerf.render.config import RendererConfig
from pixelnerf.render.memory import chunk_memory
from pixelnerf.render.mlp_kernel import TRITON_KERNELS, resolve_mlp_kernel
from pixelnerf.render.precision import network_precision, resolve_precision


def _warn(line: str) -> None:
    print(f"pixelnerf: warning: {line}", file=sys.stderr, flush=True)


def folds_latent(setting: bool | str, device: torch.device, precision: str) -> bool:
    """Whether evaluation on ``device`` in ``precision`` (resolved) folds ``lin_z`` into the
    latent map.

    ``auto`` folds on CPUs, where it saves a quarter of the FLOPs. On CUDA it folds in
    bf16 only: the folded terms are computed once in fp32, and an unfolded bf16 path
    (lin_z and the feature gather in bf16) moved the test model's table SSIM by 0.0014
    on an H200, past the 0.001 bound, where the folded one stayed within it. In fp32
    and TF32 the unfolded path is the faster on CUDA: the 3x wider gather of the folded
    map costs more than the matmuls it saves (H200: TF32 90k rays/s folded, 114k not).
    """
    if setting == "auto":
        return device.type != "cuda" or precision == "bf16"
    return bool(setting)


def _has_latent_layers(model: ModelConfig | None) -> bool:
    """Whether any MLP has ``lin_z`` layers to fold (unknown model: assumed so)."""
    if model is None:
        return True
    return any(m.type == "resnet" and min(m.combine_layer, m.n_blocks) > 0 for m in model.mlps())


def resolve_plan(renderer: RendererConfig | Mapping[str, Any], device: torch.device,
                 model: ModelConfig | Mapping[str, Any] | None = None,
                 warn: Callable[[str], None] = _warn) -> InferencePlan:
    """The plan of a job on ``device``; ``model``: its ``model`` section (None: the published
    sn64 MLP is assumed where a Triton self-check needs a shape). A compile mode whose
    toolchain fails on the device becomes eager, with one ``warn`` line."""
    config = RendererConfig.from_mapping(renderer)
    model_config = None if model is None else ModelConfig.from_mapping(model)
    precision = resolve_precision(config.precision, device)
    mlps = () if model_config is None else model_config.mlps()
    with network_precision(precision, device):
        kernel = resolve_mlp_kernel(config.mlp_kernel, mlps, device)
    mode = compile_mode(config.compile)
    if kernel in TRITON_KERNELS:
        mode = EAGER  # already fused; torch.compile would only trace around it
    if mode != EAGER:
        problem = compile_problem(device)
        if problem is not None:
            warn(f"torch.compile failed ({problem}); rendering without it")
            mode = EAGER
    return InferencePlan(
        kernel=kernel,
        compile=mode,
        fold_latent=folds_latent(config.fold_latent, device, precision)
        and _has_latent_layers(model_config),
        precision=precision,
        chunk_points=config.chunk_points,
        chunk_memory_bytes=None if config.chunk_points is not None else chunk_memory(device),
        max_memory_mb=config.max_memory_mb,
    )
