"""Under load: a render given a ``chunk_points`` far too large for the device's memory backs
off to smaller chunks (same pixels, one warning line a halving) instead of dying; on a CPU,
``renderer.max_memory_mb`` bounds every network call."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from helpers.demo import TINY_DEMO, merged

from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.errors import PipelineError
from pixelnerf.eval.render import RenderJob, render_shard
from pixelnerf.io import atomic_torch_save
from pixelnerf.model import PixelNeRF
from pixelnerf.render.memory import (
    BYTES_PER_POINT_VIEW,
    halving_on_oom,
    is_out_of_memory,
    memory_capped,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")
SYNTH = {"categories": ["chair"], "train_objects": 1, "val_objects": 0, "test_objects": 2,
         "views": 3, "image_size": 8}
FITS = 300  # points a network call the injected device holds


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("memory")
    experiment = merged(yaml.safe_load(
        (PROJECT_ROOT / "config" / "experiments" / "demo.yaml").read_text()), TINY_DEMO)
    experiment["dataset"]["synth"] = SYNTH
    synthesize(SynthSettings.from_mapping(SYNTH), root / "data" / "demo")
    torch.manual_seed(0)
    model = PixelNeRF.from_config(experiment["model"], pretrained_encoder=False)
    atomic_torch_save(model.state_dict(), root / "model.pt")
    return {"root": root, "experiment": experiment}


def render(setup: dict, out: str, **renderer) -> dict[str, bytes]:
    experiment = merged(setup["experiment"], {"renderer": renderer})
    job = RenderJob.of_experiment(experiment, setup["root"] / "data", setup["root"] / "model.pt",
                                  setup["root"] / out)
    render_shard(job, "1v", 0, 1, CPU, progress=False)
    return {str(p.relative_to(setup["root"] / out)): p.read_bytes()
            for p in sorted((setup["root"] / out).rglob("*.png"))}


@pytest.fixture()
def calls(monkeypatch) -> list[int]:
    """Points of every network call; a call of more than FITS points runs out of memory."""
    seen: list[int] = []
    forward = PixelNeRF.forward

    def limited(self, xyz, *args, **kwargs):
        seen.append(xyz.shape[0] * xyz.shape[1])
        if seen[-1] > FITS:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        return forward(self, xyz, *args, **kwargs)

    monkeypatch.setattr(PixelNeRF, "forward", limited)
    return seen


def test_a_chunk_far_too_large_backs_off_and_renders_the_same(setup, calls, capsys) -> None:
    calls.append(0)  # the reference: chunks that fit from the start
    reference = render(setup, "fits", chunk_points=FITS)
    assert max(calls) <= FITS
    capsys.readouterr()
    calls.clear()
    assert render(setup, "huge", chunk_points=1 << 20) == reference
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "out of memory" in ln]
    # Halved down to what fits, once: every later call starts there instead of failing again.
    failures = sum(1 for n in calls if n > FITS)
    assert len(warnings) == failures >= 10
    assert all(n > FITS for n in calls[:failures]) and max(calls[failures:]) <= FITS
    assert warnings[0].startswith("pixelnerf: warning: out of memory at 1048576 points")


def test_max_memory_mb_bounds_every_call_on_the_cpu(setup, calls, capsys) -> None:
    budget_mb = 2
    bound = memory_capped(1 << 30, budget_mb, BYTES_PER_POINT_VIEW)  # one source view (1v)
    assert bound == 128
    render(setup, "capped", chunk_points=None, max_memory_mb=budget_mb)
    assert len(calls) > 10 and max(calls) == bound
    assert "out of memory" not in capsys.readouterr().err


def test_backoff_reraises_other_errors_and_gives_up_at_one_point() -> None:
    def boom(_: int) -> None:
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        halving_on_oom(boom, 64, report=lambda _: None)

    def never_fits(_: int) -> None:
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(PipelineError, match="out of memory even at one point"):
        halving_on_oom(never_fits, 64, report=lambda _: None)
    assert is_out_of_memory(MemoryError()) and not is_out_of_memory(RuntimeError("shape"))
