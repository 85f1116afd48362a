"""The two published MLP types behind ``model.mlp_coarse`` / ``mlp_fine``, chosen by ``type``."""

from __future__ import annotations

from typing import TypeAlias

from pixelnerf.errors import PipelineError
from pixelnerf.model.implicit import ImplicitMLP
from pixelnerf.model.mlp import ResnetFC

RadianceMLP: TypeAlias = ResnetFC | ImplicitMLP
MLP_TYPES = {"resnet": ResnetFC, "mlp": ImplicitMLP}


def make_mlp(cfg: dict, d_in: int, d_latent: int, d_out: int) -> RadianceMLP:
    """The MLP of a published ``model.mlp_*`` section; ``type`` defaults to ``mlp`` as published.

    Both take (latent (SB, NS, B, d_latent), code (SB, NS, B, d_in)) -> (SB, B, d_out).
    """
    kind = str(cfg.get("type", "mlp"))
    if kind not in MLP_TYPES:
        raise PipelineError(f"model.mlp_*.type {kind!r} is not one of {sorted(MLP_TYPES)}")
    return MLP_TYPES[kind].from_config(cfg, d_in, d_latent, d_out)
