"""The MLP kernels on a GPU at the published sn64 size: each Triton kernel against the fused
torch path in every precision, folded and unfolded, within the renderer's self-check bounds;
the time of one MLP call per kernel printed beside it; and the plan's Triton self-check."""

from __future__ import annotations

import time

import pytest
import torch

from pixelnerf.model.backends import mlp_backend
from pixelnerf.model.fused_mlp import fused_forward
from pixelnerf.render import resolve_plan
from pixelnerf.render.mlp_kernel import SELF_CHECK_TOLERANCE, TRITON_KERNELS, random_resnet_fc
from pixelnerf.render.precision import network_precision

pytestmark = pytest.mark.gpu

# The published sn64 MLP: point code 42 wide, latent 512, 512 wide, 5 blocks, 3 lin_z.
D_IN, D_LATENT, WIDTH, BLOCKS, COMBINE = 42, 512, 512, 5, 3
POINTS = 1 << 18  # a network call of the renderer's padded size
BOUNDS = {"fp32": SELF_CHECK_TOLERANCE["ieee"], "tf32": SELF_CHECK_TOLERANCE["tf32"],
          "bf16": SELF_CHECK_TOLERANCE[torch.bfloat16]}


def inputs(device: torch.device, points: int = POINTS, d_in: int = D_IN,
           d_latent: int = D_LATENT) -> tuple[torch.Tensor, torch.Tensor]:
    """Random point codes (1, 1, points, d_in) and latents (1, 1, points, d_latent)."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, points, d_in, generator=generator).to(device)
    latent = torch.randn(1, 1, points, d_latent, generator=generator).to(device)
    return x, latent


def relative_errors(kernel: str, precision: str, device: torch.device, mlp, x, latent
                    ) -> dict[str, float]:
    """Relative L2 error of ``kernel`` against the fp32 torch path, folded and unfolded."""
    with torch.no_grad():
        terms = torch.cat([layer(latent) for layer in mlp.lin_z], dim=-1)
        expected = fused_forward(mlp, None, x, terms).double()
        backend = mlp_backend(kernel)
        errors = {}
        with network_precision(precision, device):
            for mode, args in (("folded", (None, x, terms)), ("unfolded", (latent, x, None))):
                got = backend(mlp, *args).double()
                assert torch.isfinite(got).all(), (kernel, precision, mode)
                errors[mode] = float((got - expected).norm() / expected.norm())
    return errors


def call_seconds(kernel: str, precision: str, device: torch.device, mlp, x, latent,
                 repeats: int = 10) -> dict[str, float]:
    """Median seconds of one MLP call, folded and unfolded, after a warm-up call."""
    backend = mlp_backend(kernel)
    with torch.no_grad():
        terms = torch.cat([layer(latent) for layer in mlp.lin_z], dim=-1)
        seconds = {}
        with network_precision(precision, device):
            for mode, args in (("folded", (None, x, terms)), ("unfolded", (latent, x, None))):
                backend(mlp, *args)
                times = []
                for _ in range(repeats):
                    torch.cuda.synchronize(device)
                    start = time.perf_counter()
                    backend(mlp, *args)
                    torch.cuda.synchronize(device)
                    times.append(time.perf_counter() - start)
                seconds[mode] = sorted(times)[len(times) // 2]
    return seconds


@pytest.fixture(scope="module")
def published_mlp():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    device = torch.device("cuda")
    mlp = random_resnet_fc(D_IN, D_LATENT, WIDTH, BLOCKS, COMBINE, seed=0).to(device)
    return mlp, *inputs(device)


@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
@pytest.mark.parametrize("kernel", TRITON_KERNELS)
def test_a_triton_kernel_matches_the_torch_path(published_mlp, cuda, kernel, precision):
    mlp, x, latent = published_mlp
    errors = relative_errors(kernel, precision, cuda, mlp, x, latent)
    print(f"{kernel} {precision}: relative L2 " + ", ".join(
        f"{mode} {error:.2e}" for mode, error in errors.items())
        + f" (bound {BOUNDS[precision]:.0e})")
    assert all(error <= BOUNDS[precision] for error in errors.values()), errors


@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
def test_the_time_of_one_mlp_call_per_kernel(published_mlp, cuda, precision):
    mlp, x, latent = published_mlp
    flop = 2 * POINTS * (D_IN * WIDTH + 3 * D_LATENT * WIDTH + 2 * BLOCKS * WIDTH * WIDTH)
    for kernel in ("published", "torch", *TRITON_KERNELS):
        for mode, seconds in call_seconds(kernel, precision, cuda, mlp, x, latent).items():
            print(f"{precision:<5} {kernel:<18} {mode:<9} {seconds * 1e3:8.2f} ms "
                  f"{POINTS / seconds / 1e6:8.2f} M points/s "
                  f"{flop / seconds / 1e12:7.1f} TFLOP/s (unfolded FLOPs)")
            assert seconds > 0


@pytest.mark.parametrize("kernel", TRITON_KERNELS)
def test_a_plan_naming_a_triton_kernel_passes_its_self_check(cuda, kernel):
    model = {"mlp_coarse": {"type": "resnet", "n_blocks": BLOCKS, "d_hidden": WIDTH,
                            "combine_layer": COMBINE},
             "mlp_fine": {"type": "resnet", "n_blocks": BLOCKS, "d_hidden": WIDTH,
                          "combine_layer": COMBINE}}
    for precision in ("fp32", "tf32", "bf16"):
        plan = resolve_plan({"mlp_kernel": kernel, "precision": precision}, cuda, model)
        assert plan.kernel == kernel and plan.compile == "eager"


def test_the_sn64_plan_on_a_gpu_is_the_measured_default(cuda, project_root):
    from pixelnerf.config import load_experiment

    experiment = load_experiment(project_root / "config/experiments/sn64.yaml")
    plan = resolve_plan(experiment["renderer"], cuda, experiment["model"])
    print(plan.line())
    # the torch path, compiled, folded in bf16: the fastest measured path within the bounds
    assert (plan.kernel, plan.compile, plan.fold_latent, plan.precision) == (
        "torch", "dynamic", True, "bf16")
