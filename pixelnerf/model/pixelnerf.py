"""PixelNeRF: radiance at world points, conditioned on features of posed source images.

encode (encoder -> latent, global encoder -> global latent, world->camera transforms) ;
forward -> project -> index latent -> point code -> MLP (ResnetFC or the plain MLP).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pixelnerf.errors import PipelineError
from pixelnerf.model.backends import mlp_backend
from pixelnerf.model.config import ModelConfig
from pixelnerf.model.encoder import SpatialEncoder, bilinear_rows, channels_last_table
from pixelnerf.model.encoding import PositionalEncoding
from pixelnerf.model.global_encoder import GlobalEncoder
from pixelnerf.model.plan import DEFAULT_PLAN, InferencePlan
from pixelnerf.model.radiance_mlp import RadianceMLP, make_mlp

RGB_SIGMA = 4  # network outputs per point: r, g, b, sigma


@dataclass
class SourceViews:
    """What ``encode`` computes once per batch of objects (not part of the state dict).

    latent: (SB*NS, C, H', W'); rot: (SB, NS, 3, 3) world->camera; trans: (SB, NS, 3);
    focal: (SB, 2) as (fx, fy); center: (SB, 2) as (cx, cy); image_size: (W, H).
    global_latent: (SB*NS, G) from the global encoder, or None without one.
    latent_terms: the MLPs' ``lin_z`` layers folded into the latent map, per MLP name
    (``"coarse"``, ``"fine"``): (SB*NS, n_lin_z * d_hidden, H', W'); empty until
    :meth:`PixelNeRF.fold_latent_terms`. tables: the same maps channels-last
    ((SB*NS*H'*W', C), see ``encoder.bilinear_rows``), made on first use.
    """

    latent: torch.Tensor
    rot: torch.Tensor
    trans: torch.Tensor
    focal: torch.Tensor
    center: torch.Tensor
    image_size: tuple[int, int]
    global_latent: torch.Tensor | None = None
    latent_terms: dict[str, torch.Tensor] = field(default_factory=dict)
    tables: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def num_objects(self) -> int:
        return self.rot.shape[0]

    @property
    def num_views(self) -> int:
        return self.rot.shape[1]


def per_object_pairs(
    value: torch.Tensor | float | None,
    num_objects: int,
    default: tuple[float, float],
    name: str,
    device: torch.device,
) -> torch.Tensor:
    """Broadcast focal or principal point to (SB, 2).

    Accepts None (-> ``default``), a scalar (same x and y), ``(SB,)`` (per object, x = y),
    ``(2,)`` for a principal point (x, y for all objects) or ``(SB, 2)``.
    """
    if value is None:
        return torch.tensor(default, dtype=torch.float32, device=device).expand(num_objects, 2)
    value = torch.as_tensor(value, dtype=torch.float32, device=device)
    if value.dim() == 0:
        return value.expand(num_objects, 2)
    if value.dim() == 1 and name == "c" and value.shape[0] == 2:
        return value.expand(num_objects, 2)
    if value.dim() == 1 and value.shape[0] in (1, num_objects):
        return value.unsqueeze(-1).expand(num_objects, 2)
    if value.dim() == 2 and value.shape[-1] == 2 and value.shape[0] in (1, num_objects):
        return value.expand(num_objects, 2)
    raise PipelineError(f"{name} of shape {tuple(value.shape)} does not fit {num_objects} objects")


class PixelNeRF(nn.Module):
    """The published PixelNeRFNet with the same state-dict keys: ``encoder.model.*``,
    ``code._freqs``, ``code._phases``, ``global_encoder.*`` (with ``use_global_encoder``),
    ``mlp_coarse.*``, ``mlp_fine.*``.
    """

    def __init__(self, cfg: ModelConfig | Mapping[str, Any],
                 pretrained_encoder: bool | None = None,
                 plan: InferencePlan = DEFAULT_PLAN) -> None:
        super().__init__()
        cfg = ModelConfig.from_mapping(cfg)
        self.use_xyz = cfg.use_xyz
        self.normalize_z = cfg.normalize_z
        self.use_code = cfg.use_code
        self.use_viewdirs = cfg.use_viewdirs
        self.use_code_viewdirs = cfg.use_code_viewdirs
        self.stop_encoder_grad = cfg.stop_encoder_grad
        self.plan = plan

        encoder_cfg, global_cfg = cfg.encoder, cfg.global_encoder
        if pretrained_encoder is not None:
            encoder_cfg = dataclasses.replace(encoder_cfg, pretrained=pretrained_encoder)
            global_cfg = dataclasses.replace(global_cfg, pretrained=pretrained_encoder)
        self.encoder = SpatialEncoder.from_config(encoder_cfg)
        d_in = 3 if self.use_xyz else 1
        if self.use_viewdirs and self.use_code_viewdirs:
            d_in += 3
        if self.use_code:
            self.code = PositionalEncoding.from_config(cfg.code, d_in=d_in)
            d_in = self.code.d_out
        if self.use_viewdirs and not self.use_code_viewdirs:
            d_in += 3
        d_latent = self.encoder.latent_size
        self.global_encoder: GlobalEncoder | None = None
        if cfg.use_global_encoder:
            self.global_encoder = GlobalEncoder.from_config(global_cfg)
            d_latent += self.global_encoder.latent_size
        backend = mlp_backend(plan.kernel)
        self.mlp_coarse = make_mlp(cfg.mlp_coarse, d_in, d_latent, RGB_SIGMA, backend)
        self.mlp_fine = (None if cfg.mlp_fine is None
                         else make_mlp(cfg.mlp_fine, d_in, d_latent, RGB_SIGMA, backend))
        if plan.compile_options is not None:
            # In place, so that the state dict keeps its keys; traced at the first call.
            for mlp in (self.mlp_coarse, self.mlp_fine):
                if mlp is not None:
                    mlp.compile(**plan.compile_options)
        self.sources: SourceViews | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | ModelConfig,
                    pretrained_encoder: bool | None = None,
                    plan: InferencePlan = DEFAULT_PLAN) -> PixelNeRF:
        """cfg: the ``model`` section (a mapping with the published ``.conf`` keys, or typed).

        ``pretrained_encoder=False`` skips the ImageNet weights whatever the config says
        (for a model about to load a checkpoint, which overwrites them anyway). ``plan``:
        how the MLPs are evaluated at inference (kernel and compilation).
        """
        return cls(ModelConfig.from_mapping(cfg), pretrained_encoder, plan)

    def encode(
        self,
        images: torch.Tensor,
        poses: torch.Tensor,
        focal: torch.Tensor | float,
        c: torch.Tensor | None = None,
    ) -> SourceViews:
        """Encode the source views of a batch of objects.

        images: (SB, NS, 3, H, W) in [-1, 1]; poses: (SB, NS, 4, 4) camera->world;
        focal: scalar, (SB,) or (SB, 2); c: None (image centre), (2,) or (SB, 2).
        ``stop_encoder_grad`` detaches the pixel-aligned latent only, as published.
        """
        if images.dim() != 5 or poses.shape[:2] != images.shape[:2]:
            raise PipelineError(
                f"encode needs images (SB, NS, 3, H, W) and poses (SB, NS, 4, 4), got "
                f"{tuple(images.shape)} and {tuple(poses.shape)}"
            )
        num_objects, num_views, _, height, width = images.shape
        flat_images = images.reshape(num_objects * num_views, *images.shape[2:])
        latent = self.encoder(flat_images)
        if self.stop_encoder_grad:
            latent = latent.detach()
        global_latent = None if self.global_encoder is None else self.global_encoder(flat_images)
        rot = poses[..., :3, :3].transpose(-1, -2)  # world->camera rotation R^T
        trans = -(rot @ poses[..., :3, 3:])[..., 0]  # -R^T t
        device = images.device
        self.sources = SourceViews(
            latent=latent,
            rot=rot,
            trans=trans,
            focal=per_object_pairs(focal, num_objects, (0.0, 0.0), "focal", device),
            center=per_object_pairs(c, num_objects, (width * 0.5, height * 0.5), "c", device),
            image_size=(width, height),
            global_latent=global_latent,
        )
        return self.sources

    def point_inputs(
        self, xyz: torch.Tensor, viewdirs: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per source view: the MLP's point code and the pixel coordinates of each point.

        xyz: (SB, B, 3) world points; viewdirs: (SB, B, 3) or None ->
        code (SB, NS, B, d_in), uv (SB, NS, B, 2).
        """
        src = self.sources
        xyz_rot = torch.einsum("snij,sbj->snbi", src.rot, xyz)  # (SB, NS, B, 3)
        xyz_cam = xyz_rot + src.trans[:, :, None, :]
        point = xyz_rot if self.normalize_z else xyz_cam
        if not self.use_xyz:
            point = -point[..., 2:]
        parts = [point]
        if self.use_viewdirs:
            if viewdirs is None:
                raise PipelineError("this model uses view directions: pass viewdirs")
            parts.append(torch.einsum("snij,sbj->snbi", src.rot, viewdirs))
        if self.use_code and self.use_code_viewdirs:
            code = self._encode(torch.cat(parts, dim=-1))
        elif self.use_code:
            code = torch.cat([self._encode(parts[0])] + parts[1:], dim=-1)
        else:
            code = torch.cat(parts, dim=-1)
        focal_xy = src.focal * src.focal.new_tensor([1.0, -1.0])  # image y points down
        uv = -xyz_cam[..., :2] / xyz_cam[..., 2:] * focal_xy[:, None, None, :]
        uv = uv + src.center[:, None, None, :]
        return code, uv

    def _encode(self, values: torch.Tensor) -> torch.Tensor:
        """Positional code of (..., d) -> (..., d_out)."""
        return self.code(values.reshape(-1, values.shape[-1])).reshape(*values.shape[:-1], -1)

    def mlp(self, coarse: bool) -> tuple[str, RadianceMLP]:
        """The MLP a query uses (the coarse one also serves fine queries when there is no fine)."""
        if coarse or self.mlp_fine is None:
            return "coarse", self.mlp_coarse
        return "fine", self.mlp_fine

    def folded_latent_width(self) -> int:
        """Channels of the widest map :meth:`fold_latent_terms` makes (0: nothing to fold)."""
        return max(m.folded_width for m in (self.mlp_coarse, self.mlp_fine) if m is not None)

    def fold_latent_terms(self) -> None:
        """Precompute, for the encoded views, the ``lin_z`` layers on the whole latent map.

        Queries then sample that map instead of multiplying each point's latent: the same
        result (to float rounding) for about a quarter fewer FLOPs a point. Made once per
        encoding (later calls find it made). Differentiable: training folds once per step
        (``train.fold_latent``); inference where the plan says so (the renderer).
        """
        src = self.sources
        if src is None:
            raise PipelineError("call model.encode(...) before fold_latent_terms()")
        for coarse in (True, False):
            name, mlp = self.mlp(coarse)
            if name not in src.latent_terms and mlp.folded_width > 0:
                src.latent_terms[name] = mlp.latent_terms(src.latent, src.global_latent)

    def sample_features(
        self, map_name: str, feature_map: torch.Tensor, uv: torch.Tensor
    ) -> torch.Tensor:
        """Features of ``feature_map`` (SB*NS, C, H', W') at pixels uv (SB, NS, B, 2)
        -> (SB, NS, B, C).

        Channels-last rows where they reproduce ``grid_sample``: the same values and the
        same gradients (to float rounding), several times faster on CPU, forward and
        backward (CPU training spent a fifth of its step in ``grid_sample``'s backward).
        Training on a GPU keeps ``grid_sample``: the rows' backward is unmeasured there.
        """
        src = self.sources
        num_objects, num_views, num_points, _ = uv.shape
        flat_uv = uv.reshape(num_objects * num_views, num_points, 2)
        map_size = tuple(feature_map.shape[-2:])
        gpu_training = torch.is_grad_enabled() and feature_map.device.type != "cpu"
        if gpu_training or not self.encoder.rows_supported(map_size):
            sampled = self.encoder.index(feature_map, flat_uv, src.image_size)  # (N, C, B)
            return sampled.reshape(num_objects, num_views, -1, num_points).transpose(-1, -2)
        if map_name not in src.tables:
            src.tables[map_name] = channels_last_table(feature_map)
        grid = self.encoder.to_grid(flat_uv, map_size, src.image_size)
        rows = bilinear_rows(src.tables[map_name], grid, *map_size)
        return rows.reshape(num_objects, num_views, num_points, -1)

    def with_global_latent(self, sampled: torch.Tensor) -> torch.Tensor:
        """(SB, NS, B, C) pixel-aligned features -> (SB, NS, B, G + C): each view's global
        latent in front, as published (unchanged without a global encoder)."""
        global_latent = self.sources.global_latent
        if global_latent is None:
            return sampled
        num_objects, num_views, num_points, _ = sampled.shape
        per_view = global_latent.reshape(num_objects, num_views, 1, -1)
        return torch.cat((per_view.expand(-1, -1, num_points, -1), sampled), dim=-1)

    def forward(
        self, xyz: torch.Tensor, coarse: bool = True, viewdirs: torch.Tensor | None = None
    ) -> torch.Tensor:
        """xyz: (SB, B, 3), viewdirs: (SB, B, 3) -> (SB, B, 4): rgb in [0, 1], sigma >= 0."""
        if self.sources is None:
            raise PipelineError("call model.encode(...) before querying points")
        src = self.sources
        num_objects, num_points, _ = xyz.shape
        code, uv = self.point_inputs(xyz, viewdirs)
        name, mlp = self.mlp(coarse)
        folded = src.latent_terms.get(name)
        map_name, feature_map = ("latent", src.latent) if folded is None else (name, folded)
        sampled = self.sample_features(map_name, feature_map, uv)  # (SB, NS, B, C)
        if folded is not None:
            out = mlp(None, code, latent_terms=sampled)
        else:
            out = mlp(self.with_global_latent(sampled), code)
        return torch.cat((torch.sigmoid(out[..., :3]), torch.relu(out[..., 3:])), dim=-1)
