"""Unit tests of the network: encoding, projection, view combination, argument forms."""

from __future__ import annotations

import pytest
import torch
from helpers.model import encoded_scene, look_at_origin, tiny_config, tiny_model

from pixelnerf.errors import PipelineError
from pixelnerf.model import PixelNeRF
from pixelnerf.model.encoding import PositionalEncoding


def test_positional_encoding_is_sin_cos_of_scaled_input():
    code = PositionalEncoding(num_freqs=3, d_in=3, freq_factor=1.5, include_input=True)
    x = torch.tensor([[0.1, -0.4, 0.7]])
    expected = [x[0]]
    for k in range(3):
        f = 1.5 * 2**k
        expected += [torch.sin(f * x[0]), torch.cos(f * x[0])]
    torch.testing.assert_close(code(x)[0], torch.cat(expected), rtol=0, atol=1e-6)
    assert code.d_out == 21


def test_state_dict_has_published_layout():
    keys = PixelNeRF.from_config(tiny_config()).state_dict().keys()
    assert "code._freqs" in keys and "code._phases" in keys
    assert "encoder.model.layer4.0.conv1.weight" in keys  # unused but published
    assert "mlp_coarse.lin_z.1.weight" in keys and "mlp_coarse.lin_z.2.weight" not in keys
    assert not any(key.startswith("encoder.model.fc") for key in keys)


def test_point_on_optical_axis_projects_to_principal_point():
    model = tiny_model()
    pose = look_at_origin(0.4, 0.2, 2.5)
    images = torch.zeros(1, 1, 3, 32, 48)
    model.encode(images, pose[None, None], 40.0, c=torch.tensor([20.0, 14.0]))
    on_axis = pose[:3, 3] - 1.3 * pose[:3, 2]  # in front of the camera, along -z
    _, uv = model.point_inputs(on_axis[None, None], torch.zeros(1, 1, 3))
    torch.testing.assert_close(uv[0, 0, 0], torch.tensor([20.0, 14.0]), rtol=0, atol=1e-4)


def test_point_right_and_up_of_axis_lands_right_and_above():
    model = tiny_model()
    pose = look_at_origin(0.0, 0.0, 2.0)
    model.encode(torch.zeros(1, 1, 3, 32, 32), pose[None, None], 32.0)
    point = pose[:3, 3] - 2.0 * pose[:3, 2] + 0.25 * pose[:3, 0] + 0.125 * pose[:3, 1]
    _, uv = model.point_inputs(point[None, None], torch.zeros(1, 1, 3))
    # x right by f * 0.25 / 2 pixels; image y points down, so "up" lowers v.
    torch.testing.assert_close(
        uv[0, 0, 0], torch.tensor([16.0 + 4.0, 16.0 - 2.0]), atol=1e-4, rtol=0
    )


@pytest.mark.parametrize("combine_type", ["average", "max"])
def test_forward_shapes_and_ranges(combine_type):
    model = tiny_model(combine_type=combine_type)
    encoded_scene(model, num_objects=2, num_views=3)
    xyz = torch.rand(2, 50, 3) - 0.5
    with torch.no_grad():
        out = model(xyz, coarse=True, viewdirs=torch.nn.functional.normalize(xyz, dim=-1))
    assert out.shape == (2, 50, 4)
    assert bool(
        (out[..., :3] >= 0).all() and (out[..., :3] <= 1).all() and (out[..., 3] >= 0).all()
    )


def test_view_order_does_not_matter_for_average():
    model = tiny_model()
    images, poses, focal = encoded_scene(model, num_objects=1, num_views=3)
    xyz = torch.rand(1, 20, 3) - 0.5
    dirs = torch.nn.functional.normalize(torch.rand(1, 20, 3), dim=-1)
    with torch.no_grad():
        out = model(xyz, viewdirs=dirs)
        order = torch.tensor([2, 0, 1])
        model.encode(images[:, order], poses[:, order], focal)
        permuted = model(xyz, viewdirs=dirs)
    torch.testing.assert_close(out, permuted, rtol=0, atol=1e-5)


