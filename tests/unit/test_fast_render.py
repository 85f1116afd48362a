"""The fast evaluation path (folded latent terms, bf16) against the plain fp32 path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.model import encoded_scene, look_at_origin, planned, tiny_config, tiny_model
from helpers.reference import DEVICES

import pixelnerf.render as R
from pixelnerf.errors import PipelineError
from pixelnerf.eval.metrics import psnr, quantize_8bit, ssim
from pixelnerf.render.config import RendererConfig
from pixelnerf.render.plan import folds_latent
from pixelnerf.render.precision import cpu_has_native_bf16

FP32_ATOL = 1e-4  # fast path vs reference path in fp32
TABLE_PSNR_DB = 0.05  # table-level bounds for reduced precision
TABLE_SSIM = 0.001
SIDE = 24


def renderer_config(settings: dict) -> dict:
    return {"n_coarse": 16, "n_fine": 12, "n_fine_depth": 4, **settings}


def render_views(model, settings: dict, seed: int, plan=None) -> torch.Tensor:
    """Four target views of each encoded object -> (SB, 4, SIDE, SIDE, 3) on the CPU, with
    ``plan`` (None: resolved from ``settings`` on the model's device)."""
    device = model.sources.latent.device
    poses = torch.stack([look_at_origin(0.4 + 1.3 * v, 0.25, 2.0) for v in range(4)])
    rays = R.image_rays(poses, SIDE, SIDE, SIDE * 1.2, 0.8, 3.2).reshape(1, -1, 8)
    rays = rays.expand(model.sources.num_objects, -1, -1).contiguous().to(device)
    config = renderer_config(settings)
    renderer = R.Renderer.from_config(config, plan or R.resolve_plan(config, device))
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
    plain = render_views(model, {"fold_latent": False, "precision": "fp32"}, seed=3)
    device = model.sources.latent.device
    for fold in (False, True):
        settings = {"fold_latent": fold, "precision": "fp32", "compile": True,
                    "mlp_kernel": "torch"}
        plan = R.resolve_plan(renderer_config(settings), device)
        assert plan.compile == "dynamic" and plan.fold_latent is fold
        compiled_model = planned(model, tiny_config(), plan)
        compiled_model.sources.latent_terms.clear()
        compiled = render_views(compiled_model, settings, seed=3, plan=plan)
        torch.testing.assert_close(compiled, plain, rtol=0, atol=FP32_ATOL)
        assert getattr(compiled_model.mlp_coarse, "_compiled_call_impl", None) is not None
    model.sources.latent_terms.clear()
    assert getattr(model.mlp_coarse, "_compiled_call_impl", None) is None


def test_a_failed_compilation_plans_eager_with_one_warning(model, monkeypatch, capfd):
    import torch._inductor.compile_fx as inductor

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    plain = render_views(model, {"fold_latent": False, "precision": "fp32"}, seed=3)
    monkeypatch.setattr(inductor, "compile_fx", no_compiler)
    torch._dynamo.reset()  # else a graph an earlier test compiled would serve the check
    settings = {"fold_latent": False, "compile": True, "mlp_kernel": "torch"}
    device = model.sources.latent.device
    plan = R.resolve_plan(renderer_config(settings), device)
    warnings = [line for line in capfd.readouterr().err.splitlines() if "torch.compile" in line]
    assert len(warnings) == 1 and "no C++ compiler found" in warnings[0]
    assert plan.compile == "eager"
    eager = planned(model, tiny_config(), plan)
    rendered = render_views(eager, settings, seed=3, plan=plan)
    torch.testing.assert_close(rendered, plain, rtol=0, atol=FP32_ATOL)
    assert getattr(eager.mlp_coarse, "_compiled_call_impl", None) is None


def test_fold_auto_folds_on_cpus_and_in_bf16(monkeypatch):
    import pixelnerf.render.precision as P

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert RendererConfig.from_mapping({}).fold_latent == "auto"
    assert folds_latent("auto", cpu, "fp32")
    assert not folds_latent("auto", cuda, "fp32")
    for precision in ("bf16", "auto"):
        assert folds_latent("auto", cuda, P.resolve_precision(precision, cuda))
    assert not folds_latent("auto", cuda, P.resolve_precision("tf32", cuda))
    assert not folds_latent(False, cpu, "fp32")
    assert R.resolve_plan({}, cpu).fold_latent
    assert not R.resolve_plan({"fold_latent": False}, cpu).fold_latent
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
    from pixelnerf.eval.inference import Cameras, load_inference, render_view_passes
    from pixelnerf.eval.protocol import ViewSelection

    data_root = paths.checkpoints.parent / "data"
    dataset = open_dataset("dvr", data_root / experiment["dataset"]["dir"], "val")
    network = load_inference(experiment["model"], {**experiment["renderer"],
                                                   "precision": precision},
                             paths.checkpoints / "pixel_nerf_latest", device)
    model, renderer = network.model, network.renderer
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
