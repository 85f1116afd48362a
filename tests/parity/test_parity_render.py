"""Rays and compositing against the reference vectors computed with the published implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.reference import DEVICES, model_config, optional, reference_model

import pixelnerf.render as R

RAYS_ATOL = 1e-6
COMPOSITE_ATOL = 1e-5



def target_rays(vectors, device) -> torch.Tensor:
    height, width = (int(v) for v in vectors["target_hw"])
    return R.image_rays(
        torch.from_numpy(vectors["target_pose"]).to(device),
        height,
        width,
        torch.from_numpy(vectors["target_focal"]),
        float(vectors["z_near"]),
        float(vectors["z_far"]),
        optional(vectors["target_c"]),
    )


@pytest.mark.parametrize("device", DEVICES)
def test_image_rays_match(vectors, device):
    rays = target_rays(vectors, device)
    assert rays.shape == vectors["rays"].shape
    np.testing.assert_allclose(rays.cpu().numpy(), vectors["rays"], rtol=0, atol=RAYS_ATOL)


@pytest.mark.parametrize("device", DEVICES)
def test_composite_matches(reference_root, vectors, device):
    model = reference_model(reference_root, torch.device(device))
    c = optional(vectors["c"])
    renderer = R.Renderer.from_config({"white_bkgd": model_config(reference_root)["white_bkgd"]})
    first = slice(0, 1)  # the reference compositing vectors re-encode object 0 only
    with torch.no_grad():
        model.encode(
            torch.from_numpy(vectors["images"][first]).to(device),
            torch.from_numpy(vectors["poses"][first]).to(device),
            torch.from_numpy(vectors["focal"]).to(device),
            None if c is None else c[first].to(device),
        )
        rays = target_rays(vectors, device).reshape(1, -1, 8)
        z_samp = torch.from_numpy(vectors["z_samp"]).to(device)[None]
        weights, rgb, depth = renderer.composite(model, rays, z_samp, coarse=True)
    for name, value in (("weights", weights), ("rgb", rgb), ("depth", depth)):
        expected = vectors[f"composite_{name}"]
        assert value[0].shape == expected.shape, name
        np.testing.assert_allclose(value[0].cpu().numpy(), expected, rtol=0, atol=COMPOSITE_ATOL)
