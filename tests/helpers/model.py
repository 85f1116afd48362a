"""Small models and scenes shared by the model and renderer unit tests."""

from __future__ import annotations

import math

import torch

from pixelnerf.model import PixelNeRF

TINY_HIDDEN = 16


def tiny_config(combine_type: str = "average", use_first_pool: bool = False) -> dict:
    """The published model layout, narrow so tests run in milliseconds."""
    mlp = {
        "type": "resnet",
        "n_blocks": 3,
        "d_hidden": TINY_HIDDEN,
        "combine_layer": 2,
        "combine_type": combine_type,
    }
    return {
        "use_encoder": True,
        "use_xyz": True,
        "use_code": True,
        "use_viewdirs": True,
        "use_code_viewdirs": False,
        "code": {"num_freqs": 6, "freq_factor": 1.5, "include_input": True},
        "mlp_coarse": dict(mlp),
        "mlp_fine": dict(mlp),
        "encoder": {
            "backbone": "resnet34",
            "pretrained": False,
            "num_layers": 4,
            "use_first_pool": use_first_pool,
        },
    }


def look_at_origin(azimuth: float, elevation: float, radius: float) -> torch.Tensor:
    """Camera->world pose (4, 4) looking at the origin (x right, y up, -z forward)."""
    eye = torch.tensor(
        [
            radius * math.cos(elevation) * math.sin(azimuth),
            radius * math.sin(elevation),
            radius * math.cos(elevation) * math.cos(azimuth),
        ]
    )
    back = eye / eye.norm()
    right = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), back)
    right = right / right.norm()
    up = torch.linalg.cross(back, right)
    pose = torch.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, back, eye
    return pose


def tiny_model(seed: int = 0, **kwargs) -> PixelNeRF:
    torch.manual_seed(seed)
    model = PixelNeRF.from_config(tiny_config(**kwargs)).eval()
    # fc_1 starts at zero; give every layer weights so outputs depend on every input.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith("mlp") and "fc_1" in name:
                param.normal_(0.0, 0.05)
    return model


def encoded_scene(model: PixelNeRF, num_objects: int = 2, num_views: int = 2, size: int = 32):
    """Random images seen from cameras around the origin; returns (images, poses, focal)."""
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(num_objects, num_views, 3, size, size, generator=generator) * 2 - 1
    poses = torch.stack(
        [
            torch.stack([look_at_origin(0.7 * v + 0.3 * o, 0.3, 2.0) for v in range(num_views)])
            for o in range(num_objects)
        ]
    )
    focal = torch.tensor(size * 1.2)
    with torch.no_grad():
        model.encode(images, poses, focal)
    return images, poses, focal


def planned(model: PixelNeRF, config: dict, plan) -> PixelNeRF:
    """A model of ``config`` built with ``plan`` (kernel, compilation), holding ``model``'s
    weights and encoded source views, in eval mode."""
    copy = PixelNeRF.from_config(config, plan=plan).eval()
    copy.load_state_dict(model.state_dict())
    copy.sources = model.sources
    return copy.to(next(model.parameters()).device)
