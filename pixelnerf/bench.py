"""Rendering throughput at the published sn64 model size (``pixelnerf bench``).

bench -> bench_scene -> measure (per path) -> pixelnerf.eval.inference.render_view_passes.
Weights are random (speed does not depend on them). The reference path is the published
rendering loop: one object at a time, fp32, 50,000-ray batches of 50,000-point network
calls, no folding. The fast paths are the project's own settings per precision.
"""

from __future__ import annotations

import copy
import math
import resource
import time
from dataclasses import dataclass

import torch

from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import DEFAULT_RAY_BATCH
from pixelnerf.eval.inference import Cameras, render_view_passes
from pixelnerf.eval.protocol import ViewSelection
from pixelnerf.model import PixelNeRF
from pixelnerf.render import Renderer
from pixelnerf.render.compiling import MAX_AUTOTUNE, compiled_graphs
from pixelnerf.render.precision import PRECISIONS, bf16_supported, resolve_precision

# The paper's sn64 evaluation: objects x target views x pixels.
SN64_OBJECTS = 8762
SN64_TARGET_VIEWS = 23
SN64_IMAGE_SIDE = 64
PUBLISHED_RAY_BATCH = DEFAULT_RAY_BATCH  # eval.py's ray batch, also its network batch in points
# bench path options: renderer key and value
PATH_OPTIONS = {
    "fold": ("fold_latent", True),
    "nofold": ("fold_latent", False),
    "compile": ("compile", True),
    "eager": ("compile", False),
    "autotune": ("compile", MAX_AUTOTUNE),
    "published": ("mlp_kernel", "published"),
    "torch": ("mlp_kernel", "torch"),
    "triton": ("mlp_kernel", "triton"),
}
# NMR camera set-up for the synthetic scene: focal per pixel of width, distance, bounds.
FOCAL_PER_WIDTH = 0.875
CAMERA_RADIUS = 2.73
NEAR, FAR = 1.2, 4.0
# Dense peak TFLOP/s by GPU name fragment and precision (vendor data sheets, SXM parts).
PEAK_TFLOPS = {
    "H100": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4},
    "H200": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0},
}


@dataclass(frozen=True)
class BenchResult:
    """One path's timed renders; ``warmup_seconds`` is its untimed first render (which pays
    any compilation and autotuning), ``compiles`` the graphs ``torch.compile`` compiled in
    the warm-up and in the timed renders (a fixed-shape path should add none to the latter)."""

    label: str
    rays: int
    seconds: float
    warmup_seconds: float
    compiles: tuple[int, int]
    flop_per_ray: float
    points_per_ray: int
    peak_memory_bytes: int
    peak_tflops: float | None

    @property
    def rays_per_second(self) -> float:
        return self.rays / self.seconds

    @property
    def tflops(self) -> float:
        return self.rays_per_second * self.flop_per_ray / 1e12

    @property
    def projected_sn64_seconds(self) -> float:
        rays = SN64_OBJECTS * SN64_TARGET_VIEWS * SN64_IMAGE_SIDE**2
        return rays / self.rays_per_second


def network_flop_per_ray(model: PixelNeRF, renderer: Renderer, num_views: int) -> float:
    """Multiply-adds x 2 of the unfolded network for one ray (coarse + fine samples)."""

    def per_point(coarse: bool) -> float:
        _, mlp = model.mlp(coarse)
        width = mlp.lin_in.out_features
        per_view = mlp.lin_in.in_features * width + len(mlp.lin_z) * mlp.d_latent * width
        per_view += min(mlp.combine_layer, mlp.n_blocks) * 2 * width * width
        shared = max(mlp.n_blocks - mlp.combine_layer, 0) * 2 * width * width
        return 2.0 * (num_views * per_view + shared + width * mlp.lin_out.out_features)

    coarse, fine = points_per_pass(renderer)
    return coarse * per_point(True) + fine * per_point(False)


def points_per_pass(renderer: Renderer) -> tuple[int, int]:
    """Network points a ray costs in the coarse and the fine pass (coarse + fine samples,
    none without a fine pass)."""
    cfg = renderer.config
    return cfg.n_coarse, (cfg.n_coarse + cfg.n_fine if cfg.n_fine > 0 else 0)


