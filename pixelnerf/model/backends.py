"""The MLP evaluations a plan's ``kernel`` names, as backends a ResnetFC is given.

``published``: none (the module's own published graph); ``torch``: the fused eager path
(:mod:`pixelnerf.model.fused_mlp`); ``triton`` / ``triton-persistent``: the fused Triton
GEMMs, one program a tile or one program a multiprocessor (:mod:`pixelnerf.model.triton_mlp`,
imported only when named: Triton is optional).
"""

from __future__ import annotations

import functools

from pixelnerf.model.fused_mlp import fused_forward
from pixelnerf.model.mlp import MLPBackend
from pixelnerf.model.plan import KERNELS


def mlp_backend(kernel: str) -> MLPBackend | None:
    """The backend of ``kernel`` (one of ``KERNELS``); None: the published graph."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown MLP kernel {kernel!r}")
    if kernel == "published":
        return None
    if kernel == "torch":
        return fused_forward
    from pixelnerf.model.triton_mlp import triton_forward

    return functools.partial(triton_forward, persistent=kernel == "triton-persistent")
