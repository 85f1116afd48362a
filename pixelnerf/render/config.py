"""The ``renderer`` section as typed, frozen settings: the published renderer keys with their
published defaults, plus how the network is evaluated at inference (resolved once per job
into an InferencePlan by :func:`pixelnerf.render.plan.resolve_plan`).

Keys, types and ranges are checked by the experiment schema; here only what it cannot say.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pixelnerf.config import build, setting
from pixelnerf.errors import PipelineError
from pixelnerf.model.plan import KERNELS

PRECISION_SETTINGS = ("fp32", "tf32", "bf16", "auto")
MLP_KERNEL_SETTINGS = ("auto", *KERNELS)
COMPILE_SETTINGS = (False, True, "max-autotune")


@dataclasses.dataclass(frozen=True)
class RendererConfig:
    """The ``renderer`` section (training uses its sampling keys; the evaluation all)."""

    n_coarse: int = setting(64, "stratified samples a ray (the coarse pass)")
    n_fine: int = setting(32, "samples a ray of the fine pass besides the coarse ones; 0 = none")
    n_fine_depth: int = setting(16, "of n_fine, samples around the coarse pass's depth")
    noise_std: float = setting(0.0, "std of the noise added to sigma in training")
    depth_std: float = setting(0.01, "std of the samples around the coarse depth")
    white_bkgd: bool = setting(True, "composite onto a white background")
    lindisp: bool = setting(False, "sample linearly in inverse depth")
    chunk_points: int | None = setting(
        None, "network points a call at inference; null = sized from the device's free memory")
    max_memory_mb: float | None = setting(
        None, "bound on one network call's estimated activations (MiB); null = none")
    precision: str = setting(
        "fp32", "network arithmetic at inference: fp32, tf32 (CUDA), bf16, or auto = bf16 "
        "where the device computes it natively (CUDA, CPUs with AVX512-BF16/AMX), else fp32")
    fold_latent: bool | str = setting(
        "auto", "fold lin_z into the latent map at inference (same function, fewer FLOPs); "
        "auto = on CPUs, and on CUDA in bf16 only")
    compile: bool | str = setting(
        False, "torch.compile the MLPs at inference: true (any call size), max-autotune "
        "(one padded call size, autotuned matmuls) or false")
    mlp_kernel: str = setting(
        "auto", "MLP evaluation at inference: torch (fused eager), published (the published "
        "graph), triton, triton-persistent (fused Triton GEMMs; an error where they cannot "
        "run or fail their self-check), or auto = torch on every device (no GPU measurement "
        "has shown Triton faster)")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | RendererConfig | None) -> RendererConfig:
        """The typed section of a ``renderer`` mapping (a RendererConfig: itself)."""
        if isinstance(data, RendererConfig):
            return data
        return build(cls, data, "renderer")

    def check(self, origin: str) -> None:
        """What the schema cannot say (one key against another), and the allowed values
        for mappings that never met the schema."""
        if self.n_fine_depth > self.n_fine:
            raise PipelineError(f"{origin}.n_fine_depth cannot exceed {origin}.n_fine")
        for key, allowed in (("precision", PRECISION_SETTINGS),
                             ("mlp_kernel", MLP_KERNEL_SETTINGS),
                             ("compile", COMPILE_SETTINGS),
                             ("fold_latent", (True, False, "auto"))):
            value = getattr(self, key)
            if not any(value is choice or (isinstance(value, str) and value == choice)
                       for choice in allowed):
                choices = ", ".join(str(choice).lower() for choice in allowed)
                raise PipelineError(f"{origin}.{key} must be one of {choices}, not {value!r}")
