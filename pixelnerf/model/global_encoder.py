"""The published global image encoder (``use_global_encoder``): one latent vector per image.

A whole ImageNet ResNet (max-pool and all four stages), average-pooled to its 512 features,
then a linear layer to ``latent_size`` unless that is 512. The vector joins every point's
pixel-aligned latent, in front of it.
"""

from __future__ import annotations

import torch
from torch import nn

from pixelnerf.model.config import GlobalEncoderConfig
from pixelnerf.model.resnet import build_resnet

# Width of the pooled features of the ResNets the published encoder supports (18 and 34).
POOLED_FEATURES = 512


class GlobalEncoder(nn.Module):
    """Keys ``global_encoder.model.*`` (``fc`` emptied, ``avgpool`` kept) and, when
    ``latent_size != 512``, ``global_encoder.fc.*``, as published."""

    def __init__(
        self, backbone: str = "resnet34", pretrained: bool = True, latent_size: int = 128
    ) -> None:
        super().__init__()
        self.model = build_resnet(backbone, pretrained, key="model.global_encoder")
        self.model.fc = nn.Sequential()
        self.latent_size = latent_size
        self.fc = (
            nn.Linear(POOLED_FEATURES, latent_size) if latent_size != POOLED_FEATURES else None
        )

    @classmethod
    def from_config(cls, cfg: GlobalEncoderConfig) -> GlobalEncoder:
        """Build from the published ``model.global_encoder`` section."""
        return cls(backbone=cfg.backbone, pretrained=cfg.pretrained,
                   latent_size=cfg.latent_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (N, 3, H, W) in [-1, 1] -> latent (N, latent_size)."""
        net = self.model
        x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        x = torch.flatten(net.avgpool(x), 1)
        return x if self.fc is None else self.fc(x)
