"""Which kernel evaluates the MLPs at inference: ``renderer.mlp_kernel``.

resolve_mlp_kernel -> triton_unavailable (device, import, shape) -> self_check.

``published`` is the published graph, ``torch`` the fused eager path (``model.fused_mlp``),
``triton`` the fused Triton GEMMs (``model.triton_mlp``). ``auto`` takes Triton on CUDA
where it compiles and matches the torch path on a small batch, else the torch path with
one line saying why; ``triton`` asked for explicitly never falls back: it stops with one
error line instead.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

import torch

from pixelnerf.device import triton_interpreting
from pixelnerf.errors import PipelineError

MLP_KERNELS = ("torch", "triton", "auto", "published")
SELF_CHECK_POINTS = 64
# Relative L2 error of the Triton output against the torch path on random inputs; a
# wrong kernel gives about 1. TF32 and bf16 round their operands to 10 and 7 mantissa bits.
SELF_CHECK_TOLERANCE = {"ieee": 1e-4, "tf32": 1e-2, torch.float16: 1e-2, torch.bfloat16: 5e-2}


def check_mlp_kernel(value: str) -> str:
    """``value`` itself if it is a known kernel, else one error line naming the key."""
    if value not in MLP_KERNELS:
        choices = ", ".join(MLP_KERNELS)
        raise PipelineError(f"renderer.mlp_kernel must be one of {choices}, not {value!r}")
    return value


def triton_import_error() -> str | None:
    """Why ``triton`` cannot be imported (one phrase), or None."""
    try:
        importlib.import_module("triton.language")
    except ImportError as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def triton_unavailable(device: torch.device, mlps: list) -> str | None:
    """Why the Triton kernel cannot run on ``device`` for these ResnetFCs, or None."""
    if device.type != "cuda" and not (device.type == "cpu" and triton_interpreting()):
        return f"needs a CUDA device (or TRITON_INTERPRET=1 on the CPU), not {device.type}"
    error = triton_import_error()
    if error is not None:
        return f"cannot import Triton ({error})"
    from pixelnerf.model.triton_mlp import unsupported_shape

    for mlp in mlps:
        reason = unsupported_shape(mlp)
        if reason is not None:
            return reason
    return None


@torch.no_grad()
def self_check(mlps: list, device: torch.device) -> str | None:
    """Run the Triton path and the torch path on the same random batch, folded and
    unfolded, under the caller's precision settings; why they differ (or failed), or None."""
    from pixelnerf.model.fused_mlp import compute_dtype, fused_forward
    from pixelnerf.model.triton_mlp import triton_forward

    generator = torch.Generator(device="cpu").manual_seed(0)
    for mlp in mlps:
        shape = (1, 1, SELF_CHECK_POINTS)

        def randn(*size: int) -> torch.Tensor:
            return torch.randn(*size, generator=generator).to(device)

        x = randn(*shape, mlp.d_in)
        latent = randn(*shape, mlp.d_latent) if mlp.d_latent > 0 else None
        terms = None
        if latent is not None and len(mlp.lin_z):
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
                got = triton_forward(mlp, *inputs).float()
            except Exception as exc:  # noqa: BLE001 - any compile, launch or shape failure
                text = str(exc).strip().splitlines()
                return f"failed to compile or run ({type(exc).__name__}: {text[0] if text else ''})"
            expected = fused_forward(mlp, *inputs).float()
            error = float((got - expected).norm() / expected.norm().clamp_min(1e-30))
            if not error <= SELF_CHECK_TOLERANCE[key]:
                return (f"differs from the torch path by {error:.2e} (relative L2, bound "
                        f"{SELF_CHECK_TOLERANCE[key]:.0e})")
    return None


def resolve_mlp_kernel(
    setting: str,
    mlps: list,
    device: torch.device,
    log: Callable[[str], None] | None = None,
) -> str:
    """``published``, ``torch`` or ``triton`` for ``setting`` on ``device``.

    Call it under the evaluation's precision settings (the self-check runs in them).
    ``log`` (default: one line on stderr) receives the reason ``auto`` chose torch.
    """
    check_mlp_kernel(setting)
    if setting in ("torch", "published"):
        return setting
    reason = triton_unavailable(device, mlps) if setting == "triton" or device.type == "cuda" \
        else f"needs a CUDA device, not {device.type}"
    if reason is None:
        reason = self_check(mlps, device)
    if reason is None:
        return "triton"
    if setting == "triton":
        raise PipelineError(f"renderer.mlp_kernel: triton {reason}")
    (log or _stderr)(f"pixelnerf: renderer.mlp_kernel auto: the torch path (Triton {reason})")
    return "torch"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
