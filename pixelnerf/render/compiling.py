"""How the renderer runs compiled MLPs (``renderer.compile``): whether ``torch.compile`` works
on a device at all, network calls padded to one fixed number of points, and a count of
compiled graphs.

``compile: true`` (plan ``dynamic``) compiles once for any point count. ``compile:
max-autotune`` compiles for one shape only, with Inductor's autotuned matmul templates, which
take the bias, ReLU and residual additions into the matmul's epilogue; the renderer pads
every call to the same number of points (:func:`padded_points`), so that each MLP compiles
once (a coarse and a fine MLP of one architecture share the graph of that shape).
"""

from __future__ import annotations

import torch

from pixelnerf.model.plan import DYNAMIC, EAGER, MAX_AUTOTUNE


def compile_mode(value: bool | str) -> str:
    """The plan's compile mode of a ``renderer.compile`` value."""
    if value == MAX_AUTOTUNE:
        return MAX_AUTOTUNE
    return DYNAMIC if value is True else EAGER


def _probe(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x) * 2.0 + 1.0


def compile_problem(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` (one phrase), or None: a tiny function
    compiled and run there. Compilation needs a working compiler toolchain (a C++ compiler
    on CPUs, Triton on CUDA), which a node may lack."""
    try:
        out = torch.compile(_probe, dynamic=False)(torch.ones(8, device=device))
        if not bool((out == 3.0).all()):
            return "a compiled probe computed a wrong result"
    except Exception as exc:  # noqa: BLE001 - any failure of the toolchain
        # Dynamo wraps the backend's error; its own message says only which backend failed.
        cause = getattr(exc, "inner_exception", None) or exc.__cause__ or exc
        text = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {text[0] if text else ''}"
    return None


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