def bench_scene(num_objects: int, num_views: int, side: int, seed: int):
    """Seeded random images with NMR-like cameras: one source view (0), ``num_views`` targets."""
    generator = torch.Generator().manual_seed(seed)
    scene = []
    for _ in range(num_objects):
        count = num_views + 1
        azimuth = torch.rand(count, generator=generator) * 2 * math.pi
        elevation = (torch.rand(count, generator=generator) - 0.5) * 0.8
        poses = torch.stack(
            [_look_at(a.item(), e.item()) for a, e in zip(azimuth, elevation, strict=True)]
        )
        images = torch.rand(count, 3, side, side, generator=generator) * 2 - 1
        cameras = Cameras(poses, torch.tensor(FOCAL_PER_WIDTH * side), None, NEAR, FAR)
        scene.append((images, cameras, ViewSelection((0,), tuple(range(1, count)))))
    return scene


def _look_at(azimuth: float, elevation: float) -> torch.Tensor:
    eye = CAMERA_RADIUS * torch.tensor(
        [
            math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation),
            math.cos(elevation) * math.cos(azimuth),
        ]
    )
    back = eye / eye.norm()
    right = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), back)
    right = right / right.norm()
    pose = torch.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = (
        right,
        torch.linalg.cross(back, right),
        back,
        eye,
    )
    return pose


def path_settings(path: str, rays_per_object: int) -> tuple[dict, int]:
    """Renderer overrides and ray batch of a measured path.

    ``reference`` is the published loop (fp32, eager, no folding, 50,000-point calls). Any
    other path is ``<precision>`` with the experiment's renderer settings, changed by the
    options ``+fold`` / ``+nofold`` (``lin_z`` folded into the latent map or per point),
    ``+compile`` / ``+autotune`` / ``+eager`` (``renderer.compile`` true, max-autotune or false)
    and ``+published`` / ``+torch`` / ``+triton`` (``renderer.mlp_kernel``); at most one option
    a key.
    """
    if path == "reference":
        return {
            "precision": "fp32",
            "fold_latent": False,
            "compile": False,
            "mlp_kernel": "published",
            "chunk_points": PUBLISHED_RAY_BATCH,
        }, PUBLISHED_RAY_BATCH
    precision, *options = path.split("+")
    unknown = set(options) - set(PATH_OPTIONS)
    keys = [PATH_OPTIONS[option][0] for option in options if option in PATH_OPTIONS]
    if unknown or precision not in PRECISIONS or len(keys) != len(set(keys)):
        raise PipelineError(
            f"bench path {path!r}: expected reference or <fp32|tf32|bf16|auto>"
            f"[+{'][+'.join(PATH_OPTIONS)}]"
        )
    overrides: dict = {"precision": precision, "chunk_points": None}
    for option in options:
        key, value = PATH_OPTIONS[option]
        overrides[key] = value
    return overrides, rays_per_object


