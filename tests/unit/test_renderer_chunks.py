"""Points a network call: sized from the device once per job (its plan), per view count,
kept by every later call however much free memory the device reports then."""

from __future__ import annotations

from types import SimpleNamespace

import torch

import pixelnerf.render.plan as plan_module
from pixelnerf.model.plan import InferencePlan
from pixelnerf.render import Renderer, resolve_plan
from pixelnerf.render.memory import (
    BYTES_PER_POINT_VIEW,
    CPU_CHUNK_POINTS,
    MAX_CHUNK_POINTS,
    MIN_CHUNK_POINTS,
    points_per_call,
)


def test_the_device_is_measured_once_per_plan(monkeypatch) -> None:
    free = iter([40_000 * BYTES_PER_POINT_VIEW, 20_000 * BYTES_PER_POINT_VIEW])
    asked = []

    def measured(device: torch.device) -> int:
        asked.append(device)
        return next(free)

    monkeypatch.setattr(plan_module, "chunk_memory", measured)
    plan = resolve_plan({}, torch.device("cpu"))
    renderer = Renderer.from_config({}, plan)
    one_view = SimpleNamespace(sources=SimpleNamespace(num_views=1))
    two_views = SimpleNamespace(sources=SimpleNamespace(num_views=2))
    assert [renderer.points_per_call(one_view) for _ in range(3)] == [40_000] * 3
    assert renderer.points_per_call(two_views) == 20_000
    assert renderer.points_per_call(one_view) == 40_000
    assert len(asked) == 1


def test_sizes_from_memory_are_clamped_and_a_cpu_takes_a_fixed_size() -> None:
    def plan(memory: int | None) -> InferencePlan:
        return InferencePlan(chunk_memory_bytes=memory)

    assert points_per_call(plan(None), 4) == CPU_CHUNK_POINTS
    assert points_per_call(plan(1), 1) == MIN_CHUNK_POINTS
    assert points_per_call(plan(1 << 50), 1) == MAX_CHUNK_POINTS
    bounded = InferencePlan(chunk_memory_bytes=1 << 50, max_memory_mb=1.0)
    assert points_per_call(bounded, 2) == (1 << 20) // (2 * BYTES_PER_POINT_VIEW)


def test_a_configured_chunk_is_used_as_given() -> None:
    cpu = torch.device("cpu")
    renderer = Renderer.from_config({"chunk_points": 1234},
                                    resolve_plan({"chunk_points": 1234}, cpu))
    model = SimpleNamespace(sources=SimpleNamespace(num_views=3))
    assert renderer.points_per_call(model) == 1234
