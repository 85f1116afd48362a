"""Camera paths for videos, as camera-to-world poses in the renderer's axes.

Every pose is ``(4, 4)``: camera x right, y up, looking along its -z (the axes of
``pixelnerf.render.image_rays``). Two paths reproduce the published ``gen_video``:

- ``loop_poses``: a 360-degree loop around the origin at a fixed elevation (ShapeNet, SRN,
  two chairs). Azimuths run over [-180, 180) degrees, the elevation is in degrees with
  negative above the horizon (the published sign), the world is z up, and azimuth 0 puts
  the camera on +y. ``y_up=True`` gives the same loop in a y-up world (the single-photo
  frame of ``pixelnerf real``, where the input camera sits on +z).
- ``dtu_spline_poses``: a closed periodic cubic spline through five fixed key orientations
  (the IDR trajectory the published code uses for DTU), the camera at a fixed distance from
  the origin along its viewing axis.

Call chain: loop_poses -> orbit_pose -> look_at; dtu_spline_poses -> quaternions_to_matrices.
"""

from __future__ import annotations

import numpy as np
import torch

from pixelnerf.errors import PipelineError

# The IDR DTU camera trajectory used by the published gen_video: key times and key
# orientations as unit quaternions (w, x, y, z); the last key repeats the first, closing the
# loop. This is the path's definition (data), not a tunable.
DTU_KEY_TIMES = (0.0, 2.0, 3.0, 5.0, 6.0)
DTU_KEY_QUATERNIONS = (
    (0.9698, 0.2121, 0.1203, -0.0039),
    (0.7020, 0.1578, 0.4525, 0.5268),
    (0.6766, 0.3176, 0.5179, 0.4161),
    (0.9085, 0.4020, 0.1139, -0.0025),
    (0.9698, 0.2121, 0.1203, -0.0039),
)

# (x, y, z) of the z-up world -> the y-up world: z becomes y, y becomes -z.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _check_frames(frames: int) -> None:
    if int(frames) < 1:
        raise PipelineError(f"video.frames must be at least 1, not {frames}")


def look_at(position: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Camera at ``position (3,)`` looking at the origin, no roll about ``up (3,)`` -> (4, 4)."""
    back = position / np.linalg.norm(position)
    right = np.cross(up, back)
    norm = np.linalg.norm(right)
    if norm < 1e-8:
        raise PipelineError("camera path: a camera looks straight along the up axis")
    right = right / norm
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, np.cross(back, right), back
    pose[:3, 3] = position
    return pose


def orbit_pose(azimuth: float, elevation: float, radius: float, y_up: bool = False) -> np.ndarray:
    """One camera of the published orbit -> ``(4, 4)`` float64.

    azimuth, elevation in degrees (elevation negative above the horizon); the z-up position is
    ``radius * (sin az cos el, cos az cos el, -sin el)``.
    """
    if radius <= 0:
        raise PipelineError(f"camera path: radius must be positive, not {radius}")
    az, el = np.radians(azimuth), np.radians(elevation)
    position = radius * np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), -np.sin(el)])
    pose = look_at(position, np.array([0.0, 0.0, 1.0]))
    if y_up:
        # Rotating the whole world keeps the look-at geometry: rotate axes and position alike.
        pose[:3, :] = Z_UP_TO_Y_UP @ pose[:3, :]
    return pose


def loop_poses(frames: int, elevation: float, radius: float, y_up: bool = False) -> torch.Tensor:
    """The published 360-degree loop: ``frames`` azimuths evenly over [-180, 180) -> (F, 4, 4)."""
    _check_frames(frames)
    azimuths = np.linspace(-180.0, 180.0, int(frames) + 1)[:-1]
    poses = np.stack([orbit_pose(a, elevation, radius, y_up) for a in azimuths])
    return torch.from_numpy(poses).float()


def quaternions_to_matrices(quaternions: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(N, 4)`` as (w, x, y, z) -> rotation matrices ``(N, 3, 3)``."""
    q = quaternions / np.linalg.norm(quaternions, axis=-1, keepdims=True)
    w, v = q[:, 0], q[:, 1:]
    # R = (w^2 - |v|^2) I + 2 v v^T + 2 w [v]_x  (the Euler-Rodrigues form)
    eye = np.eye(3)[None]
    outer = v[:, :, None] * v[:, None, :]
    cross = np.zeros((len(q), 3, 3))
    cross[:, 0, 1], cross[:, 0, 2] = -v[:, 2], v[:, 1]
    cross[:, 1, 0], cross[:, 1, 2] = v[:, 2], -v[:, 0]
    cross[:, 2, 0], cross[:, 2, 1] = -v[:, 1], v[:, 0]
    scalar = (w**2 - np.sum(v**2, axis=-1))[:, None, None]
    return scalar * eye + 2.0 * outer + 2.0 * w[:, None, None] * cross


def dtu_spline_poses(frames: int, distance: float) -> torch.Tensor:
    """The published DTU path: ``frames`` poses evenly over one period of the closed spline.

    The quaternion components are interpolated by a periodic cubic spline through the key
    orientations, renormalised, and each camera sits at ``distance`` along its +z axis (it
    looks at the origin) -> (F, 4, 4).
    """
    from scipy.interpolate import CubicSpline

    _check_frames(frames)
    if distance <= 0:
        raise PipelineError(f"camera path: distance must be positive, not {distance}")
    times = np.asarray(DTU_KEY_TIMES)
    spline = CubicSpline(times, np.asarray(DTU_KEY_QUATERNIONS), bc_type="periodic")
    # One period without its end point: the end equals the start, so a looping video does
    # not show the same frame twice.
    samples = np.linspace(times[0], times[-1], int(frames), endpoint=False)
    rotations = quaternions_to_matrices(spline(samples))
    poses = np.tile(np.eye(4), (len(samples), 1, 1))
    poses[:, :3, :3] = rotations
    poses[:, :3, 3] = rotations[:, :, 2] * distance
    return torch.from_numpy(poses).float()
