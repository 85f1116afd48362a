"""The ImageNet ResNets of the encoders, built without importing torchvision.

The modules, their attribute names (hence the state-dict keys ``conv1``, ``layer1.0.bn2``,
``layer2.0.downsample.0``, ...), the order in which their parameters are created and the
initialisation that follows are torchvision's, so that one seed gives the same weights and a
torchvision state dict (ImageNet weights, published checkpoints) loads unchanged. Importing
torchvision costs about 1.6 s of CPU per process (it imports torch's compiler stack), which
every training, render and bench process would otherwise pay; it is imported only to fetch
ImageNet weights (:func:`build_resnet` with ``pretrained``).
"""

from __future__ import annotations

import torch
from torch import nn

from pixelnerf.errors import PipelineError

# Blocks per stage; the first two use the two-convolution block, the others the bottleneck.
STAGE_BLOCKS = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
    "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3),
    "resnet152": (3, 8, 36, 3),
}
BOTTLENECK = ("resnet50", "resnet101", "resnet152")
STAGE_WIDTHS = (64, 128, 256, 512)
IMAGENET_CLASSES = 1000


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, width, H / stride, W / stride)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 down, 3x3 (carrying the stride), 1x1 up by 4, and a shortcut (ResNet-50 and up)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, width * self.expansion)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, 4 * width, H / stride, W / stride)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    """The stem (``conv1``, ``bn1``, ``relu``, ``maxpool``), four stages ``layer1..4``,
    ``avgpool`` and the ImageNet classifier ``fc``. The encoders call the parts they use."""

    def __init__(self, block: type[BasicBlock | Bottleneck], blocks: tuple[int, ...]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = 64
        for index, (width, count) in enumerate(zip(STAGE_WIDTHS, blocks, strict=True)):
            stage = make_stage(block, in_channels, width, count, stride=1 if index == 0 else 2)
            setattr(self, f"layer{index + 1}", stage)
            in_channels = width * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_channels, IMAGENET_CLASSES)
        # After every module exists, in module order: what one seed must reproduce.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> ImageNet logits (N, 1000) (or pooled features once ``fc`` is
        emptied)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def make_stage(block: type[BasicBlock | Bottleneck], in_channels: int, width: int,
               count: int, stride: int) -> nn.Sequential:
    """``count`` blocks; the first changes resolution and width, through a projected shortcut
    created before the block itself (the creation order fixes what a seed draws)."""
    out_channels = width * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride),
                                   nn.BatchNorm2d(out_channels))
    layers = [block(in_channels, width, stride, downsample)]
    layers += [block(out_channels, width) for _ in range(1, count)]
    return nn.Sequential(*layers)


def build_resnet(backbone: str, pretrained: bool, key: str = "model.encoder") -> ResNet:
    """``backbone`` (resnet18, 34, 50, 101 or 152), with torchvision's ImageNet weights when
    ``pretrained`` (from torch's cache, or downloaded there once).

    ``key``: the config section the settings come from, for error lines.
    """
    if backbone not in STAGE_BLOCKS:
        raise PipelineError(f"{key}.backbone {backbone!r} is not one of the ResNets "
                            f"{', '.join(STAGE_BLOCKS)}")
    block = Bottleneck if backbone in BOTTLENECK else BasicBlock
    model = ResNet(block, STAGE_BLOCKS[backbone])
    if pretrained:
        model.load_state_dict(imagenet_weights(backbone, key))
    return model


def imagenet_weights(backbone: str, key: str) -> dict[str, torch.Tensor]:
    """torchvision's default ImageNet state dict of ``backbone``, which torchvision downloads
    into ``<torch hub dir>/checkpoints`` once and checks against its hash."""
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(backbone).DEFAULT
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise PipelineError(
            f"could not load the ImageNet weights of {backbone} (torchvision downloads them into "
            f"{torch.hub.get_dir()}/checkpoints): {exc}; set {key}.pretrained: false "
            "to start from random weights"
        ) from exc
