"""Volume rendering of a PixelNeRF: coarse pass, fine pass, alpha compositing.

Renderer.forward -> stratified_depths -> composite (coarse) -> importance_depths +
depths_around -> composite (fine). composite evaluates the network in chunks of points so
any number of rays fits a memory budget.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from pixelnerf.model.plan import DEFAULT_PLAN, InferencePlan
from pixelnerf.render.compiling import padded_points
from pixelnerf.render.config import RendererConfig
from pixelnerf.render.memory import halving_on_oom, points_per_call
from pixelnerf.render.precision import network_precision
from pixelnerf.render.sampling import depths_around, importance_depths, stratified_depths

TRANSMITTANCE_EPS = 1e-10  # the published code adds it to 1 - alpha


def alpha_composite(
    sigma: torch.Tensor,
    rgb: torch.Tensor,
    z_samp: torch.Tensor,
    far: torch.Tensor,
    white_bkgd: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The published compositing formula.

    sigma: (R, K); rgb: (R, K, 3); z_samp: (R, K); far: (R, 1)
    -> weights (R, K), rgb (R, 3), depth (R,).
    """
    deltas = torch.cat((z_samp[:, 1:] - z_samp[:, :-1], far - z_samp[:, -1:]), dim=-1)
    alphas = 1.0 - torch.exp(-deltas * torch.relu(sigma))
    shifted = torch.cat((torch.ones_like(alphas[:, :1]), 1.0 - alphas + TRANSMITTANCE_EPS), dim=-1)
    weights = alphas * torch.cumprod(shifted, dim=-1)[:, :-1]
    rgb_out = torch.sum(weights.unsqueeze(-1) * rgb, dim=-2)
    depth = torch.sum(weights * z_samp, dim=-1)
    if white_bkgd:
        rgb_out = rgb_out + 1.0 - weights.sum(dim=-1, keepdim=True)
    return weights, rgb_out, depth


