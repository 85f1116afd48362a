"""The renderer sizes its network calls from the device once per view count: later calls
keep that size even when the device reports less free memory."""

from __future__ import annotations

from types import SimpleNamespace

import torch

import pixelnerf.render.renderer as renderer_module
from pixelnerf.render import Renderer


def test_a_sized_chunk_is_kept_per_device_and_view_count(monkeypatch) -> None:
    free = iter([40_000, 20_000, 10_000, 5_000])
    asked = []

    def shrinking(device: torch.device, views: int) -> int:
        asked.append(views)
        return next(free) // views

    monkeypatch.setattr(renderer_module, "default_chunk_points", shrinking)
    renderer = Renderer.from_config({})
    one_view = SimpleNamespace(sources=SimpleNamespace(num_views=1))
    two_views = SimpleNamespace(sources=SimpleNamespace(num_views=2))
    cpu = torch.device("cpu")
    assert [renderer.chunk_points(one_view, cpu) for _ in range(3)] == [40_000] * 3
    assert renderer.chunk_points(two_views, cpu) == 10_000
    assert renderer.chunk_points(one_view, cpu) == 40_000
    assert asked == [1, 2]


def test_a_configured_chunk_is_used_as_given() -> None:
    renderer = Renderer.from_config({"chunk_points": 1234})
    model = SimpleNamespace(sources=SimpleNamespace(num_views=3))
    assert renderer.chunk_points(model, torch.device("cpu")) == 1234
