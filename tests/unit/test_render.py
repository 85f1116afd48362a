"""Unit tests of rays, samplers, compositing and the chunked renderer."""

from __future__ import annotations

import pytest
import torch
from helpers.model import encoded_scene, look_at_origin, tiny_model

import pixelnerf.render as R
from pixelnerf.errors import PipelineError
from pixelnerf.render.sampling import depths_around, importance_depths, stratified_depths


def scene_rays(num_objects: int = 2, size: int = 6) -> torch.Tensor:
    poses = torch.stack([look_at_origin(1.1 + o, 0.2, 2.0) for o in range(num_objects)])
    return R.image_rays(poses, size, size, 8.0, 0.8, 3.2).reshape(num_objects, -1, 8)


def test_image_rays_are_unit_and_centre_ray_looks_forward():
    pose = look_at_origin(0.3, 0.4, 2.0)
    rays = R.image_rays(
        pose[None], 5, 7, torch.tensor([10.0, 12.0]), 0.5, 3.0, c=torch.tensor([3.0, 2.0])
    )
    assert rays.shape == (1, 5, 7, 8)
    torch.testing.assert_close(rays[..., 3:6].norm(dim=-1), torch.ones(1, 5, 7))
    torch.testing.assert_close(rays[0, 2, 3, 3:6], -pose[:3, 2])  # pixel (3, 2) = principal point
    torch.testing.assert_close(rays[0, 0, 0, :3], pose[:3, 3])
    assert rays[0, 0, 0, 6].item() == 0.5 and rays[0, 0, 0, 7].item() == 3.0


def test_stratified_depths_one_per_bin():
    rays = scene_rays().reshape(-1, 8)
    z = stratified_depths(rays, 8, lindisp=False, generator=torch.Generator().manual_seed(0))
    fractions = (z - 0.8) / (3.2 - 0.8)
    bins = torch.floor(fractions * 8)
    assert torch.equal(bins, torch.arange(8.0).expand_as(bins))


def test_importance_depths_follow_the_weights():
    rays = scene_rays(num_objects=1, size=4).reshape(-1, 8)
    weights = torch.zeros(rays.shape[0], 16)
    weights[:, 5] = 1.0
    z = importance_depths(
        rays, weights, 64, lindisp=False, generator=torch.Generator().manual_seed(0)
    )
    fractions = (z - 0.8) / (3.2 - 0.8)
    in_bin = ((fractions >= 5 / 16) & (fractions < 6 / 16)).float().mean()
    assert in_bin > 0.95  # the 1e-5 weight floor leaves only a sliver elsewhere


def test_depths_around_are_clamped_to_the_ray():
    rays = scene_rays(num_objects=1, size=2).reshape(-1, 8)
    depth = torch.tensor([0.1, 0.81, 2.0, 9.0])
    z = depths_around(rays, depth, 100, std=0.5, generator=torch.Generator().manual_seed(0))
    assert bool((z >= 0.8).all() and (z <= 3.2).all())
    near_empty = depths_around(
        rays[:1], depth[:1], 100, std=0.01, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(near_empty[0], torch.full((100,), 0.8))  # a near-empty ray's depth


class ConstantField(torch.nn.Module):
    """A field of constant density and colour, for closed-form compositing checks."""

    def __init__(self, sigma: float, rgb: tuple[float, float, float]) -> None:
        super().__init__()
        self.value = torch.tensor([*rgb, sigma])

    def forward(self, xyz, coarse=True, viewdirs=None):
        return self.value.expand(*xyz.shape[:-1], 4)


@pytest.mark.parametrize("white_bkgd", [True, False])
def test_composite_matches_closed_form(white_bkgd):
    renderer = R.Renderer.from_config({"white_bkgd": white_bkgd})
    rays = scene_rays(num_objects=1, size=3)
    z = torch.linspace(0.8, 3.0, 40).expand(1, rays.shape[1], 40)
    sigma, colour = 0.7, (0.2, 0.5, 0.9)
    weights, rgb, _ = renderer.composite(ConstantField(sigma, colour), rays, z)
    opacity = 1 - torch.exp(torch.tensor(-sigma * (3.2 - 0.8)))
    torch.testing.assert_close(weights.sum(-1), opacity.expand(1, rays.shape[1]), atol=1e-5, rtol=0)
    background = (1 - opacity) if white_bkgd else 0.0
    expected = torch.tensor(colour) * opacity + background
    torch.testing.assert_close(rgb[0], expected.expand(rays.shape[1], 3), atol=1e-5, rtol=0)


def test_empty_space_renders_background():
    for white, value in ((True, 1.0), (False, 0.0)):
        out = R.Renderer.from_config({"white_bkgd": white})(
            ConstantField(0.0, (0.3, 0.3, 0.3)), scene_rays()
        )
        assert torch.equal(out["fine"]["rgb"], torch.full_like(out["fine"]["rgb"], value))


def test_output_shapes():
    model = tiny_model()
    encoded_scene(model)
    rays = scene_rays()
    with torch.no_grad():
        out = R.Renderer.from_config({"n_coarse": 8, "n_fine": 6, "n_fine_depth": 2})(model, rays)
    assert out["coarse"]["rgb"].shape == (2, 36, 3) and out["coarse"]["depth"].shape == (2, 36)
    assert out["coarse"]["weights"].shape == (2, 36, 8)
    assert out["fine"]["weights"].shape == (2, 36, 14)


def test_no_fine_pass_when_n_fine_is_zero():
    out = R.Renderer.from_config({"n_fine": 0, "n_fine_depth": 0})(
        ConstantField(1.0, (0, 0, 0)), scene_rays()
    )
    assert set(out) == {"coarse"}


def test_generator_makes_renders_repeatable_and_chunking_invisible():
    model = tiny_model()
    encoded_scene(model)
    rays = scene_rays()

    def render(seed: int, chunk: int) -> torch.Tensor:
        renderer = R.Renderer.from_config(
            {"n_coarse": 16, "n_fine": 8, "n_fine_depth": 4, "chunk_points": chunk}
        )
        with torch.no_grad():
            return renderer(model, rays, generator=torch.Generator().manual_seed(seed))["fine"][
                "rgb"
            ]

    reference = render(seed=7, chunk=1 << 20)
    assert torch.equal(reference, render(seed=7, chunk=1 << 20))
    torch.testing.assert_close(render(seed=7, chunk=100), reference, rtol=0, atol=1e-6)
    assert not torch.equal(render(seed=8, chunk=1 << 20), reference)


def test_bad_renderer_config_names_the_key(project_root):
    from pixelnerf.config import EXPERIMENT_SCHEMA, load_yaml, validate

    experiment = load_yaml(project_root / "config" / "experiments" / "demo.yaml")
    renderer = {**experiment["renderer"], "n_corse": 64}
    with pytest.raises(PipelineError, match="key renderer: .*'n_corse' was unexpected"):
        validate({**experiment, "renderer": renderer}, EXPERIMENT_SCHEMA, "demo.yaml")
    with pytest.raises(PipelineError, match="n_fine_depth"):
        R.Renderer.from_config({"n_fine": 4, "n_fine_depth": 8})
