"""The renderer settings of the evaluation: the published evaluation raises the coarse
sample count to at least 64 whatever the experiment trained with (``eval.min_coarse_samples``,
:attr:`pixelnerf.eval.config.EvalConfig.min_coarse_samples`).

``evaluation_renderer_config`` is what the render step builds its renderer from;
``coarse_samples_note`` is what the table says about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def evaluation_renderer_config(renderer: Mapping[str, Any], floor: int | None) -> dict[str, Any]:
    """The ``renderer`` section with ``n_coarse`` raised to ``floor`` where it is below it
    (``floor`` None: unchanged). The mapping keeps the keys it was given (the renders'
    fingerprint is made of them)."""
    from pixelnerf.render.config import RendererConfig

    out = dict(renderer)
    if floor is not None and RendererConfig.from_mapping(out).n_coarse < floor:
        out["n_coarse"] = floor
    return out


def coarse_samples_note(renderer: Mapping[str, Any], floor: int | None) -> str:
    """One line for the table's notes: the coarse samples per ray the renders used."""
    from pixelnerf.render.config import RendererConfig

    configured = RendererConfig.from_mapping(renderer).n_coarse
    used = RendererConfig.from_mapping(evaluation_renderer_config(renderer, floor)).n_coarse
    if used != configured:
        return (f"Renderer: {used} coarse samples per ray at evaluation (renderer.n_coarse "
                f"{configured} raised to eval.min_coarse_samples {floor}, as the published "
                f"evaluation does).")
    why = ("eval.min_coarse_samples is off" if floor is None
           else f"not below eval.min_coarse_samples {floor}")
    return f"Renderer: {used} coarse samples per ray at evaluation (renderer.n_coarse, {why})."
