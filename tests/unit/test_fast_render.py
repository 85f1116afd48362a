"""The fast evaluation path (folded latent terms, bf16) against the plain fp32 path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.model import encoded_scene, look_at_origin, tiny_model

import pixelnerf.render as R
from pixelnerf.errors import PipelineError
from pixelnerf.eval.metrics import psnr, quantize_8bit, ssim
from pixelnerf.render.precision import cpu_has_native_bf16

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

FP32_ATOL = 1e-4  # fast path vs reference path in fp32
TABLE_PSNR_DB = 0.05  # table-level bounds for reduced precision
TABLE_SSIM = 0.001
SIDE = 24


def render_views(model, settings: dict, seed: int) -> torch.Tensor:
    """Four target views of each encoded object -> (SB, 4, SIDE, SIDE, 3) on the CPU."""
    device = model.sources.latent.device
    poses = torch.stack([look_at_origin(0.4 + 1.3 * v, 0.25, 2.0) for v in range(4)])
    rays = R.image_rays(poses, SIDE, SIDE, SIDE * 1.2, 0.8, 3.2).reshape(1, -1, 8)
    rays = rays.expand(model.sources.num_objects, -1, -1).contiguous().to(device)
    renderer = R.Renderer.from_config(
        {"n_coarse": 16, "n_fine": 12, "n_fine_depth": 4, **settings}
    )
    with torch.no_grad():
        out = renderer(model, rays, generator=torch.Generator(device).manual_seed(seed))
    return out["fine"]["rgb"].reshape(-1, 4, SIDE, SIDE, 3).cpu()


@pytest.fixture(scope="module", params=DEVICES)
def model(request):
    model = tiny_model(seed=5)
    images, poses, focal = encoded_scene(model, num_objects=2, num_views=1, size=32)
    model.to(request.param)
    with torch.no_grad():
        model.encode(images.to(request.param), poses.to(request.param), focal)
    return model


def test_folded_latent_terms_equal_the_plain_network(model):
    plain = render_views(model, {"fold_latent": False, "precision": "fp32"}, seed=3)
    model.sources.latent_terms.clear()
    folded = render_views(model, {"fold_latent": True, "precision": "fp32"}, seed=3)
    assert model.sources.latent_terms, "the renderer did not fold the latent terms"
    torch.testing.assert_close(folded, plain, rtol=0, atol=FP32_ATOL)


def test_compiled_networks_equal_the_plain_network(model):
    import copy

    plain = render_views(model, {"fold_latent": False, "precision": "fp32"}, seed=3)
    compiled_model = copy.deepcopy(model)  # compiling is in place
    for fold in (False, True):
        compiled_model.sources.latent_terms.clear()
        settings = {"fold_latent": fold, "precision": "fp32", "compile": True,
                    "mlp_kernel": "torch"}  # the Triton path is not compiled
        compiled = render_views(compiled_model, settings, seed=3)
        torch.testing.assert_close(compiled, plain, rtol=0, atol=FP32_ATOL)
    assert getattr(compiled_model.mlp_coarse, "_compiled_call_impl", None) is not None
    assert getattr(model.mlp_coarse, "_compiled_call_impl", None) is None


def test_a_failed_compilation_falls_back_to_eager_with_one_warning(model, monkeypatch, capfd):
    import copy

    from pixelnerf.model import PixelNeRF

    def no_compiler(graph, example_inputs):
        raise RuntimeError("no C++ compiler found")

    plain = render_views(model, {"fold_latent": False, "precision": "fp32"}, seed=3)
    broken = copy.deepcopy(model)
    original = PixelNeRF.compile_networks
    monkeypatch.setattr(PixelNeRF, "compile_networks",
                        lambda self, enabled=True, **options: original(
                            self, enabled, **options, backend=no_compiler))
    rendered = render_views(broken, {"fold_latent": False, "compile": True,
                                     "mlp_kernel": "torch"}, seed=3)
    torch.testing.assert_close(rendered, plain, rtol=0, atol=FP32_ATOL)
    warnings = [line for line in capfd.readouterr().err.splitlines() if "torch.compile" in line]
    assert len(warnings) == 1 and "no C++ compiler found" in warnings[0]
    assert getattr(broken.mlp_coarse, "_compiled_call_impl", None) is None


def test_fold_auto_folds_on_cpus_and_in_bf16(monkeypatch):
    import pixelnerf.render.precision as P

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    config = R.Renderer.from_config({}).config
    assert config.fold_latent == "auto"
    assert config.folds_latent(cpu)
    assert not config.folds_latent(cuda)
    for precision in ("bf16", "auto"):
        assert R.Renderer.from_config({"precision": precision}).config.folds_latent(cuda)
    assert not R.Renderer.from_config({"precision": "tf32"}).config.folds_latent(cuda)
    assert not R.Renderer.from_config({"fold_latent": False}).config.folds_latent(cpu)
    assert P.resolve_precision("auto", cuda) == "bf16"
    with pytest.raises(PipelineError, match="renderer.fold_latent"):
        R.Renderer.from_config({"fold_latent": "sometimes"})


def test_folding_is_skipped_while_training(model):
    model.sources.latent_terms.clear()
    model.train()
    try:
        render_views(model, {"fold_latent": True}, seed=3)
        assert not model.sources.latent_terms
    finally:
        model.eval()


def table_totals(renders: list[np.ndarray], truths: list[np.ndarray]) -> tuple[float, float]:
    """Mean PSNR and SSIM over 8-bit renders (H, W, 3), as the tables compute them."""
    scores = [
        (psnr(quantize_8bit(p), t), ssim(quantize_8bit(p), t))
        for p, t in zip(renders, truths, strict=True)
    ]
    return float(np.mean([s[0] for s in scores])), float(np.mean([s[1] for s in scores]))


def render_held_out(experiment, paths, precision: str, device: torch.device
                    ) -> tuple[list, list]:
    """Every held-out object's views 1.. rendered from view 0 -> (renders, ground truths)."""
    from pixelnerf.data import open_dataset
    from pixelnerf.eval.inference import Cameras, load_model, render_view_passes
    from pixelnerf.eval.protocol import ViewSelection

    data_root = paths.checkpoints.parent / "data"
    dataset = open_dataset("dvr", data_root / experiment["dataset"]["dir"], "val")
    model = load_model(experiment["model"], paths.checkpoints / "pixel_nerf_latest", device)
    renderer = R.Renderer.from_config({**experiment["renderer"], "precision": precision})
    renders, truths = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        views = item["images"].shape[0]
        selection = ViewSelection((0,), tuple(range(1, views)))
        generator = torch.Generator(device).manual_seed(index)
        rgb = render_view_passes(model, renderer, item["images"], Cameras.of_item(item),
                                 selection, 4096, generator, device).rgb
        renders += list(rgb.cpu().numpy())
        truths += list((item["images"][1:] * 0.5 + 0.5).permute(0, 2, 3, 1).numpy())
    return renders, truths


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_stays_within_table_level_bounds_on_a_trained_model(trained_demo, device):
    experiment, paths, _ = trained_demo
    device = torch.device(device)
    reference, truths = render_held_out(experiment, paths, "fp32", device)
    fast, _ = render_held_out(experiment, paths, "bf16", device)
    psnr_ref, ssim_ref = table_totals(reference, truths)
    psnr_fast, ssim_fast = table_totals(fast, truths)
    assert abs(psnr_fast - psnr_ref) < TABLE_PSNR_DB, (psnr_ref, psnr_fast)
    assert abs(ssim_fast - ssim_ref) < TABLE_SSIM, (ssim_ref, ssim_fast)
    assert any(not np.array_equal(a, b) for a, b in zip(fast, reference, strict=True))


def test_native_bf16_is_read_from_the_cpu_flags():
    assert not cpu_has_native_bf16("flags\t\t: fpu avx512f avx512bw avx512_vnni\n")
    assert cpu_has_native_bf16("flags\t\t: fpu avx512f avx512_bf16\n")
    assert cpu_has_native_bf16("flags\t\t: fpu amx_bf16 amx_tile\n")


def test_auto_precision_is_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    import pixelnerf.render.precision as P

    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda cpuinfo=None: False)
    assert P.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda cpuinfo=None: True)
    assert P.resolve_precision("auto", torch.device("cpu")) == "bf16"
