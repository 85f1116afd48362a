"""Camera rays of whole images, in the published convention (no half-pixel offset)."""

from __future__ import annotations

import torch


def pixel_directions(
    height: int,
    width: int,
    focal: torch.Tensor | float,
    c: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Unit ray directions in camera axes (x right, y up, looking along -z).

    focal: scalar or (2,) as (fx, fy); c: None (image centre) or (2,) as (cx, cy)
    -> (H, W, 3). Pixel (u, v) sits at integer coordinates.
    """
    focal = torch.as_tensor(focal, dtype=torch.float32).reshape(-1).expand(2)
    center = (
        torch.tensor([width * 0.5, height * 0.5])
        if c is None
        else torch.as_tensor(c, dtype=torch.float32).reshape(2)
    )
    y = (torch.arange(height, dtype=torch.float32) - float(center[1])) / float(focal[1])
    x = (torch.arange(width, dtype=torch.float32) - float(center[0])) / float(focal[0])
    grid_y, grid_x = torch.meshgrid(y, x, indexing="ij")
    dirs = torch.stack((grid_x, -grid_y, -torch.ones_like(grid_x)), dim=-1)
    return (dirs / dirs.norm(dim=-1, keepdim=True)).to(device)


def image_rays(
    poses: torch.Tensor,
    height: int,
    width: int,
    focal: torch.Tensor | float,
    near: float,
    far: float,
    c: torch.Tensor | None = None,
) -> torch.Tensor:
    """Rays of every pixel of each pose.

    poses: (N, 4, 4) camera->world; focal: scalar or (2,); c: None or (2,)
    -> (N, H, W, 8) as [origin (3), unit direction (3), near, far].
    """
    dirs_cam = pixel_directions(height, width, focal, c, poses.device)  # (H, W, 3)
    dirs = torch.matmul(poses[:, None, None, :3, :3], dirs_cam.unsqueeze(-1))[..., 0]
    origins = poses[:, None, None, :3, 3].expand_as(dirs)
    bounds = dirs.new_tensor([near, far]).expand(*dirs.shape[:-1], 2)
    return torch.cat((origins, dirs, bounds), dim=-1)
