"""The choices a sensitivity table varies, one at a time against the experiment's own
protocol: those that re-score the reference's PNGs, and those that change the rendering.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pixelnerf.eval import metrics
from pixelnerf.eval.coarse_samples import evaluation_renderer_config
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.protocol import Protocol
from pixelnerf.eval.sensitivity.scoring import Scoring
from pixelnerf.render.config import RendererConfig

DRAWS_GROUP = "source_views"
# The published eval.py's floor of coarse samples, which is eval.min_coarse_samples' default.
PUBLISHED_MIN_COARSE_SAMPLES = EvalConfig.__dataclass_fields__["min_coarse_samples"].default


@dataclass(frozen=True)
class RescoreVariant:
    """Scores the reference's own PNGs another way; only ``metric`` changes."""

    choice: str
    variant: str
    scoring: Scoring
    metric: str


RESCORE_VARIANTS = (
    RescoreVariant("ssim_window", "gaussian11x11_sigma1.5", Scoring(ssim_window="gaussian11"),
                   "ssim"),
    RescoreVariant("lpips_net", "alex", Scoring(lpips_net="alex"), "lpips"),
    RescoreVariant("lpips_input", "[0..1]", Scoring(lpips_range=metrics.ZERO_ONE), "lpips"),
)


@dataclass(frozen=True)
class RenderVariant:
    """Renders again with ``renderer`` (a full renderer section) and ``eval`` (source views,
    cameras); ``score_float``: score the float renders, not their 8-bit images. ``same``:
    why the renders would equal the reference's (then nothing is rendered)."""

    choice: str
    variant: str
    renderer: Mapping[str, Any]
    eval: EvalConfig
    score_float: bool = False
    same: str | None = None


def reference_variant(renderer: Mapping[str, Any], eval_config: EvalConfig) -> RenderVariant:
    """The experiment's own rendering (its evaluation renderer and protocol)."""
    return RenderVariant("reference", "reference",
                         evaluation_renderer_config(renderer, eval_config.min_coarse_samples),
                         eval_config)


def coarse_rule_variant(renderer: Mapping[str, Any], eval_config: EvalConfig) -> RenderVariant:
    """The published n_coarse >= 64 rule switched off when the experiment uses it, on else."""
    floor = None if eval_config.min_coarse_samples is not None else PUBLISHED_MIN_COARSE_SAMPLES
    changed = evaluation_renderer_config(renderer, floor)
    variant = RenderVariant("n_coarse_rule", "off" if floor is None else "on", changed,
                            dataclasses.replace(eval_config, min_coarse_samples=floor))
    reference = evaluation_renderer_config(renderer, eval_config.min_coarse_samples)
    if changed == reference:
        n_coarse = RendererConfig.from_mapping(renderer).n_coarse
        variant = dataclasses.replace(variant, same=f"renderer.n_coarse {n_coarse} is not "
                                      "below the floor: the same renders")
    return variant


def precision_variant(renderer: Mapping[str, Any], eval_config: EvalConfig,
                      resolved: str) -> RenderVariant:
    """The network in bf16 when the reference ran it in fp32 or TF32 (``resolved``: its
    precision on this device), in fp32 when it ran bf16."""
    other = "fp32" if resolved == "bf16" else "bf16"
    base = evaluation_renderer_config(renderer, eval_config.min_coarse_samples)
    return RenderVariant("precision", other, {**base, "precision": other}, eval_config)


def draw_seeds(eval_config: EvalConfig, setting: str, draws: int) -> list[int]:
    """``draws`` seeds of random source draws, none the setting's own seed."""
    own = Protocol.from_config(eval_config).rule(setting).random_seed
    seeds, seed = [], 1
    while len(seeds) < draws:
        if seed != own:
            seeds.append(seed)
        seed += 1
    return seeds


def source_draw_variants(renderer: Mapping[str, Any], eval_config: EvalConfig, setting: str,
                         count: int, draws: int) -> list[RenderVariant]:
    """Seeded random draws of ``count`` source views per object in place of the setting's
    own rule."""
    base = evaluation_renderer_config(renderer, eval_config.min_coarse_samples)
    out = []
    for seed in draw_seeds(eval_config, setting, draws):
        settings = {**eval_config.settings, setting: {"random": {"count": count, "seed": seed}}}
        out.append(RenderVariant(DRAWS_GROUP, f"random draw seed {seed}", base,
                                 dataclasses.replace(eval_config, settings=settings)))
    return out


def cameras_variant(renderer: Mapping[str, Any], eval_config: EvalConfig) -> RenderVariant:
    """Each object's own cameras when the reference uses the first object's, and back."""
    reuse = not eval_config.reuse_first_object_cameras
    base = evaluation_renderer_config(renderer, eval_config.min_coarse_samples)
    return RenderVariant("cameras", "first_object" if reuse else "own", base,
                         dataclasses.replace(eval_config, reuse_first_object_cameras=reuse))
