"""Volume rendering of a PixelNeRF: coarse pass, fine pass, alpha compositing.

Renderer.forward -> stratified_depths -> composite (coarse) -> importance_depths +
depths_around -> composite (fine). composite evaluates the network in chunks of points so
any number of rays fits a memory budget.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass, replace

import torch
from torch import nn

from pixelnerf.errors import PipelineError
from pixelnerf.render.compiling import compile_options, padded_points, pads_calls
from pixelnerf.render.memory import halving_on_oom, memory_capped
from pixelnerf.render.mlp_kernel import check_mlp_kernel, resolve_mlp_kernel
from pixelnerf.render.precision import check_precision, network_precision, resolve_precision
from pixelnerf.render.sampling import depths_around, importance_depths, stratified_depths

# Bytes of activations one point costs per source view in one network call (fp32 inference,
# 512-wide ResnetFC: latent, hidden states and temporaries), used to size chunks on CUDA.
BYTES_PER_POINT_VIEW = 16 * 1024
CPU_CHUNK_POINTS = 32768  # large enough to amortise call overhead, small enough for caches
MIN_CHUNK_POINTS = 4096
MAX_CHUNK_POINTS = 1 << 21
# The device default under compile: max-autotune, which pads each pass's last call to a full
# chunk: at most one chunk of padding a pass, 4% more points for an sn64 object rendered in
# 50,000-ray batches at this size (at MAX_CHUNK_POINTS: 39%), while a call's matmuls (2^18
# rows) still fill a GPU.
PADDED_CHUNK_POINTS = 1 << 18
CUDA_MEMORY_FRACTION = 0.5  # of the free memory a chunk's activations may take
TRANSMITTANCE_EPS = 1e-10  # the published code adds it to 1 - alpha


@dataclass(frozen=True)
class RendererConfig:
    """The published renderer keys with their published defaults, plus how to evaluate:
    ``chunk_points`` (network points a call; None = sized from the device), ``max_memory_mb``
    (bounds a call's estimated activations, ``BYTES_PER_POINT_VIEW`` per point and source
    view; None = no bound), ``precision``
    (fp32 | tf32 | bf16 | auto), ``fold_latent`` (fold ``lin_z`` into the latent map at
    inference, see ``PixelNeRF.fold_latent_terms``; ``auto``: see :meth:`folds_latent`)
    ``compile`` (``torch.compile`` the MLPs at inference: fused kernels, the same function;
    false | true | ``max-autotune``, see ``render.compiling``) and ``mlp_kernel`` (torch |
    triton | auto | published, see ``render.mlp_kernel``)."""

    n_coarse: int = 64
    n_fine: int = 32
    n_fine_depth: int = 16
    noise_std: float = 0.0
    depth_std: float = 0.01
    white_bkgd: bool = True
    lindisp: bool = False
    chunk_points: int | None = None
    max_memory_mb: float | None = None
    precision: str = "fp32"
    fold_latent: bool | str = "auto"
    compile: bool | str = False
    mlp_kernel: str = "auto"

    @classmethod
    def from_mapping(cls, cfg: dict) -> RendererConfig:
        # keys, types and ranges: the experiment schema; here only what it cannot say
        config = cls(**cfg)
        if config.n_fine_depth > config.n_fine:
            raise PipelineError("renderer.n_fine_depth cannot exceed renderer.n_fine")
        check_precision(config.precision)
        check_mlp_kernel(config.mlp_kernel)
        if config.fold_latent not in (True, False, "auto"):
            raise PipelineError(
                f"renderer.fold_latent must be true, false or auto, not {config.fold_latent!r}"
            )
        return config

    def folds_latent(self, device: torch.device) -> bool:
        """Whether evaluation on ``device`` folds ``lin_z`` into the latent map.

        ``auto`` folds on CPUs, where it saves a quarter of the FLOPs. On CUDA it folds in
        bf16 only: the folded terms are computed once in fp32, and an unfolded bf16 path
        (lin_z and the feature gather in bf16) moved the test model's table SSIM by 0.0014
        on an H200, past the 0.001 bound, where the folded one stayed within it. In fp32
        and TF32 the unfolded path is the faster on CUDA: the 3x wider gather of the folded
        map costs more than the matmuls it saves (H200: TF32 90k rays/s folded, 114k not).
        """
        if self.fold_latent == "auto":
            precision = resolve_precision(self.precision, device)
            return device.type != "cuda" or precision == "bf16"
        return bool(self.fold_latent)


def default_chunk_points(device: torch.device, num_views: int) -> int:
    """Points a network call on ``device``: a fixed size on CPU, half the free memory on CUDA."""
    if device.type != "cuda":
        return CPU_CHUNK_POINTS
    free_bytes, _ = torch.cuda.mem_get_info(device)
    points = int(free_bytes * CUDA_MEMORY_FRACTION) // (BYTES_PER_POINT_VIEW * max(num_views, 1))
    return max(MIN_CHUNK_POINTS, min(MAX_CHUNK_POINTS, points))


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
    """NeRF renderer for a batch of objects; rays (SB, B, 8) as [origin, dir, near, far]."""

    def __init__(self, config: RendererConfig) -> None:
        super().__init__()
        self.config = config
        self._mlp_kernels: dict[str, str] = {}  # resolved renderer.mlp_kernel per device
        self._sized_chunks: dict[tuple[str, int], int] = {}  # (device, views) -> points

    def mlp_kernel(self, model: nn.Module, device: torch.device, precision: str) -> str:
        """``renderer.mlp_kernel`` resolved once per device, under ``precision`` (resolved)."""
        if str(device) not in self._mlp_kernels:
            mlps = [m for m in (getattr(model, "mlp_coarse", None),
                                getattr(model, "mlp_fine", None)) if m is not None]
            with network_precision(precision, device):
                self._mlp_kernels[str(device)] = resolve_mlp_kernel(
                    self.config.mlp_kernel, mlps, device)
        return self._mlp_kernels[str(device)]

    @classmethod
    def from_config(cls, cfg: dict) -> Renderer:
        """cfg: published renderer keys; a key left out takes the published default."""
        return cls(RendererConfig.from_mapping(dict(cfg)))

    def chunk_points(self, model: nn.Module, device: torch.device, padded: bool = False) -> int:
        """Network points a call, for the model's number of source views.

        Sized from the device (``chunk_points`` null) once per device and view count: after
        the first calls the caching allocator holds the memory they used, so the free memory
        seen later is smaller, and sizing anew would shrink every later chunk (and change
        the shapes a compiled network sees). ``padded`` (calls padded to the chunk): at most
        ``PADDED_CHUNK_POINTS`` when sized from the device."""
        sources = getattr(model, "sources", None)
        views = max(sources.num_views if sources is not None else 1, 1)
        chunk = self.config.chunk_points
        if chunk is None:
            key = (str(device), views)
            if key not in self._sized_chunks:
                self._sized_chunks[key] = default_chunk_points(device, views)
            chunk = self._sized_chunks[key]
            if padded:
                chunk = min(chunk, PADDED_CHUNK_POINTS)
        return memory_capped(int(chunk), self.config.max_memory_mb, BYTES_PER_POINT_VIEW * views)

    def evaluate(
        self, model: nn.Module, points: torch.Tensor, viewdirs: torch.Tensor, coarse: bool
    ) -> torch.Tensor:
        """Network outputs in chunks: points, viewdirs (SB, P, 3) -> (SB, P, 4)."""
        device = points.device
        # Folding, compiling and the evaluation precision are for inference: training keeps
        # the published graph, eager, under its own train.bf16 / train.tf32.
        inference = not model.training
        if inference and self.config.folds_latent(device) and hasattr(model, "fold_latent_terms"):
            model.fold_latent_terms()
        precision = resolve_precision(self.config.precision, device) if inference else None
        kernel = "torch"
        if inference and hasattr(model, "use_mlp_kernel"):
            kernel = self.mlp_kernel(model, device, precision)
            model.use_mlp_kernel(kernel)
        # The Triton path is already fused; torch.compile would only trace around it.
        options = compile_options(self.config.compile)
        compiled = (inference and options is not None and kernel != "triton"
                    and hasattr(model, "compile_networks"))
        if compiled:
            model.compile_networks(**options)
        padding = compiled and pads_calls(self.config.compile)
        per_object = max(1, -(-self.chunk_points(model, device, padding) // points.shape[0]))

        def chunks(per: int) -> list[torch.Tensor]:
            padded = compiled and pads_calls(self.config.compile)
            return self._evaluate_chunks(model, points, viewdirs, coarse, per, precision,
                                         padded)

        def backing_off() -> list[torch.Tensor]:
            if not inference:  # training keeps every chunk's activations: smaller ones won't fit
                return chunks(per_object)
            outputs, used = halving_on_oom(chunks, per_object)
            if used < per_object:  # the later calls start from what fitted
                self.config = replace(self.config, chunk_points=used * points.shape[0])
            return outputs

        try:
            outputs = backing_off()
        except torch._dynamo.exc.TorchDynamoException as exc:
            if not compiled:
                raise
            # Compilation happens at the first call and needs a working compiler toolchain;
            # without one, the same function runs eagerly.
            cause = getattr(exc, "inner_exception", None) or exc.__cause__ or exc
            text = str(cause).strip().splitlines()
            print(f"pixelnerf: warning: torch.compile failed ({type(cause).__name__}: "
                  f"{text[0] if text else ''}); rendering without it", file=sys.stderr, flush=True)
            model.compile_networks(enabled=False)
            self.config = replace(self.config, compile=False)
            outputs = backing_off()
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
