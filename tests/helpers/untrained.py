"""The tiny demo without training: its experiment config, a seeded untrained model, a working
folder holding both with the data, and the render and metrics command lines run inside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from helpers import PROJECT_ROOT
from helpers.demo import TINY_DEMO, merged
from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.io import atomic_torch_save
from pixelnerf.model import PixelNeRF


def demo_experiment(synth: dict[str, Any]) -> dict[str, Any]:
    """The demo experiment config with the tiny demo's overrides, synthesizing ``synth``."""
    base = yaml.safe_load((PROJECT_ROOT / "config" / "experiments" / "demo.yaml").read_text())
    experiment = merged(base, TINY_DEMO)
    experiment["dataset"]["synth"] = synth
    return experiment


def save_untrained_model(experiment: dict[str, Any], path: Path) -> Path:
    """Write the state dict of the experiment's model, seeded (0) and untrained, to ``path``."""
    torch.manual_seed(0)
    model = PixelNeRF.from_config(experiment["model"], pretrained_encoder=False)
    atomic_torch_save(model.state_dict(), path)
    return path


def untrained_work(root: Path, synth: dict[str, Any], **train: Any) -> Path:
    """Write ``root/data/demo`` (synthesized from ``synth``), ``root/demo.yaml`` (the tiny
    demo experiment, its ``train`` section updated with ``train``) and ``root/model.pt`` (a
    seeded untrained model); returns ``root``."""
    experiment = demo_experiment(synth)
    experiment["train"].update(train)
    synthesize(SynthSettings.from_mapping(synth), root / "data" / "demo")
    (root / "demo.yaml").write_text(yaml.safe_dump(experiment))
    save_untrained_model(experiment, root / "model.pt")
    return root


def render_args(out: str) -> list[str]:
    """``pixelnerf render`` of setting 1v into ``out``, run inside an :func:`untrained_work`."""
    return ["render", "--config", "demo.yaml", "--data-root", "data", "--checkpoint",
            "model.pt", "--setting", "1v", "--out", out, "--device", "cpu", "--no-progress"]


def metrics_args(renders: str, out: str) -> list[str]:
    """``pixelnerf metrics`` of the 1v renders under ``renders`` into ``out`` (no LPIPS
    weights), run inside an :func:`untrained_work`."""
    return ["metrics", "--config", "demo.yaml", "--data-root", "data", "--manifest",
            f"{renders}/1v/shard-0-of-1.json", "--renders", renders, "--out", out,
            "--device", "cpu", "--lpips-weights", "none.pth", "--no-progress"]
