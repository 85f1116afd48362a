"""Rendering throughput at the published sn64 model size (``pixelnerf bench``).

bench -> matmul_peaks (the device's own matmul peak at the network's layer shape) ->
bench_scene -> measure (per path: resolve_plan, a model built with the plan) ->
pixelnerf.eval.inference.render_view_passes.

Weights are random (speed does not depend on them). A path is ``reference`` (the published
rendering loop: one object at a time, fp32, the published graph, 50,000-ray batches of
50,000-point network calls, no folding), ``default`` (the experiment's renderer settings,
resolved into its plan on the device) or ``default`` with plan fields changed:
``field=value`` joined by ``+``, e.g. ``precision=bf16+kernel=triton``.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import yaml

from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import DEFAULT_RAY_BATCH
from pixelnerf.eval.inference import Cameras, render_view_passes
from pixelnerf.eval.protocol import ViewSelection
from pixelnerf.model import PixelNeRF
from pixelnerf.model.config import ModelConfig
from pixelnerf.model.plan import InferencePlan
from pixelnerf.render.compiling import compiled_graphs
from pixelnerf.render.config import RendererConfig
from pixelnerf.render.mlp_kernel import triton_import_error
from pixelnerf.render.plan import resolve_plan
from pixelnerf.render.precision import bf16_supported, tf32_allowed
from pixelnerf.render.renderer import Renderer

# The paper's sn64 evaluation: objects x target views x pixels.
SN64_OBJECTS = 8762
SN64_TARGET_VIEWS = 23
SN64_IMAGE_SIDE = 64
PUBLISHED_RAY_BATCH = DEFAULT_RAY_BATCH  # eval.py's ray batch, also its network batch in points
REFERENCE = "reference"
DEFAULT = "default"
# bench path fields: the plan's fields, each set through its renderer key
PATH_FIELDS = {
    "kernel": "mlp_kernel",
    "compile": "compile",
    "fold_latent": "fold_latent",
    "precision": "precision",
    "chunk_points": "chunk_points",
}
REFERENCE_SETTINGS = {"precision": "fp32", "fold_latent": False, "compile": False,
                      "mlp_kernel": "published", "chunk_points": PUBLISHED_RAY_BATCH}
# Rows of the peak matmul: a network call's order of size (CPU: smaller, so that an
# emulated bf16 matmul stays a fraction of a second).
PEAK_ROWS = {"cuda": 1 << 16, "cpu": 4096}
PEAK_SECONDS = 0.2  # each precision's matmul is repeated for at least this long
# NMR camera set-up for the synthetic scene: focal per pixel of width, distance, bounds.
FOCAL_PER_WIDTH = 0.875
CAMERA_RADIUS = 2.73
NEAR, FAR = 1.2, 4.0


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


def path_settings(path: str, rays_per_object: int) -> tuple[dict[str, Any], int]:
    """Renderer overrides and ray batch of a measured path.

    ``reference`` is the published loop (fp32, eager, no folding, the published graph,
    50,000-point calls, 50,000-ray batches); ``default`` the experiment's settings;
    ``field=value[+field=value...]`` changes the plan's ``field`` (one of ``PATH_FIELDS``:
    ``kernel`` takes ``renderer.mlp_kernel``'s values, the others their renderer key's), at
    most once a field. Every path but the reference renders an object in one ray batch.
    """
    if path == REFERENCE:
        return dict(REFERENCE_SETTINGS), PUBLISHED_RAY_BATCH
    if path == DEFAULT:
        return {}, rays_per_object
    overrides: dict[str, Any] = {}
    for option in path.split("+"):
        field, equals, value = option.partition("=")
        if not equals or field not in PATH_FIELDS or PATH_FIELDS[field] in overrides:
            raise PipelineError(
                f"bench path {path!r}: expected {REFERENCE}, {DEFAULT} or field=value[+...] "
                f"with the fields {', '.join(PATH_FIELDS)}, each at most once")
        overrides[PATH_FIELDS[field]] = yaml.safe_load(value)
    return overrides, rays_per_object


def path_plan(renderer_cfg: Mapping[str, Any], overrides: Mapping[str, Any],
              model_config: ModelConfig, device: torch.device, path: str) -> InferencePlan:
    """The plan of a path on ``device`` (a bad value or an unavailable kernel: one error
    line naming the path)."""
    try:
        return resolve_plan({**renderer_cfg, **overrides}, device, model_config)
    except PipelineError as exc:
        raise PipelineError(f"bench path {path!r}: {exc}") from exc


def measure(model_config: ModelConfig, weights: Mapping[str, torch.Tensor],
            renderer_cfg: Mapping[str, Any], path: str, scene, device: torch.device, seed: int,
            peaks: Mapping[str, float]) -> BenchResult:
    images, cameras, selection = scene[0]
    overrides, ray_batch = path_settings(path, len(selection.targets) * images.shape[-1] ** 2)
    plan = path_plan(renderer_cfg, overrides, model_config, device, path)
    renderer = Renderer(RendererConfig.from_mapping({**renderer_cfg, **overrides}), plan)
    model = PixelNeRF.from_config(model_config, pretrained_encoder=False, plan=plan)
    model.load_state_dict(weights)
    model = model.to(device).eval()
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
    return BenchResult(
        label=path,
        rays=rays,
        seconds=seconds,
        warmup_seconds=warmup_seconds,
        compiles=(warmup_graphs, compiled_graphs() - graphs - warmup_graphs),
        flop_per_ray=network_flop_per_ray(model, renderer, num_views=1),
        points_per_ray=sum(points_per_pass(renderer)),
        peak_memory_bytes=memory,
        peak_tflops=peaks.get(plan.precision),
    )


def default_paths(default: InferencePlan, device: torch.device) -> list[str]:
    """The reference, the default plan, and one path per plan field changed from it: the
    kernel (Triton on CUDA where it imports, else the published graph), compilation,
    folding and precision (bf16 <-> fp32, where the device has native bf16 or is CUDA)."""
    paths = [REFERENCE, DEFAULT]
    triton = device.type == "cuda" and triton_import_error() is None
    if default.kernel != "torch":
        paths.append("kernel=torch")
    else:
        paths.append("kernel=triton" if triton else "kernel=published")
    paths.append("compile=false" if default.compile != "eager" else "compile=true")
    paths.append(f"fold_latent={str(not default.fold_latent).lower()}")
    if default.precision == "bf16":
        paths.append("precision=fp32")
    elif device.type == "cuda" or bf16_supported(device):
        paths.append("precision=bf16")
    return paths


def _matmul_tflops(rows: int, width: int, dtype: torch.dtype, device: torch.device) -> float:
    """Best TFLOP/s of (rows, width) @ (width, width) in ``dtype`` on ``device``."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(rows, width, generator=generator).to(device, dtype)
    b = torch.randn(width, width, generator=generator).to(device, dtype)
    best = math.inf
    spent, calls = 0.0, 0
    torch.mm(a, b)  # warm-up: library initialisation, kernel selection
    while spent < PEAK_SECONDS or calls < 3:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
        best, spent, calls = min(best, elapsed), spent + elapsed, calls + 1
    return 2.0 * rows * width * width / best / 1e12


