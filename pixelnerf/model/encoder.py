"""The pixel-aligned image encoder: an ImageNet ResNet whose feature levels are stacked.

Feature map = concat(level 0 = relu(bn1(conv1(x))), layer1, layer2, ...), each level
resized to level 0's size. ``index`` samples it at pixel coordinates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelnerf.errors import PipelineError
from pixelnerf.model.config import EncoderConfig
from pixelnerf.model.resnet import build_resnet

# Channels of the stacked latent for num_layers = 1..5 (conv1, layer1, layer2, layer3, layer4).
LATENT_SIZES = (0, 64, 128, 256, 512, 1024)


def channels_last_table(feature_map: torch.Tensor) -> torch.Tensor:
    """(N, C, H', W') -> (N*H'*W', C): one row per cell, for :func:`bilinear_rows`."""
    return feature_map.permute(0, 2, 3, 1).reshape(-1, feature_map.shape[1]).contiguous()


def bilinear_rows(
    table: torch.Tensor, grid: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """``grid_sample(bilinear, border, align_corners=True)`` as a weighted sum of table rows.

    table: (N*H'*W', C) from :func:`channels_last_table`; grid: (N, P, 2) in [-1, 1]
    -> (N, P, C). The same arithmetic as ``grid_sample``, but channels-last through
    ``embedding_bag``: several times faster on CPU for wide maps, and no transpose after.
    Needs H', W' >= 2. Like ``grid_sample``, a NaN coordinate counts as the first cell and
    infinities are clamped to the border.
    """
    num_maps, num_points, _ = grid.shape
    x = torch.nan_to_num((grid[..., 0] + 1) / 2 * (width - 1), nan=0.0).clamp(0, width - 1)
    y = torch.nan_to_num((grid[..., 1] + 1) / 2 * (height - 1), nan=0.0).clamp(0, height - 1)
    x0, y0 = x.floor().clamp(max=width - 2), y.floor().clamp(max=height - 2)
    fx, fy = x - x0, y - y0
    offsets = torch.arange(num_maps, device=grid.device)[:, None] * (height * width)
    corner = offsets + (y0 * width + x0).long()
    index = torch.stack((corner, corner + 1, corner + width, corner + width + 1), dim=-1)
    weights = torch.stack(((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy), dim=-1)
    rows = F.embedding_bag(
        index.reshape(-1, 4), table, per_sample_weights=weights.reshape(-1, 4).to(table.dtype),
        mode="sum",
    )
    return rows.reshape(num_maps, num_points, -1)


class SpatialEncoder(nn.Module):
    """ResNet feature pyramid flattened to one map, indexed by image coordinates.

    The ResNet is kept whole as ``self.model`` (its ``fc`` and ``avgpool``
    emptied) so that state-dict keys are ``encoder.model.*`` exactly as published.
    """

    def __init__(
        self,
        backbone: str = "resnet34",
        pretrained: bool = True,
        num_layers: int = 4,
        index_interp: str = "bilinear",
        index_padding: str = "border",
        upsample_interp: str = "bilinear",
        feature_scale: float = 1.0,
        use_first_pool: bool = True,
    ) -> None:
        super().__init__()
        if not 1 <= num_layers <= 5:
            raise PipelineError(f"model.encoder.num_layers must be 1..5, not {num_layers}")
        self.model = build_resnet(backbone, pretrained)
        self.model.fc = nn.Sequential()
        self.model.avgpool = nn.Sequential()
        self.num_layers = num_layers
        self.latent_size = LATENT_SIZES[num_layers]
        self.index_interp = index_interp
        self.index_padding = index_padding
        self.upsample_interp = upsample_interp
        self.feature_scale = feature_scale
        self.use_first_pool = use_first_pool

    @classmethod
    def from_config(cls, cfg: EncoderConfig) -> SpatialEncoder:
        """Build from the published ``model.encoder`` section."""
        return cls(
            backbone=cfg.backbone,
            pretrained=cfg.pretrained,
            num_layers=cfg.num_layers,
            index_interp=cfg.index_interp,
            index_padding=cfg.index_padding,
            upsample_interp=cfg.upsample_interp,
            feature_scale=float(cfg.feature_scale),
            use_first_pool=cfg.use_first_pool,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (N, 3, H, W) in [-1, 1] -> latent (N, latent_size, H', W')."""
        x = images
        if self.feature_scale != 1.0:
            upscale = self.feature_scale > 1.0
            x = F.interpolate(
                x,
                scale_factor=self.feature_scale,
                mode="bilinear" if upscale else "area",
                align_corners=True if upscale else None,
                recompute_scale_factor=True,
            )
        net = self.model
        x = net.relu(net.bn1(net.conv1(x)))
        levels = [x]
        stages = [net.layer1, net.layer2, net.layer3, net.layer4][: self.num_layers - 1]
        for depth, stage in enumerate(stages):
            if depth == 0 and self.use_first_pool:
                x = net.maxpool(x)
            x = stage(x)
            levels.append(x)
        size = levels[0].shape[-2:]
        align = None if self.upsample_interp == "nearest" else True
        resized = [levels[0]] + [
            F.interpolate(level, size, mode=self.upsample_interp, align_corners=align)
            for level in levels[1:]
        ]
        return torch.cat(resized, dim=1)

    def to_grid(self, uv: torch.Tensor, map_size: tuple[int, int],
                image_size: tuple[int, int]) -> torch.Tensor:
        """Pixel coordinates (..., 2) in an image of ``image_size = (W, H)`` -> grid_sample
        coordinates of a map of ``map_size = (H', W')``: pixel 0 and pixel W land on the
        first and last cells (align_corners), as published."""
        height_l, width_l = map_size
        width, height = image_size
        scale = uv.new_tensor(
            [2.0 * width_l / ((width_l - 1) * width), 2.0 * height_l / ((height_l - 1) * height)]
        )
        return uv * scale - 1.0

    def index(
        self, latent: torch.Tensor, uv: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """Bilinear features at pixel coordinates.

        latent: (N, C, H', W'); uv: (N, P, 2) pixel coordinates (x, y) in an image of
        ``image_size = (W, H)`` -> (N, C, P).
        """
        grid = self.to_grid(uv, tuple(latent.shape[-2:]), image_size).unsqueeze(2)
        samples = F.grid_sample(
            latent,
            grid.to(latent.dtype),
            mode=self.index_interp,
            padding_mode=self.index_padding,
            align_corners=True,
        )
        return samples[..., 0]

    def rows_supported(self, map_size: tuple[int, int]) -> bool:
        """Whether :func:`bilinear_rows` reproduces this encoder's ``index`` on such a map."""
        return (
            self.index_interp == "bilinear"
            and self.index_padding == "border"
            and min(map_size) >= 2
        )
