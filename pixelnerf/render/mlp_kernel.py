"""Which kernel evaluates the MLPs at inference: ``renderer.mlp_kernel``, resolved for a plan.

resolve_mlp_kernel -> triton_unavailable (device, import, shape) -> self_check.

``published`` is the published graph, ``torch`` the fused eager path (``model.fused_mlp``),
``triton`` / ``triton-persistent`` the fused Triton GEMMs (``model.triton_mlp``). ``auto`` is
the torch path on every device: the only GPU measurements of rendering (docs/performance.md,
an H200 at the sn64 size) are of the torch paths; the Triton kernels become ``auto``'s choice
on CUDA only once a GPU measures them faster there. A Triton kernel asked for by name is
checked once against the torch path on the device (random weights of the configured MLP
shape) and stops the job with one error line where it cannot run or differs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import torch

from pixelnerf.device import triton_interpreting
from pixelnerf.errors import PipelineError
from pixelnerf.model.config import MLPConfig
from pixelnerf.model.mlp import ResnetFC

TRITON_KERNELS = ("triton", "triton-persistent")
SELF_CHECK_POINTS = 64
# The self-check MLP's inputs: the published sn64 point code (42) and a small latent (the
# kernels' K loop masks any width; the hidden width is the configured one).
SELF_CHECK_D_IN, SELF_CHECK_D_LATENT = 42, 64
TILE = 16  # the smallest tile side tl.dot takes: the hidden width must be a multiple of it
# Relative L2 error of the Triton output against the torch path on random inputs; a
# wrong kernel gives about 1. TF32 and bf16 round their operands to 10 and 7 mantissa bits.
SELF_CHECK_TOLERANCE = {"ieee": 1e-4, "tf32": 1e-2, torch.float16: 1e-2, torch.bfloat16: 5e-2}
# The published sn64 MLP, checked where no model section is given.
PUBLISHED_MLP = MLPConfig(type="resnet", n_blocks=5, d_hidden=512, combine_layer=3)


def random_resnet_fc(d_in: int, d_latent: int, width: int, n_blocks: int, combine_layer: int,
                     seed: int, combine_type: str = "average") -> ResnetFC:
    """A ResnetFC in eval mode with every weight random (``fc_1`` starts at zero when built,
    which would hide the blocks from any comparison): biases N(0, 0.05), ``fc_1``
    N(0, 0.5 / sqrt(width)), the rest as initialised under ``seed``."""
    torch.manual_seed(seed)
    mlp = ResnetFC(d_in, d_latent, 4, n_blocks, width, combine_layer, combine_type).eval()
    with torch.no_grad():
        for name, parameter in mlp.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0.0, 0.05)
            elif "fc_1" in name:
                parameter.normal_(0.0, 0.5 / width**0.5)
    return mlp


def triton_import_error() -> str | None:
    """Why ``triton`` cannot be imported (one phrase), or None."""
    try:
        importlib.import_module("triton.language")
    except ImportError as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def triton_unavailable(device: torch.device, mlps: Sequence[MLPConfig]) -> str | None:
    """Why the Triton kernels cannot run on ``device`` for these MLPs, or None."""
    if device.type != "cuda" and not (device.type == "cpu" and triton_interpreting()):
        return f"needs a CUDA device (or TRITON_INTERPRET=1 on the CPU), not {device.type}"
    error = triton_import_error()
    if error is not None:
        return f"cannot import Triton ({error})"
    for mlp in mlps:
        if mlp.type != "resnet":
            return f"evaluates model.mlp_*.type resnet only, not {mlp.type}"
        if mlp.d_hidden % TILE:
            return f"needs model.mlp_*.d_hidden a multiple of {TILE}, not {mlp.d_hidden}"
    return None


@torch.no_grad()
def self_check(kernel: str, mlps: Sequence[MLPConfig], device: torch.device) -> str | None:
    """Run ``kernel`` and the torch path on the same random MLP and batch, folded and
    unfolded, under the caller's precision settings; why they differ (or failed), or None."""
    from pixelnerf.model.backends import mlp_backend
    from pixelnerf.model.fused_mlp import compute_dtype, fused_forward

    backend = mlp_backend(kernel)
    generator = torch.Generator(device="cpu").manual_seed(0)
    for index, config in enumerate(mlps):
        mlp = random_resnet_fc(SELF_CHECK_D_IN, SELF_CHECK_D_LATENT, config.d_hidden,
                               config.n_blocks, config.combine_layer, seed=index,
                               combine_type=config.combine_type).to(device)
        shape = (1, 1, SELF_CHECK_POINTS)

        def randn(*size: int) -> torch.Tensor:
            return torch.randn(*size, generator=generator).to(device)

        x = randn(*shape, mlp.d_in)
        latent = randn(*shape, mlp.d_latent)
        terms = None
        if len(mlp.lin_z):
            # fp32 like the renderer's folded map, which is made outside the precision context
            with torch.autocast(device.type, enabled=False):
                terms = torch.cat([layer(latent) for layer in mlp.lin_z], dim=-1)
        dtype = compute_dtype(mlp, device)
        tf32 = dtype == torch.float32 and device.type == "cuda" and (
            torch.backends.cuda.matmul.allow_tf32)
        key = dtype if dtype != torch.float32 else ("tf32" if tf32 else "ieee")
        cases = [(latent, x, None)] + ([(None, x, terms)] if terms is not None else [])
        for inputs in cases:
            try:
                got = backend(mlp, *inputs).float()
            except Exception as exc:  # noqa: BLE001 - any compile, launch or shape failure
                text = str(exc).strip().splitlines()
                return f"failed to compile or run ({type(exc).__name__}: {text[0] if text else ''})"
            expected = fused_forward(mlp, *inputs).float()
            error = float((got - expected).norm() / expected.norm().clamp_min(1e-30))
            if not error <= SELF_CHECK_TOLERANCE[key]:
                return (f"differs from the torch path by {error:.2e} (relative L2, bound "
                        f"{SELF_CHECK_TOLERANCE[key]:.0e})")
    return None


def resolve_mlp_kernel(setting: str, mlps: Sequence[MLPConfig], device: torch.device) -> str:
    """The plan's kernel for ``renderer.mlp_kernel`` = ``setting`` on ``device`` (a Triton
    kernel: checked first, under the caller's precision settings, which the check runs in).
    ``mlps``: the model's MLP sections (none: the published sn64 MLP)."""
    if setting == "auto":
        return "torch"
    if setting not in TRITON_KERNELS:
        return setting
    mlps = tuple(mlps) or (PUBLISHED_MLP,)
    reason = triton_unavailable(device, mlps) or self_check(setting, mlps, device)
    if reason is not None:
        raise PipelineError(f"renderer.mlp_kernel: {setting} {reason}")
    return setting