def measure(
    model, renderer_cfg: dict, path: str, scene, device: torch.device, seed: int, peak: dict | None
) -> BenchResult:
    images, cameras, selection = scene[0]
    overrides, ray_batch = path_settings(path, len(selection.targets) * images.shape[-1] ** 2)
    renderer = Renderer.from_config({**renderer_cfg, **overrides})
    if renderer.config.compile:
        model = copy.deepcopy(model)  # compiling is in place; the other paths keep eager MLPs
    graphs = compiled_graphs()
    warmup_start = time.perf_counter()
    render_view_passes(
        model,
        renderer,
        images,
        cameras,
        selection,
        ray_batch,  # warm-up, timed apart: it pays compilation and autotuning
        torch.Generator(device).manual_seed(seed),
        device,
        extras=False,
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    warmup_seconds = time.perf_counter() - warmup_start
    warmup_graphs = compiled_graphs() - graphs
    start = time.perf_counter()
    rays = 0
    for index, (images, cameras, selection) in enumerate(scene):
        generator = torch.Generator(device).manual_seed(seed + index)
        rgb = render_view_passes(
            model, renderer, images, cameras, selection, ray_batch, generator, device,
            extras=False,
        ).rgb
        rays += rgb.shape[0] * rgb.shape[1] * rgb.shape[2]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        memory = torch.cuda.max_memory_allocated(device)
    else:
        memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seconds = time.perf_counter() - start
    precision = resolve_precision(renderer.config.precision, device)
    return BenchResult(
        label=path,
        rays=rays,
        seconds=seconds,
        warmup_seconds=warmup_seconds,
        compiles=(warmup_graphs, compiled_graphs() - graphs - warmup_graphs),
        flop_per_ray=network_flop_per_ray(model, renderer, num_views=1),
        points_per_ray=sum(points_per_pass(renderer)),
        peak_memory_bytes=memory,
        peak_tflops=(peak or {}).get(precision),
    )


def default_paths(device: torch.device) -> list[str]:
    paths = ["reference", "fp32"]
    if device.type == "cuda":
        paths.append("tf32")
    if bf16_supported(device):
        paths.append("bf16")
    if device.type == "cuda":
        paths += ["bf16+torch", "bf16+triton"]
    return paths


def device_peak(device: torch.device) -> tuple[str, dict | None]:
    if device.type != "cuda":
        return f"CPU ({torch.get_num_threads()} threads)", None
    name = torch.cuda.get_device_name(device)
    return name, next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def format_result(result: BenchResult, reference: BenchResult | None) -> str:
    fraction = f"{result.tflops / result.peak_tflops:6.1%}" if result.peak_tflops else "   n/a"
    ratio = f"{result.rays_per_second / reference.rays_per_second:5.2f}x" if reference else "  -  "
    points_per_second = result.rays_per_second * result.points_per_ray
    compiles = "+".join(str(count) for count in result.compiles)
    return (
        f"{result.label:<20} {result.rays_per_second:>12,.0f} {points_per_second:>14,.0f} "
        f"{result.tflops:>8.3f} {fraction:>8} {result.peak_memory_bytes / 2**30:>8.2f} "
        f"{result.projected_sn64_seconds / 3600:>10.2f} {ratio:>8} "
        f"{result.warmup_seconds:>10.2f} {compiles:>8}"
    )


@dataclass(frozen=True)
class BenchSettings:
    """What one bench run measures: scene size, paths (None: :func:`default_paths`), seed."""

    objects: int
    views: int
    image_size: int
    paths: tuple[str, ...] | None
    seed: int


def default_settings(device: torch.device, objects: int | None, views: int | None,
                     image_size: int | None, paths: tuple[str, ...] | None,
                     seed: int) -> BenchSettings:
    """The sn64 evaluation's size on a GPU, a small one on the CPU, where not given."""
    on_gpu = device.type == "cuda"
    return BenchSettings(objects or (16 if on_gpu else 1),
                         views or (SN64_TARGET_VIEWS if on_gpu else 1),
                         image_size or (SN64_IMAGE_SIDE if on_gpu else 32), paths, seed)


def bench(model_config: dict, renderer_cfg: dict, settings: BenchSettings,
          device: torch.device, source: str, emit=print) -> list[BenchResult]:
    """Measure every path and ``emit`` the table line by line; returns the results."""
    torch.manual_seed(settings.seed)
    model = PixelNeRF.from_config(model_config, pretrained_encoder=False)
    model = model.to(device).eval()
    objects, views, side = settings.objects, settings.views, settings.image_size
    scene = bench_scene(objects, views, side, settings.seed)
    name, peak = device_peak(device)
    paths = list(settings.paths) if settings.paths else default_paths(device)
    emit(
        f"device: {name}; torch {torch.__version__}; {objects} object(s) x {views} view(s) of "
        f"{side}x{side}; model from {source}"
    )
    emit(
        f"{'path':<20} {'rays/s':>12} {'points/s':>14} {'TFLOP/s':>8} {'of peak':>8} "
        f"{'mem GiB':>8} {'sn64 h':>10} {'vs ref':>8} {'warm-up s':>10} {'compiles':>8}"
    )
    reference = None
    results = []
    for path in paths:
        result = measure(model, renderer_cfg, path, scene, device, settings.seed, peak)
        if path == "reference":
            reference = result
        results.append(result)
        emit(format_result(result, reference))
    flop = network_flop_per_ray(model, Renderer.from_config(renderer_cfg), num_views=1)
    emit(
        f"TFLOP/s counts the unfolded network's FLOPs (about {flop / 1e9:.2f} GFLOP a ray); "
        "sn64 h projects rendering alone over 8,762 objects x 23 views at 64x64; warm-up s "
        "is the untimed first render of one object (compilation and autotuning included), "
        "compiles the graphs torch.compile compiled then + in the timed renders."
    )
    return results