def test_focal_and_centre_forms_agree():
    model = tiny_model()
    images, poses, _ = encoded_scene(model, num_objects=2, num_views=1)
    xyz = torch.rand(2, 10, 3) - 0.5
    dirs = torch.nn.functional.normalize(torch.rand(2, 10, 3), dim=-1)
    outputs = []
    for focal, c in [
        (torch.tensor(30.0), None),
        (torch.tensor([30.0, 30.0]), torch.tensor([16.0, 16.0])),
        (torch.tensor([[30.0, 30.0], [30.0, 30.0]]), torch.tensor([[16.0, 16.0], [16.0, 16.0]])),
    ]:
        with torch.no_grad():
            model.encode(images, poses, focal, c)
            outputs.append(model(xyz, viewdirs=dirs))
    for other in outputs[1:]:
        torch.testing.assert_close(outputs[0], other, rtol=0, atol=1e-6)


def test_query_before_encode_is_one_clear_error():
    model = tiny_model()
    with pytest.raises(PipelineError, match="encode"):
        model(torch.zeros(1, 4, 3), viewdirs=torch.zeros(1, 4, 3))


def test_unsupported_settings_name_the_key():
    cfg = tiny_config()
    cfg["mlp_coarse"]["combine_type"] = "median"
    model = PixelNeRF.from_config(cfg).eval()
    encoded_scene(model, num_objects=1, num_views=2)
    with pytest.raises(PipelineError, match="combine_type"):
        model(torch.zeros(1, 4, 3), viewdirs=torch.zeros(1, 4, 3))
    cfg = tiny_config()
    cfg["encoder"]["backbone"] = "vgg16"
    with pytest.raises(PipelineError, match="backbone"):
        PixelNeRF.from_config(cfg)


def test_first_pool_changes_deeper_levels_only():
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        pooled = tiny_model(seed=3, use_first_pool=True).encoder(images)
        unpooled = tiny_model(seed=3, use_first_pool=False).encoder(images)
    # Level 0 (conv1, stride 2) fixes the latent's size either way; the pool changes layer1+.
    assert pooled.shape == unpooled.shape == (1, 512, 16, 16)
    torch.testing.assert_close(pooled[:, :64], unpooled[:, :64])
    assert not torch.allclose(pooled[:, 64:], unpooled[:, 64:])


def test_bilinear_rows_equal_grid_sample_everywhere():
    from pixelnerf.model.encoder import bilinear_rows, channels_last_table

    generator = torch.Generator().manual_seed(0)
    feature_map = torch.randn(3, 5, 6, 7, generator=generator)
    grid = torch.rand(3, 200, 2, generator=generator) * 3 - 1.5  # inside and beyond the border
    grid[0, :4] = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0], [0.0, 1.0]])  # edges
    grid[1, :3] = torch.tensor([[float("nan"), 0.0], [float("inf"), 0.2], [0.1, -float("inf")]])
    expected = torch.nn.functional.grid_sample(
        feature_map, grid.unsqueeze(2), mode="bilinear", padding_mode="border",
        align_corners=True,
    )[..., 0].transpose(1, 2)
    rows = bilinear_rows(channels_last_table(feature_map), grid, 6, 7)
    torch.testing.assert_close(rows, expected, rtol=0, atol=1e-6)


def test_bilinear_rows_gradients_equal_grid_sample():
    """Training samples the latent through rows too: its gradients must be grid_sample's."""
    from pixelnerf.model.encoder import bilinear_rows, channels_last_table

    generator = torch.Generator().manual_seed(1)
    feature_map = torch.randn(2, 5, 6, 7, generator=generator, dtype=torch.float64)
    grid = torch.rand(2, 300, 2, generator=generator, dtype=torch.float64) * 1.9 - 0.95
    feature_map.requires_grad_()
    grid.requires_grad_()
    upstream = torch.randn(2, 300, 5, generator=generator, dtype=torch.float64)
    expected = torch.nn.functional.grid_sample(
        feature_map, grid.unsqueeze(2), mode="bilinear", padding_mode="border",
        align_corners=True,
    )[..., 0].transpose(1, 2)
    expected_grads = torch.autograd.grad(expected, (feature_map, grid), upstream)
    rows = bilinear_rows(channels_last_table(feature_map), grid, 6, 7)
    row_grads = torch.autograd.grad(rows, (feature_map, grid), upstream)
    for got, want in zip(row_grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
