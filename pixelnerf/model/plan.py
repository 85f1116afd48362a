"""How a render job evaluates the network: the InferencePlan, decided once per job (see
``pixelnerf.render.plan.resolve_plan``) and given to the model and the renderer when they
are built. Nothing in it changes afterwards.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# The MLP evaluations (``pixelnerf.model.backends``): the published graph, the fused eager
# torch path, the fused Triton GEMMs one program a tile, and the persistent Triton GEMM.
KERNELS = ("published", "torch", "triton", "triton-persistent")
EAGER, DYNAMIC, MAX_AUTOTUNE = "eager", "dynamic", "max-autotune"
# plan.compile -> torch.compile options of the MLPs. CUDA graphs are left out: a graph
# reuses its output buffers at every replay, and the renderer keeps each chunk's output until
# the whole pass is concatenated.
COMPILE_OPTIONS: dict[str, dict[str, Any] | None] = {
    EAGER: None,
    DYNAMIC: {"dynamic": True},
    MAX_AUTOTUNE: {"mode": "max-autotune-no-cudagraphs", "dynamic": False},
}
PRECISIONS = ("fp32", "tf32", "bf16")


@dataclasses.dataclass(frozen=True)
class InferencePlan:
    """kernel: one of ``KERNELS``; compile: ``eager``, ``dynamic`` (compiled once for any
    point count) or ``max-autotune`` (compiled for one padded call size); fold_latent: the
    ``lin_z`` layers folded into the latent map once per object; precision: the network's
    arithmetic (``fp32``, ``tf32``, ``bf16``); chunk_points: points a network call as
    configured (None: sized from ``chunk_memory_bytes``, or a fixed size on a CPU, where
    that is None); max_memory_mb: the configured bound on a call's activations."""

    kernel: str = "torch"
    compile: str = EAGER
    fold_latent: bool = False
    precision: str = "fp32"
    chunk_points: int | None = None
    chunk_memory_bytes: int | None = None
    max_memory_mb: float | None = None

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS or self.compile not in COMPILE_OPTIONS or (
                self.precision not in PRECISIONS):
            raise ValueError(f"not a resolved inference plan: {self}")

    @property
    def compile_options(self) -> dict[str, Any] | None:
        """The ``torch.compile`` options of the MLPs; None: eager."""
        return COMPILE_OPTIONS[self.compile]

    @property
    def pads_calls(self) -> bool:
        """Every network call padded to the chunk size, so a network compiled for one shape
        never sees another."""
        return self.compile == MAX_AUTOTUNE

    def record(self) -> dict[str, Any]:
        """The plan as a JSON-ready mapping (for provenance records)."""
        return dataclasses.asdict(self)

    def line(self) -> str:
        """The plan in one line, printed at the start of a job."""
        return "inference plan: " + ", ".join(
            f"{key} {'auto' if value is None else str(value).lower()}"
            for key, value in self.record().items())


# Training and any model built without a plan: the fused torch path at inference (with
# gradients on, the published graph runs whatever the kernel), eager, fp32, not folded.
DEFAULT_PLAN = InferencePlan()
