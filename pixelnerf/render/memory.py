"""How many points a network call may take: sized from the device, bounded by a configured
memory bound, and backing off when the device runs out of memory anyway.

``chunk_memory`` is the memory a call's activations may take on a device (measured once, for
the plan); ``points_per_call`` turns a plan into points for a number of source views;
``memory_capped`` bounds a chunk by ``renderer.max_memory_mb`` (the estimated activations of
one call); ``halving_on_oom`` runs a chunked evaluation and, when it runs out of memory,
halves the chunk and runs it again, with one warning line each time, so a ``chunk_points``
far too large for the device slows a render down instead of ending it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import torch

from pixelnerf.errors import PipelineError
from pixelnerf.model.plan import InferencePlan

T = TypeVar("T")
# Bytes of activations one point costs per source view in one network call (fp32 inference,
# 512-wide ResnetFC: latent, hidden states and temporaries), used to size chunks on CUDA.
BYTES_PER_POINT_VIEW = 16 * 1024
CPU_CHUNK_POINTS = 32768  # large enough to amortise call overhead, small enough for caches
MIN_CHUNK_POINTS = 4096
MAX_CHUNK_POINTS = 1 << 21
# The device default under compile: max-autotune, which pads each pass's last call to a full
# chunk: at most one chunk of padding a pass, 4% more points for an sn64 object rendered in
# 50,000-ray batches at this size (at MAX_CHUNK_POINTS: 39%), while a call's matmuls (2^18
# rows) still fill a GPU.
PADDED_CHUNK_POINTS = 1 << 18
CUDA_MEMORY_FRACTION = 0.5  # of the free memory a chunk's activations may take


def chunk_memory(device: torch.device) -> int | None:
    """Bytes a network call's activations may take on ``device``: half its free memory on
    CUDA; None on a CPU, where calls have a fixed size. Measured once per job, before the
    caching allocator holds what the first calls used (measuring later would shrink every
    chunk and change the shapes a compiled network sees)."""
    if device.type != "cuda":
        return None
    free_bytes, _ = torch.cuda.mem_get_info(device)
    return int(free_bytes * CUDA_MEMORY_FRACTION)


def points_per_call(plan: InferencePlan, views: int, padded: bool = False) -> int:
    """Network points a call for ``views`` source views under ``plan``: ``chunk_points``,
    else sized from ``chunk_memory_bytes`` (at most ``PADDED_CHUNK_POINTS`` where calls are
    ``padded``), else ``CPU_CHUNK_POINTS``; then bounded by ``max_memory_mb``."""
    views = max(views, 1)
    chunk = plan.chunk_points
    if chunk is None:
        if plan.chunk_memory_bytes is None:
            chunk = CPU_CHUNK_POINTS
        else:
            points = plan.chunk_memory_bytes // (BYTES_PER_POINT_VIEW * views)
            chunk = max(MIN_CHUNK_POINTS, min(MAX_CHUNK_POINTS, points))
        if padded:
            chunk = min(chunk, PADDED_CHUNK_POINTS)
    return memory_capped(int(chunk), plan.max_memory_mb, BYTES_PER_POINT_VIEW * views)


def memory_capped(chunk: int, max_memory_mb: float | None, bytes_per_point: int) -> int:
    """``chunk`` points, at most what ``max_memory_mb`` holds at ``bytes_per_point`` each."""
    if max_memory_mb is None:
        return chunk
    return max(1, min(chunk, int(max_memory_mb * (1 << 20)) // bytes_per_point))


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA or host allocation failure (the forms torch raises them in)."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def warn(message: str) -> None:
    print(f"pixelnerf: warning: {message}", file=sys.stderr, flush=True)


def halving_on_oom(evaluate: Callable[[int], T], chunk: int,
                   report: Callable[[str], None] = warn) -> tuple[T, int]:
    """``evaluate(chunk)``, halving ``chunk`` after each out-of-memory failure; returns the
    result and the chunk that worked. One :class:`PipelineError` line when even one point a
    call does not fit."""
    while True:
        try:
            return evaluate(chunk), chunk
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            if chunk <= 1:
                raise PipelineError("out of memory even at one point a network call") from exc
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # what the failed call held
            smaller = chunk // 2
            report(f"out of memory at {chunk} points a network call ({type(exc).__name__}); "
                   f"going on with {smaller}")
            chunk = smaller
