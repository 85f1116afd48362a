"""The fast evaluation path (folded latent terms, bf16) against the plain fp32 path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_fixtures import encoded_scene, look_at_origin, tiny_model

import pixelnerf.render as R
from pixelnerf.metrics import psnr, quantize_8bit, ssim

FP32_ATOL = 1e-4  # issue 7: fast path vs reference path in fp32
TABLE_PSNR_DB = 0.05  # issue 7: table-level bounds for reduced precision
TABLE_SSIM = 0.001
SIDE = 24


def render_views(model, settings: dict, seed: int) -> torch.Tensor:
    """Four target views of each encoded object -> (SB, 4, SIDE, SIDE, 3)."""
    poses = torch.stack([look_at_origin(0.4 + 1.3 * v, 0.25, 2.0) for v in range(4)])
    rays = R.image_rays(poses, SIDE, SIDE, SIDE * 1.2, 0.8, 3.2).reshape(1, -1, 8)
    rays = rays.expand(model.sources.num_objects, -1, -1).contiguous()
    renderer = R.Renderer.from_config(
        {"n_coarse": 16, "n_fine": 12, "n_fine_depth": 4, **settings}
    )
    with torch.no_grad():
        out = renderer(model, rays, generator=torch.Generator().manual_seed(seed))
    return out["fine"]["rgb"].reshape(-1, 4, SIDE, SIDE, 3)


@pytest.fixture(scope="module")
def model():
    model = tiny_model(seed=5)
    encoded_scene(model, num_objects=2, num_views=1, size=32)
    return model


def test_folded_latent_terms_equal_the_plain_network(model):
    plain = render_views(model, {"fold_latent": False, "precision": "fp32"}, seed=3)
    model.sources.latent_terms.clear()
    folded = render_views(model, {"fold_latent": True, "precision": "fp32"}, seed=3)
    assert model.sources.latent_terms, "the renderer did not fold the latent terms"
    torch.testing.assert_close(folded, plain, rtol=0, atol=FP32_ATOL)


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


def render_held_out(experiment, paths, precision: str) -> tuple[list, list]:
    """Every held-out object's views 1.. rendered from view 0 -> (renders, ground truths)."""
    from pixelnerf.data import open_dataset
    from pixelnerf.protocol import ViewSelection
    from pixelnerf.render_objects import Cameras, load_model, render_views

    device = torch.device("cpu")
    data_root = paths.checkpoints.parent / "data"
    dataset = open_dataset("dvr", data_root / experiment["dataset"]["dir"], "val")
    model = load_model(experiment, paths.checkpoints / "pixel_nerf_latest", device)
    renderer = R.Renderer.from_config({**experiment["renderer"], "precision": precision})
    renders, truths = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        views = item["images"].shape[0]
        selection = ViewSelection((0,), tuple(range(1, views)))
        generator = torch.Generator().manual_seed(index)
        rgb = render_views(model, renderer, item["images"], Cameras.of_item(item), selection,
                           4096, generator, device)
        renders += list(rgb.numpy())
        truths += list((item["images"][1:] * 0.5 + 0.5).permute(0, 2, 3, 1).numpy())
    return renders, truths


def test_bf16_stays_within_table_level_bounds_on_a_trained_model(trained_demo):
    experiment, paths, _ = trained_demo
    reference, truths = render_held_out(experiment, paths, "fp32")
    fast, _ = render_held_out(experiment, paths, "bf16")
    psnr_ref, ssim_ref = table_totals(reference, truths)
    psnr_fast, ssim_fast = table_totals(fast, truths)
    assert abs(psnr_fast - psnr_ref) < TABLE_PSNR_DB, (psnr_ref, psnr_fast)
    assert abs(ssim_fast - ssim_ref) < TABLE_SSIM, (ssim_ref, ssim_fast)
    assert any(not np.array_equal(a, b) for a, b in zip(fast, reference, strict=True))
