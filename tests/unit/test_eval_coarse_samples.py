"""The published evaluation renders with at least 64 coarse samples per ray
(``eval.min_coarse_samples``): the render step builds its renderer with it and the table's
notes say which count was used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from helpers.demo import TINY_DEMO, merged

from pixelnerf.config import load_experiment
from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.errors import PipelineError
from pixelnerf.eval.coarse_samples import coarse_samples_note, evaluation_renderer_config
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.render import RenderJob, render_shard
from pixelnerf.io import atomic_torch_save
from pixelnerf.model import PixelNeRF
from pixelnerf.render import Renderer

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def demo(**eval_keys: Any) -> dict[str, Any]:
    """The tiny demo experiment with 8 coarse samples and the given eval keys."""
    base = yaml.safe_load((PROJECT_ROOT / "config" / "experiments" / "demo.yaml").read_text())
    experiment = merged(base, TINY_DEMO)
    experiment["renderer"].update(n_coarse=8, n_fine=0, n_fine_depth=0)
    experiment["eval"].pop("min_coarse_samples", None)
    experiment["eval"].update(eval_keys)
    return experiment


def floor_of(experiment: dict[str, Any]) -> int | None:
    return EvalConfig.of_experiment(experiment).min_coarse_samples


def test_fewer_coarse_samples_are_raised_to_the_published_64() -> None:
    renderer = {"n_coarse": 32, "n_fine": 0, "n_fine_depth": 0}
    assert floor_of(demo()) == 64  # key absent: the published protocol
    assert floor_of(demo(min_coarse_samples=None)) is None
    assert evaluation_renderer_config(renderer, 64)["n_coarse"] == 64
    assert evaluation_renderer_config(renderer, 48)["n_coarse"] == 48
    assert evaluation_renderer_config({"n_coarse": 128}, 64)["n_coarse"] == 128
    assert evaluation_renderer_config(renderer, None)["n_coarse"] == 32


def test_the_table_notes_say_which_count_was_used() -> None:
    raised = coarse_samples_note({"n_coarse": 32}, 64)
    assert "64 coarse samples" in raised and "n_coarse 32" in raised
    assert "32 coarse samples" in coarse_samples_note({"n_coarse": 32}, None)
    assert "96 coarse samples" in coarse_samples_note({"n_coarse": 96}, 64)


def test_the_schema_checks_the_key(tmp_path: Path) -> None:
    experiment = demo(min_coarse_samples=0)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(experiment))
    with pytest.raises(PipelineError, match="min_coarse_samples"):
        load_experiment(path)


def test_every_shipped_experiment_evaluates_with_at_least_64() -> None:
    for path in sorted((PROJECT_ROOT / "config" / "experiments").glob("*.yaml")):
        config = load_experiment(path)
        renderer = evaluation_renderer_config(config["renderer"], floor_of(config))
        assert renderer["n_coarse"] >= 64, path.name


def test_render_step_builds_its_renderer_with_the_raised_count(tmp_path: Path,
                                                               monkeypatch) -> None:
    experiment = demo()
    experiment["dataset"]["synth"] = {"categories": ["car"], "train_objects": 0,
                                      "val_objects": 0, "test_objects": 1, "views": 3,
                                      "image_size": 8}
    synthesize(SynthSettings.from_mapping(experiment["dataset"]["synth"]),
               tmp_path / "data" / "demo")
    torch.manual_seed(0)
    checkpoint = tmp_path / "pixel_nerf_latest"
    model = PixelNeRF.from_config(experiment["model"], pretrained_encoder=False)
    atomic_torch_save(model.state_dict(), checkpoint)
    built = []
    original = Renderer.from_config

    def recording(cfg: dict, plan: Any) -> Any:
        renderer = original(cfg, plan)
        built.append(renderer)
        return renderer

    monkeypatch.setattr(Renderer, "from_config", staticmethod(recording))
    for floor, expected in ((16, 16), (None, 8)):
        experiment["eval"]["min_coarse_samples"] = floor
        job = RenderJob.of_experiment(experiment, tmp_path / "data", checkpoint,
                                      tmp_path / f"out{floor}")
        render_shard(job, "1v", 0, 1, torch.device("cpu"), progress=False)
        assert built[-1].config.n_coarse == expected
