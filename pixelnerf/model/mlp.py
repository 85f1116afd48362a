"""ResnetFC: the published fully connected ResNet that maps (latent, point code) to (rgb, sigma).

Per-view rows are reduced over the source views at ``combine_layer``; before that, each
block adds a projection of the pixel-aligned latent (``lin_z``). At inference (no
gradients) a ``backend`` given at construction may evaluate the same function faster
(``pixelnerf.model.backends``); with gradients, or without a backend, the published graph
runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pixelnerf.errors import PipelineError
from pixelnerf.model.config import MLPConfig
from pixelnerf.model.views import reduce_views

# (mlp, latent, x, latent_terms) -> output: ResnetFC.forward's arguments and result
MLPBackend = Callable[
    [nn.Module, torch.Tensor | None, torch.Tensor, torch.Tensor | None], torch.Tensor]


def _kaiming_linear(d_in: int, d_out: int) -> nn.Linear:
    layer = nn.Linear(d_in, d_out)
    nn.init.kaiming_normal_(layer.weight, a=0, mode="fan_in")
    nn.init.zeros_(layer.bias)
    return layer


class ResnetBlockFC(nn.Module):
    """``x + fc_1(relu(fc_0(relu(x))))``; ``fc_1`` starts at zero: each block starts as identity."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.fc_0 = _kaiming_linear(size, size)
        self.fc_1 = nn.Linear(size, size)
        nn.init.zeros_(self.fc_1.weight)
        nn.init.zeros_(self.fc_1.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., size) -> (..., size)."""
        return x + self.fc_1(torch.relu(self.fc_0(torch.relu(x))))


class ResnetFC(nn.Module):
    """The published ResnetFC (ReLU activations).

    Keys: ``lin_in``, ``blocks.i.fc_{0,1}``, ``lin_z.i`` (``min(combine_layer, n_blocks)`` of
    them), ``lin_out``.
    """

    def __init__(
        self,
        d_in: int,
        d_latent: int,
        d_out: int = 4,
        n_blocks: int = 5,
        d_hidden: int = 128,
        combine_layer: int = 1000,
        combine_type: str = "average",
        backend: MLPBackend | None = None,
    ) -> None:
        super().__init__()
        if d_in <= 0:
            raise PipelineError("ResnetFC needs point inputs (use_xyz or a z coordinate)")
        self.d_in = d_in
        self.d_latent = d_latent
        self.n_blocks = n_blocks
        self.combine_layer = combine_layer
        self.combine_type = combine_type
        self.lin_in = _kaiming_linear(d_in, d_hidden)
        self.lin_out = _kaiming_linear(d_hidden, d_out)
        self.blocks = nn.ModuleList(ResnetBlockFC(d_hidden) for _ in range(n_blocks))
        n_lin_z = min(combine_layer, n_blocks) if d_latent > 0 else 0
        self.lin_z = nn.ModuleList(_kaiming_linear(d_latent, d_hidden) for _ in range(n_lin_z))
        self.backend = backend

    @classmethod
    def from_config(cls, cfg: MLPConfig | Mapping[str, Any], d_in: int, d_latent: int,
                    d_out: int = 4, backend: MLPBackend | None = None) -> ResnetFC:
        """Build from a published ``model.mlp_coarse`` / ``mlp_fine`` section (type ``resnet``).

        d_in: the point code's width; d_latent: the latent's (global part first, if any);
        backend: the inference evaluation (None: the published graph).
        """
        cfg = MLPConfig.from_mapping(cfg)
        if cfg.beta > 0 or cfg.use_spade:
            raise PipelineError("model.mlp_*.beta > 0 and use_spade are not supported")
        return cls(
            d_in=d_in,
            d_latent=d_latent,
            d_out=d_out,
            n_blocks=cfg.n_blocks,
            d_hidden=cfg.d_hidden,
            combine_layer=cfg.combine_layer,
            combine_type=cfg.combine_type,
            backend=backend,
        )

    @property
    def folded_width(self) -> int:
        """Channels of the map :meth:`latent_terms` makes (0: no ``lin_z``, nothing to fold)."""
        return len(self.lin_z) * self.lin_in.out_features

    def latent_terms(
        self, latent_map: torch.Tensor, global_latent: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Every ``lin_z`` layer applied to every cell of a latent map.

        latent_map: (N, C, H', W'); global_latent: (N, G) or None, with G + C = d_latent
        -> (N, n_lin_z * d_hidden, H', W'). Bilinear sampling is linear with weights summing
        to one, so sampling this map at a point equals applying the ``lin_z`` layers to the
        latent sampled there: a map of about a thousand cells replaces a matmul per queried
        point. A global latent is the same at every cell: its term is added to the whole map.
        """
        weight = torch.cat([layer.weight for layer in self.lin_z])
        bias = torch.cat([layer.bias for layer in self.lin_z])
        n_global = 0 if global_latent is None else global_latent.shape[-1]
        if n_global + latent_map.shape[1] != self.d_latent:
            raise PipelineError(
                f"latent of {n_global} + {latent_map.shape[1]} channels does not fit "
                f"lin_z of {self.d_latent}"
            )
        terms = F.conv2d(latent_map, weight[:, n_global:, None, None], bias)
        if global_latent is None:
            return terms
        return terms + (global_latent @ weight[:, :n_global].T)[:, :, None, None]

    def forward(
        self,
        latent: torch.Tensor | None,
        x: torch.Tensor,
        latent_terms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """latent: (SB, NS, B, d_latent) or None; x: (SB, NS, B, d_in) -> (SB, B, d_out).

        ``latent_terms`` (SB, NS, B, n_lin_z * d_hidden), sampled from :meth:`latent_terms`,
        replaces ``latent`` with the same result.
        """
        if self.backend is not None and not torch.is_grad_enabled():
            return self.backend(self, latent, x, latent_terms)
        if latent_terms is not None:
            terms = latent_terms.split(self.lin_in.out_features, dim=-1)
        else:
            terms = [layer(latent) for layer in self.lin_z] if latent is not None else []
        h = self.lin_in(x)
        reduced = False
        for index, block in enumerate(self.blocks):
            if index == self.combine_layer:
                h = reduce_views(h, self.combine_type)
                reduced = True
            if index < len(terms):
                h = h + terms[index]
            h = block(h)
        if not reduced:
            # The published code never reduces when combine_layer >= n_blocks, which is only
            # well defined for one source view; reducing here is identical there.
            h = reduce_views(h, self.combine_type)
        return self.lin_out(torch.relu(h))[:, 0]