def matmul_peaks(device: torch.device, width: int) -> dict[str, float]:
    """The device's own matmul TFLOP/s at the network's hidden layer (``width`` square
    weights), measured now: fp32 and bf16, and TF32 on CUDA. The "of peak" column divides a
    path's rate by the peak of its precision: what this device reaches on these shapes,
    not a data-sheet figure."""
    rows = PEAK_ROWS["cuda" if device.type == "cuda" else "cpu"]
    peaks = {}
    with tf32_allowed(False):
        peaks["fp32"] = _matmul_tflops(rows, width, torch.float32, device)
    peaks["bf16"] = _matmul_tflops(rows, width, torch.bfloat16, device)
    if device.type == "cuda":
        with tf32_allowed(True):
            peaks["tf32"] = _matmul_tflops(rows, width, torch.float32, device)
    return peaks


def device_name(device: torch.device) -> str:
    if device.type != "cuda":
        return f"CPU ({torch.get_num_threads()} threads)"
    return torch.cuda.get_device_name(device)


def format_result(result: BenchResult, reference: BenchResult | None) -> str:
    fraction = f"{result.tflops / result.peak_tflops:6.1%}" if result.peak_tflops else "   n/a"
    ratio = f"{result.rays_per_second / reference.rays_per_second:5.2f}x" if reference else "  -  "
    points_per_second = result.rays_per_second * result.points_per_ray
    compiles = "+".join(str(count) for count in result.compiles)
    return (
        f"{result.label:<28} {result.rays_per_second:>12,.0f} {points_per_second:>14,.0f} "
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


def bench(model_config: Mapping[str, Any], renderer_cfg: Mapping[str, Any],
          settings: BenchSettings, device: torch.device, source: str,
          emit: Callable[[str], None] = print) -> list[BenchResult]:
    """Measure every path and ``emit`` the table line by line; returns the results."""
    typed_model = ModelConfig.from_mapping(model_config)
    torch.manual_seed(settings.seed)
    weights = PixelNeRF.from_config(typed_model, pretrained_encoder=False).state_dict()
    objects, views, side = settings.objects, settings.views, settings.image_size
    scene = bench_scene(objects, views, side, settings.seed)
    default = path_plan(renderer_cfg, {}, typed_model, device, DEFAULT)
    paths = list(settings.paths) if settings.paths else default_paths(default, device)
    width = typed_model.mlp_coarse.d_hidden
    peaks = matmul_peaks(device, width)
    emit(
        f"device: {device_name(device)}; torch {torch.__version__}; {objects} object(s) x "
        f"{views} view(s) of {side}x{side}; model from {source}"
    )
    emit(f"default {default.line()}")
    rows = PEAK_ROWS["cuda" if device.type == "cuda" else "cpu"]
    emit(f"matmul peak measured here, ({rows}, {width}) x ({width}, {width}): "
         + ", ".join(f"{name} {value:.3f} TFLOP/s" for name, value in peaks.items()))
    emit(
        f"{'path':<28} {'rays/s':>12} {'points/s':>14} {'TFLOP/s':>8} {'of peak':>8} "
        f"{'mem GiB':>8} {'sn64 h':>10} {'vs ref':>8} {'warm-up s':>10} {'compiles':>8}"
    )
    reference = None
    results = []
    for path in paths:
        result = measure(typed_model, weights, renderer_cfg, path, scene, device,
                         settings.seed, peaks)
        if path == REFERENCE:
            reference = result
        results.append(result)
        emit(format_result(result, reference))
    model = PixelNeRF.from_config(typed_model, pretrained_encoder=False)
    flop = network_flop_per_ray(model, Renderer.from_config(renderer_cfg), num_views=1)
    emit(
        f"TFLOP/s counts the unfolded network's FLOPs (about {flop / 1e9:.2f} GFLOP a ray); "
        "of peak divides it by the matmul peak of the path's precision measured above; "
        "sn64 h projects rendering alone over 8,762 objects x 23 views at 64x64; warm-up s "
        "is the untimed first render of one object (compilation and autotuning included), "
        "compiles the graphs torch.compile compiled then + in the timed renders."
    )
    return results
