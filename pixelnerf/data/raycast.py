"""An exact renderer for the demo dataset: ray-primitive intersection and Lambertian shading.

Primitives are boxes, cylinders and ellipsoids, each a unit shape (cube [-1, 1]^3, cylinder
x^2 + y^2 <= 1 with |z| <= 1, unit sphere) scaled per axis by ``size``, rotated by
``rotation`` (local -> world) and moved to ``centre``. A ray is mapped into the unit
shape's frame, where the ray parameter ``t`` is unchanged, so the nearest hit over all
primitives is exact. Call chain: render_rays -> intersect -> _hit_box | _hit_cylinder |
_hit_sphere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

KINDS = ("box", "cylinder", "ellipsoid")
# Hits closer than this along the ray are ignored (the camera is outside every primitive).
MIN_DISTANCE = 1e-6


@dataclass(frozen=True)
class Primitive:
    """One coloured solid: ``kind`` in KINDS, ``centre (3,)``, ``size (3,)`` (half extents;
    for a cylinder the two radii and the half height along its local z), ``rotation (3, 3)``
    local -> world, ``colour (3,)`` albedo in [0, 1]."""

    kind: str
    centre: np.ndarray
    size: np.ndarray
    colour: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown primitive kind {self.kind!r}")
        if np.any(np.asarray(self.size) <= 0):
            raise ValueError(f"primitive sizes must be positive, not {self.size}")


def scaled(primitive: Primitive, factor: float) -> Primitive:
    """The primitive scaled by ``factor`` about the world origin."""
    return replace(primitive, centre=np.asarray(primitive.centre) * factor,
                   size=np.asarray(primitive.size) * factor)


def _hit_box(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit cube, slab method. o, d: (N, 3) -> t (N,) (inf = miss), normal (N, 3)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1, t2 = (-1.0 - o) * inv, (1.0 - o) * inv
    t_enter, t_exit = np.minimum(t1, t2), np.maximum(t1, t2)
    t_near, t_far = t_enter.max(axis=1), t_exit.min(axis=1)
    hit = (t_near <= t_far) & (t_near > MIN_DISTANCE)
    axis = t_enter.argmax(axis=1)
    normal = np.zeros_like(o)
    rows = np.arange(len(o))
    normal[rows, axis] = -np.sign(d[rows, axis])
    return np.where(hit, t_near, np.inf), normal


def _hit_cylinder(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit cylinder along z with caps. o, d: (N, 3) -> t (N,), normal (N, 3)."""
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = 2.0 * (o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1])
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - 1.0
    disc = b * b - 4.0 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
        side_ok = (a > 0) & (disc >= 0) & (np.abs(o[:, 2] + t_side * d[:, 2]) <= 1.0)
        t_side = np.where(side_ok & (t_side > MIN_DISTANCE), t_side, np.inf)
        # The cap facing the ray: z = -sign(dz).
        cap_z = -np.sign(d[:, 2])
        t_cap = (cap_z - o[:, 2]) / d[:, 2]
    p_cap = o + t_cap[:, None] * d
    cap_ok = (d[:, 2] != 0) & (p_cap[:, 0] ** 2 + p_cap[:, 1] ** 2 <= 1.0) & (t_cap > MIN_DISTANCE)
    t_cap = np.where(cap_ok, t_cap, np.inf)
    use_cap = t_cap < t_side
    t = np.minimum(t_side, t_cap)
    p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    normal = np.stack([p[:, 0], p[:, 1], np.zeros_like(t)], axis=1)
    normal[use_cap] = np.stack([np.zeros(use_cap.sum()), np.zeros(use_cap.sum()),
                                cap_z[use_cap]], axis=1)
    return t, normal


def _hit_sphere(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere. o, d: (N, 3) -> t (N,), normal (N, 3)."""
    a = (d * d).sum(axis=1)
    b = 2.0 * (o * d).sum(axis=1)
    c = (o * o).sum(axis=1) - 1.0
    disc = b * b - 4.0 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    t = np.where((disc >= 0) & (t > MIN_DISTANCE), t, np.inf)
    normal = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    return t, normal


_HIT = {"box": _hit_box, "cylinder": _hit_cylinder, "ellipsoid": _hit_sphere}


def intersect(primitive: Primitive, origins: np.ndarray, directions: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of rays with one primitive. origins, directions: (N, 3) world ->
    t (N,) (inf = miss; the hit point is ``origin + t * direction``), unit normals (N, 3)."""
    size = np.asarray(primitive.size, dtype=np.float64)
    rotation = np.asarray(primitive.rotation, dtype=np.float64)
    # Row vectors: x_local = R^T (x - c) is (x - c) @ R; then scale to the unit shape.
    o = (origins - primitive.centre) @ rotation / size
    d = directions @ rotation / size
    t, normal_unit = _HIT[primitive.kind](o, d)
    # Normals of a scaled shape scale by the inverse size, then rotate back to the world.
    normal = (normal_unit / size) @ rotation.T
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    return t, normal / np.where(length > 0, length, 1.0)


def _near_sphere(primitive: Primitive, origins: np.ndarray, directions: np.ndarray
                 ) -> np.ndarray:
    """Rays ``(N,)`` bool that pass within the primitive's bounding sphere (radius = the
    length of ``size``, which encloses every shape), so exact tests run on few rays only."""
    offset = primitive.centre - origins
    along = np.einsum("ij,ij->i", offset, directions)
    lengths = np.einsum("ij,ij->i", directions, directions)
    squared = np.einsum("ij,ij->i", offset, offset) - along * along / lengths
    return squared <= float(np.sum(np.square(primitive.size)))


def render_rays(
    primitives: list[Primitive],
    origins: np.ndarray,
    directions: np.ndarray,
    light_direction: np.ndarray,
    ambient: float,
    diffuse: float,
    background: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shade rays against a scene. origins, directions: (N, 3) ->
    colour (N, 3) in [0, 1] (``albedo * (ambient + diffuse * max(0, n.l))`` where hit, else
    ``background``), hit mask (N,) bool, depth t (N,) (inf where missed)."""
    best_t = np.full(len(origins), np.inf)
    best_normal = np.zeros_like(origins)
    best_colour = np.tile(np.asarray(background, dtype=np.float64), (len(origins), 1))
    for primitive in primitives:
        rays = np.flatnonzero(_near_sphere(primitive, origins, directions))
        t, normal = intersect(primitive, origins[rays], directions[rays])
        closer = t < best_t[rays]
        rays = rays[closer]
        best_t[rays] = t[closer]
        best_normal[rays] = normal[closer]
        best_colour[rays] = primitive.colour
    hit = np.isfinite(best_t)
    # Light both sides of thin parts alike: a normal always faces the camera.
    facing = np.where((best_normal * directions).sum(axis=1, keepdims=True) > 0, -1.0, 1.0)
    light = np.asarray(light_direction, dtype=np.float64)
    light = light / np.linalg.norm(light)
    lambert = np.maximum((best_normal * facing) @ light, 0.0)
    shade = ambient + diffuse * lambert
    colour = np.where(hit[:, None], best_colour * shade[:, None], best_colour)
    return np.clip(colour, 0.0, 1.0), hit, best_t
