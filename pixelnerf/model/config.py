"""The ``model`` section as typed, frozen settings: keys exactly as in the published ``.conf``
files, each with its published default and a one-line description.

ModelConfig.from_mapping -> EncoderConfig, GlobalEncoderConfig, CodeConfig, MLPConfig (each
``from_mapping``). Keys, types and ranges are checked by the experiment schema; here only
what it cannot say (:func:`pixelnerf.config.build` refuses unknown keys too, for mappings
that never met the schema).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from pixelnerf.config import build, setting
from pixelnerf.errors import PipelineError

# ``mlp_fine: {type: empty}``: no fine MLP (the coarse one serves), as published
NO_MLP = "empty"


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """``model.encoder``: the pixel-aligned ResNet feature encoder."""

    backbone: str = setting("resnet34", "ResNet of the encoder (resnet18, 34, 50, 101 or 152)")
    pretrained: bool = setting(True, "start from the ImageNet weights")
    num_layers: int = setting(4, "ResNet stages whose features make the latent (1-5)")
    use_first_pool: bool = setting(True, "max-pool after conv1, as the ResNet does")
    index_interp: str = setting("bilinear", "interpolation when sampling the latent")
    index_padding: str = setting("border", "grid_sample padding when sampling the latent")
    upsample_interp: str = setting("bilinear", "interpolation upsampling each stage's features")
    feature_scale: float = setting(1.0, "images are resized by this factor before encoding")
    norm_type: str = setting("batch", "normalisation layers of the encoder (batch only)")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> EncoderConfig:
        return build(cls, data, "model.encoder")


@dataclasses.dataclass(frozen=True)
class GlobalEncoderConfig:
    """``model.global_encoder``: one latent vector per image."""

    backbone: str = setting("resnet34", "ResNet of the global encoder (resnet18 or 34)")
    pretrained: bool = setting(True, "start from the ImageNet weights")
    latent_size: int = setting(128, "width of the global latent")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> GlobalEncoderConfig:
        return build(cls, data, "model.global_encoder")


@dataclasses.dataclass(frozen=True)
class CodeConfig:
    """``model.code``: the positional encoding of the point (and view direction)."""

    num_freqs: int = setting(6, "frequencies of the sine and cosine code")
    freq_factor: float = setting(math.pi, "the lowest frequency")
    include_input: bool = setting(True, "the raw input is part of the code")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> CodeConfig:
        return build(cls, data, "model.code")


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """``model.mlp_coarse`` / ``model.mlp_fine``: the radiance MLP."""

    type: str = setting("mlp", "resnet (ResnetFC) or mlp (the plain MLP, the published default)")
    n_blocks: int = setting(5, "type resnet: residual blocks")
    d_hidden: int = setting(128, "type resnet: width of the hidden layers")
    combine_layer: int = setting(1000, "the block (layer) at which source views are combined")
    combine_type: str = setting("average", "how source views are combined: average or max")
    beta: float = setting(0.0, "Softplus beta of the plain MLP; 0 = ReLU (resnet: 0 only)")
    use_spade: bool = setting(False, "published option, not supported: false only")
    dims: tuple[int, ...] = setting((), "type mlp: widths of the hidden layers")
    skip_in: tuple[int, ...] = setting((), "type mlp: layers that see the network input again")
    dim_excludes_skip: bool = setting(False, "type mlp: dims count without the skip's inputs")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | MLPConfig | None) -> MLPConfig:
        """The typed section of a ``model.mlp_*`` mapping (an MLPConfig: itself)."""
        if isinstance(data, MLPConfig):
            return data
        return build(cls, data, "model.mlp_*")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The ``model`` section: the published PixelNeRFNet's keys and defaults."""

    type: str = setting("pixelnerf", "the network (pixelnerf only)")
    use_encoder: bool = setting(True, "condition on pixel-aligned features (true only)")
    use_global_encoder: bool = setting(False, "also condition on a global latent per image")
    use_xyz: bool = setting(False, "the MLP sees the point's xyz; else only its depth")
    canon_xyz: bool = setting(False, "published key without effect here (kept for its configs)")
    normalize_z: bool = setting(True, "points rotated into the camera frame but not translated")
    stop_encoder_grad: bool = setting(False, "no gradient into the pixel-aligned latent")
    use_code: bool = setting(False, "positional code of the point")
    use_viewdirs: bool = setting(False, "the MLP sees the view direction")
    use_code_viewdirs: bool = setting(True, "the view direction is positionally coded too")
    code: CodeConfig = setting(CodeConfig(), "the positional code (model.code)")
    encoder: EncoderConfig = setting(EncoderConfig(), "the image encoder (model.encoder)")
    global_encoder: GlobalEncoderConfig = setting(
        GlobalEncoderConfig(), "the global encoder (model.global_encoder), with use_global_encoder")
    mlp_coarse: MLPConfig = setting(MLPConfig(), "the coarse MLP (model.mlp_coarse)")
    mlp_fine: MLPConfig | None = setting(
        None, "the fine MLP (model.mlp_fine); absent or type empty: the coarse one serves")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | ModelConfig | None) -> ModelConfig:
        """The typed section of a ``model`` mapping (a ModelConfig: itself)."""
        if isinstance(data, ModelConfig):
            return data
        data = dict(data or {})
        fine = data.get("mlp_fine")
        if isinstance(fine, Mapping) and fine.get("type") == NO_MLP:
            del data["mlp_fine"]
        return build(cls, data, "model")

    def check(self, origin: str) -> None:
        if not self.use_encoder:
            raise PipelineError(f"{origin}.use_encoder = false is not supported")

    def mlps(self) -> tuple[MLPConfig, ...]:
        """The configured MLPs: the coarse one, then the fine one where there is one."""
        return (self.mlp_coarse,) if self.mlp_fine is None else (self.mlp_coarse, self.mlp_fine)