class Renderer(nn.Module):
    """NeRF renderer for a batch of objects; rays (SB, B, 8) as [origin, dir, near, far].

    ``config``: the ``renderer`` section (sampling and compositing); ``plan``: how the
    network is evaluated at inference (folding, precision, points a call), resolved once per
    job (:func:`pixelnerf.render.plan.resolve_plan`). Training (a model in training mode)
    uses neither the plan's folding nor its precision: it keeps the published graph under
    its own ``train.bf16`` / ``train.tf32``.
    """

    def __init__(self, config: RendererConfig, plan: InferencePlan = DEFAULT_PLAN) -> None:
        super().__init__()
        self.config = config
        self.plan = plan
        # Points a call that fitted after running out of memory (None: no back-off yet):
        # later calls start from it instead of failing again.
        self._fitted_points: int | None = None

    @classmethod
    def from_config(cls, cfg: RendererConfig | dict[str, Any],
                    plan: InferencePlan = DEFAULT_PLAN) -> Renderer:
        """cfg: the ``renderer`` section; a key left out takes the published default.
        ``plan``: resolve it from the same section (:func:`pixelnerf.render.resolve_plan`);
        the default evaluates fp32, not folded, at a CPU's points a call."""
        return cls(RendererConfig.from_mapping(cfg), plan)

    def points_per_call(self, model: nn.Module, padded: bool = False) -> int:
        """Network points a call, for the model's number of source views (see
        :func:`pixelnerf.render.memory.points_per_call`), at most what fitted after an
        out-of-memory back-off."""
        sources = getattr(model, "sources", None)
        views = sources.num_views if sources is not None else 1
        points = points_per_call(self.plan, views, padded)
        return points if self._fitted_points is None else min(points, self._fitted_points)

    def evaluate(
        self, model: nn.Module, points: torch.Tensor, viewdirs: torch.Tensor, coarse: bool
    ) -> torch.Tensor:
        """Network outputs in chunks: points, viewdirs (SB, P, 3) -> (SB, P, 4)."""
        inference = not model.training
        precision = self.plan.precision if inference else None
        padded = inference and self.plan.pads_calls
        per_object = max(1, -(-self.points_per_call(model, padded) // points.shape[0]))

        def chunks(per: int) -> list[torch.Tensor]:
            return self._evaluate_chunks(model, points, viewdirs, coarse, per, precision,
                                         padded)

        if not inference:  # training keeps every chunk's activations: smaller ones won't fit
            return torch.cat(chunks(per_object), dim=1)
        outputs, used = halving_on_oom(chunks, per_object)
        if used < per_object:
            self._fitted_points = used * points.shape[0]
        return torch.cat(outputs, dim=1)

    @staticmethod
    def _evaluate_chunks(model: nn.Module, points: torch.Tensor, viewdirs: torch.Tensor,
                         coarse: bool, per_object: int, precision: str | None,
                         padded: bool = False) -> list[torch.Tensor]:
        """The network on consecutive chunks of ``per_object`` points: [(SB, p, 4) float32].
        ``precision`` None leaves the arithmetic settings as the caller has them. ``padded``:
        every call takes ``per_object`` points, the last chunk padded (and the padding's
        outputs dropped), so that a network compiled for one shape never sees another."""
        device = points.device
        size = per_object if padded else 0
        with nullcontext() if precision is None else network_precision(precision, device):
            return [
                model(padded_points(xyz, size), coarse=coarse,
                      viewdirs=padded_points(dirs, size))[:, : xyz.shape[1]].float()
                for xyz, dirs in zip(
                    torch.split(points, per_object, dim=1),
                    torch.split(viewdirs, per_object, dim=1),
                    strict=True,
                )
            ]

    def composite(
        self, model: nn.Module, rays: torch.Tensor, z_samp: torch.Tensor, coarse: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Render rays (SB, B, 8) at depths z_samp (SB, B, K)
        -> weights (SB, B, K), rgb (SB, B, 3), depth (SB, B)."""
        num_objects, num_rays, num_samples = z_samp.shape
        points = rays[..., None, :3] + z_samp.unsqueeze(-1) * rays[..., None, 3:6]  # (SB,B,K,3)
        viewdirs = rays[..., None, 3:6].expand_as(points)
        out = self.evaluate(
            model,
            points.reshape(num_objects, -1, 3),
            viewdirs.reshape(num_objects, -1, 3),
            coarse,
        ).reshape(num_objects * num_rays, num_samples, -1)
        sigma = out[..., 3]
        if self.training and self.config.noise_std > 0.0:
            sigma = sigma + torch.randn_like(sigma) * self.config.noise_std
        weights, rgb, depth = alpha_composite(
            sigma,
            out[..., :3],
            z_samp.reshape(-1, num_samples),
            rays.reshape(-1, 8)[:, 7:8],
            self.config.white_bkgd,
        )
        return (
            weights.reshape(num_objects, num_rays, num_samples),
            rgb.reshape(num_objects, num_rays, 3),
            depth.reshape(num_objects, num_rays),
        )

    def forward(
        self, model: nn.Module, rays: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, dict[str, torch.Tensor]]:
        """rays (SB, B, 8) -> {"coarse": {"rgb" (SB,B,3), "depth" (SB,B), "weights" (SB,B,Kc)},
        "fine": {... weights (SB,B,Kc+Kf)}} (no "fine" when n_fine = 0)."""
        cfg = self.config
        if self.plan.fold_latent and not model.training and hasattr(model, "fold_latent_terms"):
            model.fold_latent_terms()  # once per encoding: later batches find it made
        num_objects, num_rays, _ = rays.shape
        flat = rays.reshape(-1, 8)
        z_coarse = stratified_depths(flat, cfg.n_coarse, cfg.lindisp, generator)
        weights, rgb, depth = self.composite(
            model, rays, z_coarse.reshape(num_objects, num_rays, -1), coarse=True
        )
        result = {"coarse": {"rgb": rgb, "depth": depth, "weights": weights}}
        if cfg.n_fine <= 0:
            return result
        depths = [z_coarse]
        if cfg.n_fine > cfg.n_fine_depth:
            depths.append(
                importance_depths(
                    flat,
                    weights.reshape(-1, cfg.n_coarse),
                    cfg.n_fine - cfg.n_fine_depth,
                    cfg.lindisp,
                    generator,
                )
            )
        if cfg.n_fine_depth > 0:
            # Not detached, as published: the fine loss reaches the coarse net through depth.
            depths.append(
                depths_around(flat, depth.reshape(-1), cfg.n_fine_depth, cfg.depth_std, generator)
            )
        z_fine, _ = torch.sort(torch.cat(depths, dim=-1), dim=-1)
        weights_f, rgb_f, depth_f = self.composite(
            model, rays, z_fine.reshape(num_objects, num_rays, -1), coarse=False
        )
        result["fine"] = {"rgb": rgb_f, "depth": depth_f, "weights": weights_f}
        return result
