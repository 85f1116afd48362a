"""The two published MLP types behind ``model.mlp_coarse`` / ``mlp_fine``, chosen by ``type``."""

from __future__ import annotations

from typing import TypeAlias

from pixelnerf.errors import PipelineError
from pixelnerf.model.config import MLPConfig
from pixelnerf.model.implicit import ImplicitMLP
from pixelnerf.model.mlp import MLPBackend, ResnetFC

RadianceMLP: TypeAlias = ResnetFC | ImplicitMLP
MLP_TYPES = ("resnet", "mlp")


def make_mlp(cfg: MLPConfig, d_in: int, d_latent: int, d_out: int,
             backend: MLPBackend | None = None) -> RadianceMLP:
    """The MLP of a published ``model.mlp_*`` section; ``type`` defaults to ``mlp`` as published.

    Both take (latent (SB, NS, B, d_latent), code (SB, NS, B, d_in)) -> (SB, B, d_out).
    ``backend``: the ResnetFC's inference evaluation (the plain MLP has only its own).
    """
    if cfg.type == "resnet":
        return ResnetFC.from_config(cfg, d_in, d_latent, d_out, backend)
    if cfg.type == "mlp":
        return ImplicitMLP.from_config(cfg, d_in, d_latent, d_out)
    raise PipelineError(f"model.mlp_*.type {cfg.type!r} is not one of {sorted(MLP_TYPES)}")
