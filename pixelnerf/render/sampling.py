"""Depths along rays: stratified coarse samples, importance samples, samples around a depth.

All functions take rays (R, 8) flattened over objects and an optional torch.Generator (or a
``RowDraws`` for a share of a batch); random draws happen in the published order (coarse
offsets; importance u, then jitter; depth noise), so a seeded global RNG reproduces the
published renderer's draws.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class RowDraws:
    """A generator for part of a ray batch: each draw is made for all ``total`` rays of the
    batch and only the ``rows`` (``(R_part,)`` int64 indices into the batch's flat rays)
    are kept, so a process rendering its share of the rays gets the numbers the whole
    batch rendered at once would give those rays."""

    generator: torch.Generator
    total: int
    rows: torch.Tensor


Draws = torch.Generator | RowDraws | None


def _draw(sampler, shape: tuple[int, ...], like: torch.Tensor, generator: Draws) -> torch.Tensor:
    """``sampler`` (torch.rand or torch.randn) of ``shape`` on ``like``'s device and dtype,
    drawn from ``generator`` (on its own device) if given, else from torch's global RNG."""
    if generator is None:
        return sampler(shape, device=like.device, dtype=like.dtype)
    if isinstance(generator, RowDraws):
        source = generator.generator
        whole = sampler((generator.total, *shape[1:]), generator=source, device=source.device,
                        dtype=like.dtype)
        return whole[generator.rows.to(whole.device)].to(like.device)
    draw = sampler(shape, generator=generator, device=generator.device, dtype=like.dtype)
    return draw.to(like.device)


def uniform(
    shape: tuple[int, ...], like: torch.Tensor, generator: Draws
) -> torch.Tensor:
    """U(0, 1) of ``shape`` on ``like``'s device."""
    return _draw(torch.rand, shape, like, generator)


def normal(
    shape: tuple[int, ...], like: torch.Tensor, generator: Draws
) -> torch.Tensor:
    """N(0, 1) of ``shape`` on ``like``'s device."""
    return _draw(torch.randn, shape, like, generator)


def interpolate_depth(rays: torch.Tensor, steps: torch.Tensor, lindisp: bool) -> torch.Tensor:
    """Fractions ``steps`` (R, K) of the way from near to far (linear in depth or disparity)."""
    near, far = rays[:, 6:7], rays[:, 7:8]
    if lindisp:
        return 1.0 / (1.0 / near * (1.0 - steps) + 1.0 / far * steps)
    return near * (1.0 - steps) + far * steps


def stratified_depths(
    rays: torch.Tensor, n_samples: int, lindisp: bool, generator: Draws = None
) -> torch.Tensor:
    """One uniform sample in each of ``n_samples`` equal bins: rays (R, 8) -> (R, K)."""
    step = 1.0 / n_samples
    starts = torch.linspace(0.0, 1.0 - step, n_samples, device=rays.device, dtype=rays.dtype)
    steps = starts + uniform((rays.shape[0], n_samples), rays, generator) * step
    return interpolate_depth(rays, steps, lindisp)


def importance_depths(
    rays: torch.Tensor,
    weights: torch.Tensor,
    n_samples: int,
    lindisp: bool,
    generator: Draws = None,
    weight_floor: float = 1e-5,
) -> torch.Tensor:
    """Samples drawn from the piecewise-constant density of coarse ``weights`` (R, Kc) -> (R, n).

    As published: the bin index may reach Kc where u >= cdf[-1], giving depths past far.
    """
    n_bins = weights.shape[-1]
    weights = weights.detach() + weight_floor
    pdf = weights / weights.sum(dim=-1, keepdim=True)
    cdf = torch.cat((torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)), dim=-1)
    u = uniform((rays.shape[0], n_samples), rays, generator)
    bins = (torch.searchsorted(cdf, u.contiguous(), right=True).to(rays.dtype) - 1.0).clamp_min(0.0)
    steps = (bins + uniform(tuple(bins.shape), rays, generator)) / n_bins
    return interpolate_depth(rays, steps, lindisp)


def depths_around(
    rays: torch.Tensor,
    depth: torch.Tensor,
    n_samples: int,
    std: float,
    generator: Draws = None,
) -> torch.Tensor:
    """``depth`` (R,) plus N(0, std) noise, clamped to [near, far] -> (R, n)."""
    samples = depth.unsqueeze(1).expand(-1, n_samples)
    samples = samples + normal((rays.shape[0], n_samples), rays, generator) * std
    return torch.max(torch.min(samples, rays[:, 7:8]), rays[:, 6:7])
