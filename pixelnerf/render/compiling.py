"""How the renderer compiles the MLPs (``renderer.compile``): the ``torch.compile`` options of
each value, network calls padded to one fixed number of points, and a count of compiled graphs.

``compile: true`` compiles once for any point count (dynamic shapes). ``compile: max-autotune``
compiles for one shape only, with Inductor's autotuned matmul templates, which take the bias,
ReLU and residual additions into the matmul's epilogue; the renderer pads every call to the
same number of points (:func:`padded_points`), so that each MLP compiles once (a coarse
and a fine MLP of one architecture share the graph of that shape).
"""

from __future__ import annotations

import torch

MAX_AUTOTUNE = "max-autotune"
# renderer.compile -> torch.compile options of the MLPs. CUDA graphs are left out: a graph
# reuses its output buffers at every replay, and the renderer keeps each chunk's output until
# the whole pass is concatenated.
COMPILE_OPTIONS: dict[bool | str, dict] = {
    True: {"dynamic": True},
    MAX_AUTOTUNE: {"mode": "max-autotune-no-cudagraphs", "dynamic": False},
}


def compile_options(value: bool | str) -> dict | None:
    """The ``torch.compile`` options of a ``renderer.compile`` value; None: not compiled."""
    return COMPILE_OPTIONS[value] if value else None


def pads_calls(value: bool | str) -> bool:
    """Whether a ``renderer.compile`` value pads every network call to the chunk size."""
    return value == MAX_AUTOTUNE


def padded_points(points: torch.Tensor, size: int) -> torch.Tensor:
    """points (SB, p, C) with p <= ``size`` -> (SB, size, C): the last point repeated.

    Every row of the MLPs' matmuls is its own point (views are combined per point, never
    across points), so padded rows leave the others' results as they are, to the rounding of
    a taller matmul; a repeated real point, rather than zeros, keeps them away from a camera's
    centre, where projection divides by 0. An empty chunk has nothing to repeat: unchanged.
    """
    missing = size - points.shape[1]
    if missing <= 0 or points.shape[1] == 0:
        return points
    return torch.cat((points, points[:, -1:].expand(-1, missing, -1)), dim=1)


def compiled_graphs() -> int:
    """Graphs ``torch.compile`` has compiled in this process so far (every recompilation for
    a new shape counts one more): Dynamo's own counter."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
