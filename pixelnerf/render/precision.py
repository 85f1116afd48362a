"""Numeric precision of the network: fp32, TF32 (CUDA) or bf16 autocast, and the one meaning
of ``auto`` wherever a precision is configured (``renderer.precision``, ``train.bf16``).

Sampling and compositing always stay in fp32; only the network's matmuls change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from pixelnerf.errors import PipelineError

PRECISIONS = ("fp32", "tf32", "bf16", "auto")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names of native bf16 units


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matmuls natively: CUDA with bf16, or a CPU with
    AVX512-BF16 or AMX. oneDNN also runs bf16 on plain AVX-512 by conversion, several times
    slower than fp32 (measured), so that does not count."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """AVX512-BF16 or AMX-BF16 among the CPU's flags: ``cpuinfo`` text, else /proc/cpuinfo
    (Linux), else torch's own probes."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                cpuinfo = handle.read()
        except OSError:
            probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
            return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    return any(flag in cpuinfo.split() for flag in CPU_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32``, ``tf32`` or ``bf16`` for a configured ``precision`` on ``device``.

    ``auto`` -> ``bf16`` where the device computes it natively, else ``fp32`` (never TF32);
    ``tf32`` off CUDA -> ``fp32`` (TF32 is a CUDA tensor-core mode; CPUs compute fp32).
    """
    if precision not in PRECISIONS:
        choices = ", ".join(PRECISIONS)
        raise PipelineError(f"precision must be one of {choices}, not {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision == "tf32" and device.type != "cuda":
        return "fp32"
    return precision


@contextlib.contextmanager
def tf32_allowed(allowed: bool) -> Iterator[None]:
    """Set CUDA's TF32 switches for matmuls and convolutions, restoring them afterwards.

    cuDNN convolutions default to TF32, so plain fp32 has to turn it off explicitly.
    """
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextlib.contextmanager
def network_precision(precision: str, device: torch.device) -> Iterator[None]:
    """Evaluate the network under ``precision`` (already resolved) on ``device``."""
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        with tf32_allowed(precision == "tf32"):
            yield
