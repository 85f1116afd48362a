"""Procedural object categories for the demo dataset, built from boxes, cylinders and
ellipsoids with per-part colours.

Each builder takes a seeded ``numpy.random.Generator`` and returns the object's primitives
in the renderer's world axes (z up), centred on the origin and inside the cube
[-0.5, 0.5]^3 like normalised ShapeNet models. Proportions and colours are drawn per
object; the ranges below are the categories' design (what makes a chair a chair), so they
live here rather than in config. Call chain: build_object -> BUILDERS[category].
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable, Sequence

import numpy as np

from pixelnerf.data.raycast import Primitive

Vector = Sequence[float]
# Local z -> world y: wheels and other parts whose axis lies along y.
AXIS_Z_TO_Y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def colour(rng: np.random.Generator, saturation: tuple[float, float] = (0.45, 0.9),
           value: tuple[float, float] = (0.45, 0.95)) -> np.ndarray:
    """A random albedo ``(3,)``: uniform hue, saturation and value in the given ranges."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value))
    return np.array(rgb)


def dark(rng: np.random.Generator) -> np.ndarray:
    """A dark, weakly saturated albedo (legs, wheels, lamp stands)."""
    return colour(rng, saturation=(0.0, 0.35), value=(0.12, 0.35))


def box(centre: Vector, half: Vector, albedo: np.ndarray,
        rotation: np.ndarray | None = None) -> Primitive:
    """A box with half extents ``half``."""
    return Primitive("box", np.asarray(centre, float), np.asarray(half, float),
                     albedo, np.eye(3) if rotation is None else rotation)


def cylinder(centre: Vector, radius: float, half_height: float, albedo: np.ndarray,
             rotation: np.ndarray | None = None) -> Primitive:
    """A round cylinder along its local z (world z unless rotated)."""
    return Primitive("cylinder", np.asarray(centre, float),
                     np.array([radius, radius, half_height], float), albedo,
                     np.eye(3) if rotation is None else rotation)


def ellipsoid(centre: Vector, radii: Vector, albedo: np.ndarray) -> Primitive:
    """An axis-aligned ellipsoid with semi-axes ``radii``."""
    return Primitive("ellipsoid", np.asarray(centre, float), np.asarray(radii, float), albedo)


def _legs(rng: np.random.Generator, half_x: float, half_y: float, thickness: float,
          z_bottom: float, height: float, albedo: np.ndarray) -> list[Primitive]:
    """Four vertical legs at the corners of a rectangle, square or round at random."""
    round_legs = rng.uniform() < 0.5
    x, y = half_x - thickness / 2, half_y - thickness / 2
    z = z_bottom + height / 2
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            centre = (sx * x, sy * y, z)
            if round_legs:
                parts.append(cylinder(centre, thickness / 2, height / 2, albedo))
            else:
                parts.append(box(centre, (thickness / 2, thickness / 2, height / 2), albedo))
    return parts


def chair(rng: np.random.Generator) -> list[Primitive]:
    """Seat, backrest (at -y), four legs, arms on some."""
    width, depth = rng.uniform(0.45, 0.65), rng.uniform(0.45, 0.6)
    seat_height, seat_thick = rng.uniform(0.35, 0.5), rng.uniform(0.05, 0.09)
    back_height, back_thick = rng.uniform(0.3, 0.48), rng.uniform(0.04, 0.07)
    leg = rng.uniform(0.035, 0.06)
    bottom = -(seat_height + back_height) / 2
    seat_colour = colour(rng)
    back_colour = colour(rng) if rng.uniform() < 0.3 else seat_colour
    seat_top = bottom + seat_height
    parts = [
        box((0, 0, seat_top - seat_thick / 2), (width / 2, depth / 2, seat_thick / 2), seat_colour),
        box((0, -depth / 2 + back_thick / 2, seat_top + back_height / 2),
            (width / 2, back_thick / 2, back_height / 2), back_colour),
    ]
    parts += _legs(rng, width / 2, depth / 2, leg, bottom, seat_height - seat_thick, dark(rng))
    if rng.uniform() < 0.3:
        arm_height = rng.uniform(0.12, 0.2)
        for sx in (-1, 1):
            parts.append(box((sx * (width / 2 - leg / 2), 0, seat_top + arm_height / 2),
                             (leg / 2, depth / 2, arm_height / 2), back_colour))
    return parts


