"""How many points a network call may take: a configured memory bound, and backing off when
the device runs out of memory anyway.

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

T = TypeVar("T")


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
