"""The published plain MLP (``mlp_*.type: mlp``, IGR's ImplicitNet): linear layers with input skips.

Layers ``lin0 .. linK``; ReLU (or Softplus when ``beta > 0``) between them, none after the
last. The network's input ``[latent, point code]`` is concatenated again (both halves scaled by
1/sqrt(2)) before each layer in ``skip_in``; per-view rows, and the kept input, are reduced over
the source views at ``combine_layer``. Weights start from IGR's geometric (sphere SDF)
initialisation, as published.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pixelnerf.errors import PipelineError
from pixelnerf.model.config import MLPConfig
from pixelnerf.model.views import reduce_views

# Published constructor defaults that no config key reaches.
RADIUS_INIT = 0.3
OUTPUT_INIT_GAIN = 2.0
POSITION_INPUTS = 3
SDF_SCALE = 1.0


def layer_widths(
    d_in: int, dims: Sequence[int], skip_in: Sequence[int], d_out: int, dim_excludes_skip: bool
) -> list[tuple[int, int]]:
    """(in, out) of every linear layer. A layer feeding a skip layer leaves room for the input:
    its output is ``dims[i] - d_in`` wide, or ``dims[i]`` when ``dim_excludes_skip``."""
    widths = [d_in, *dims, d_out]
    if dim_excludes_skip:
        widths = [w + d_in if 0 < i < len(widths) - 1 and i in skip_in else w
                  for i, w in enumerate(widths)]
    return [
        (widths[i], widths[i + 1] - d_in if i + 1 in skip_in else widths[i + 1])
        for i in range(len(widths) - 1)
    ]


def geometric_init_(layer: nn.Linear, index: int, last: bool, d_in: int, skip_in: Sequence[int]
                    ) -> None:
    """IGR's geometric initialisation, negated (inside is positive) as published.

    Hidden layers: N(0, 2 / out) weights, zero bias. Output layer: row 0 near
    ``-sqrt(pi / in)`` with bias ``RADIUS_INIT`` (a sphere's SDF), other rows
    N(0, OUTPUT_INIT_GAIN^2). Layers that see the network input (the first and the skip
    layers) start blind to all but its first ``POSITION_INPUTS`` columns.
    """
    with torch.no_grad():
        if last:
            mean = -math.sqrt(math.pi) / math.sqrt(layer.in_features) * SDF_SCALE
            nn.init.normal_(layer.weight[0], mean=mean, std=1e-5)
            nn.init.constant_(layer.bias[0], RADIUS_INIT)
            if layer.out_features > 1:
                nn.init.normal_(layer.weight[1:], mean=0.0, std=OUTPUT_INIT_GAIN)
                nn.init.constant_(layer.bias[1:], 0.0)
        else:
            nn.init.constant_(layer.bias, 0.0)
            nn.init.normal_(layer.weight, 0.0, math.sqrt(2) / math.sqrt(layer.out_features))
        if d_in > POSITION_INPUTS and (index == 0 or index in skip_in):
            nn.init.constant_(layer.weight[:, POSITION_INPUTS - d_in:], 0.0)


class ImplicitMLP(nn.Module):
    """The published ImplicitNet with the same state-dict keys (``lin0.weight`` ...).

    ``d_in`` counts the whole input, latent and point code together.
    """

    def __init__(
        self,
        d_in: int,
        dims: Sequence[int],
        skip_in: Sequence[int] = (),
        d_out: int = 4,
        beta: float = 0.0,
        dim_excludes_skip: bool = False,
        combine_layer: int = 1000,
        combine_type: str = "average",
    ) -> None:
        super().__init__()
        widths = layer_widths(d_in, dims, skip_in, d_out, dim_excludes_skip)
        for index, (width_in, width_out) in enumerate(widths):
            if width_out <= 0:
                raise PipelineError(
                    f"model.mlp_*.dims: layer {index} would have {width_out} outputs, since "
                    f"the skip after it takes {d_in} of them; widen it or set dim_excludes_skip"
                )
            layer = nn.Linear(width_in, width_out)
            geometric_init_(layer, index, index == len(widths) - 1, d_in, skip_in)
            self.add_module(f"lin{index}", layer)
        self.num_linear = len(widths)
        self.skip_in = frozenset(skip_in)
        self.combine_layer = combine_layer
        self.combine_type = combine_type
        self.activation: nn.Module = nn.Softplus(beta=beta) if beta > 0 else nn.ReLU()

    @classmethod
    def from_config(cls, cfg: MLPConfig | Mapping[str, Any], d_in: int, d_latent: int,
                    d_out: int = 4) -> ImplicitMLP:
        """Build from a published ``model.mlp_*`` section of type ``mlp``.

        d_in: the point code's width; d_latent: the latent's (the MLP reads both).
        """
        cfg = MLPConfig.from_mapping(cfg)
        dims = list(cfg.dims)
        skip_in = list(cfg.skip_in)
        combine_layer = cfg.combine_layer
        combines = combine_layer <= len(dims)
        for index in skip_in:
            # The published forward concatenates only before combine_layer; a skip at or after
            # it, or past the output layer, meets a layer of the wrong width.
            if not 1 <= index <= len(dims) or (combines and index >= combine_layer):
                raise PipelineError(
                    f"model.mlp_*.skip_in {index} must name a layer 1..{len(dims)} before "
                    f"combine_layer {combine_layer}"
                )
        return cls(
            d_in=d_in + d_latent,
            dims=dims,
            skip_in=skip_in,
            d_out=d_out,
            beta=float(cfg.beta),
            dim_excludes_skip=cfg.dim_excludes_skip,
            combine_layer=combine_layer,
            combine_type=cfg.combine_type,
        )

    @property
    def folded_width(self) -> int:
        """Channels a folded latent map would have: none, the latent enters only layer 0
        together with the point code."""
        return 0

    def layer(self, index: int) -> nn.Linear:
        """The ``index``-th linear layer (``lin<index>``)."""
        return getattr(self, f"lin{index}")

    def forward(
        self,
        latent: torch.Tensor | None,
        x: torch.Tensor,
        latent_terms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """latent: (SB, NS, B, d_latent) or None; x: (SB, NS, B, d_in) -> (SB, B, d_out)."""
        if latent_terms is not None:
            raise PipelineError("the plain MLP (type mlp) has no latent terms to fold")
        inputs = x if latent is None else torch.cat((latent, x), dim=-1)
        h = inputs
        reduced = False
        for index in range(self.num_linear):
            if index == self.combine_layer:
                h = reduce_views(h, self.combine_type)
                inputs = reduce_views(inputs, self.combine_type)
                reduced = True
            if index in self.skip_in and not reduced:
                h = torch.cat((h, inputs), dim=-1) / math.sqrt(2)
            h = self.layer(index)(h)
            if index < self.num_linear - 1:
                h = self.activation(h)
        if not reduced:
            # As for ResnetFC: published only for one source view, where this is the identity.
            h = reduce_views(h, self.combine_type)
        return h[:, 0]