def table(rng: np.random.Generator) -> list[Primitive]:
    """A rectangular or round top on four legs or on a pedestal."""
    height, top_thick = rng.uniform(0.45, 0.7), rng.uniform(0.04, 0.08)
    bottom = -height / 2
    top_colour, leg_colour = colour(rng, value=(0.5, 0.95)), dark(rng)
    top_z = bottom + height - top_thick / 2
    round_top = rng.uniform() < 0.35
    if round_top:
        radius = rng.uniform(0.35, 0.5)
        parts = [cylinder((0, 0, top_z), radius, top_thick / 2, top_colour)]
        half_x = half_y = radius / np.sqrt(2)
    else:
        half_x, half_y = rng.uniform(0.35, 0.5), rng.uniform(0.22, 0.4)
        parts = [box((0, 0, top_z), (half_x, half_y, top_thick / 2), top_colour)]
    leg_height = height - top_thick
    if round_top or rng.uniform() < 0.25:
        foot_thick = rng.uniform(0.03, 0.05)
        parts.append(cylinder((0, 0, bottom + leg_height / 2), rng.uniform(0.035, 0.06),
                              leg_height / 2, leg_colour))
        parts.append(cylinder((0, 0, bottom + foot_thick / 2), rng.uniform(0.18, 0.3),
                              foot_thick / 2, leg_colour))
    else:
        parts += _legs(rng, half_x, half_y, rng.uniform(0.04, 0.08), bottom, leg_height,
                       leg_colour)
    return parts


def lamp(rng: np.random.Generator) -> list[Primitive]:
    """A base disc, a pole and a cylindrical or round shade."""
    base_radius, base_half = rng.uniform(0.12, 0.22), rng.uniform(0.02, 0.04)
    pole_radius, pole_height = rng.uniform(0.015, 0.03), rng.uniform(0.4, 0.6)
    shade_radius, shade_half = rng.uniform(0.14, 0.26), rng.uniform(0.08, 0.15)
    total = 2 * base_half + pole_height + shade_half
    bottom = -total / 2
    stand, shade_colour = dark(rng), colour(rng, saturation=(0.3, 0.8), value=(0.7, 1.0))
    top = bottom + 2 * base_half + pole_height
    parts = [
        cylinder((0, 0, bottom + base_half), base_radius, base_half, stand),
        cylinder((0, 0, bottom + 2 * base_half + pole_height / 2), pole_radius, pole_height / 2,
                 stand),
    ]
    shade_x = 0.0
    if rng.uniform() < 0.5:
        # A desk lamp: an arm carries the shade to one side (no rotational symmetry).
        reach = rng.uniform(0.15, 0.3)
        parts.append(box((reach / 2, 0, top), (reach / 2, pole_radius, pole_radius), stand))
        shade_x = reach
    if rng.uniform() < 0.5:
        parts.append(cylinder((shade_x, 0, top), shade_radius, shade_half, shade_colour))
    else:
        parts.append(ellipsoid((shade_x, 0, top), (shade_radius, shade_radius, shade_half * 1.3),
                               shade_colour))
    return parts


def car(rng: np.random.Generator) -> list[Primitive]:
    """A body (along x), a cabin and four wheels (cylinders along y)."""
    length, width = rng.uniform(0.8, 0.98), rng.uniform(0.36, 0.48)
    body_height, wheel_radius = rng.uniform(0.14, 0.22), rng.uniform(0.08, 0.11)
    wheel_half = rng.uniform(0.03, 0.05)
    cabin_length, cabin_height = rng.uniform(0.4, 0.6) * length, rng.uniform(0.11, 0.18)
    cabin_shift = rng.uniform(-0.12, 0.05) * length
    clearance = wheel_radius * 0.8
    total = clearance + body_height + cabin_height
    bottom = -total / 2
    body_colour = colour(rng, saturation=(0.6, 1.0))
    cabin_colour = (colour(rng, saturation=(0.05, 0.3), value=(0.6, 0.9))
                    if rng.uniform() < 0.6 else body_colour * 0.7)
    body_z = bottom + clearance + body_height / 2
    parts = [
        box((0, 0, body_z), (length / 2, width / 2, body_height / 2), body_colour),
        box((cabin_shift, 0, body_z + body_height / 2 + cabin_height / 2),
            (cabin_length / 2, width / 2 * rng.uniform(0.8, 0.95), cabin_height / 2),
            cabin_colour),
    ]
    tyre = dark(rng)
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(cylinder((sx * (length / 2 - wheel_radius * 1.3),
                                   sy * (width / 2 - wheel_half * 0.5), bottom + wheel_radius),
                                  wheel_radius, wheel_half, tyre, AXIS_Z_TO_Y))
    return parts


BUILDERS: dict[str, Callable[[np.random.Generator], list[Primitive]]] = {
    "chair": chair,
    "table": table,
    "lamp": lamp,
    "car": car,
}


def build_object(category: str, rng: np.random.Generator) -> list[Primitive]:
    """The primitives of one random object of ``category`` (a key of BUILDERS)."""
    return BUILDERS[category](rng)
