"""A tiny demo dataset and fake renders in the render step's layout, for the evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from helpers.demo import tiny_synth
from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.io import atomic_save_png

# The tiny demo's test split alone: synthesized in a few seconds on one core.
TEST_SPLIT = tiny_synth(train_objects=0, val_objects=0)


def tiny_demo_config(project_root: Path, data_root: Path, out: Path) -> tuple[Path, dict]:
    """Synthesize the tiny demo under ``data_root/<dir>`` and write the demo experiment
    config pointing at it; returns (config path, config)."""
    config: dict[str, Any] = yaml.safe_load(
        (project_root / "config" / "experiments" / "demo.yaml").read_text())
    config["dataset"]["dir"] = "demo_tiny"
    config["dataset"].pop("synth", None)
    synthesize(SynthSettings.from_mapping(TEST_SPLIT), data_root / "demo_tiny")
    out.write_text(yaml.safe_dump(config))
    return out, config


def ground_truth_png(data_root: Path, object_id: str, view: int) -> np.ndarray:
    """A demo view read straight from its PNG: (H, W, 3) uint8."""
    import imageio.v3 as iio

    return iio.imread(data_root / "demo_tiny" / object_id / "image" / f"{view:04d}.png")[..., :3]


def fake_render(truth: np.ndarray, object_id: str, view: int) -> np.ndarray:
    """A deterministic stand-in for a render: the truth plus a seeded perturbation, uint8."""
    rng = np.random.default_rng([view, len(object_id), sum(object_id.encode())])
    noisy = truth.astype(np.int64) + rng.integers(-30, 31, size=truth.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def write_fake_renders(renders: Path, setting: str, selections: dict[str, Any],
                       categories: dict[str, str], data_root: Path) -> Path:
    """Renders, done.json per object and one manifest, as the render step writes them.

    selections: object_id -> an object with ``sources`` and ``targets``. Returns the manifest.
    """
    for object_id, selection in selections.items():
        folder = renders / setting / object_id
        for view in selection.targets:
            truth = ground_truth_png(data_root, object_id, view)
            atomic_save_png(folder / f"{view:06d}.png", fake_render(truth, object_id, view))
        (folder / "done.json").write_text(json.dumps({
            "object_id": object_id, "category": categories[object_id],
            "sources": list(selection.sources), "targets": list(selection.targets),
            "seconds": 0.0}))
    manifest = renders / setting / "shard-0-of-1.json"
    manifest.write_text(json.dumps({"setting": setting, "objects": sorted(selections)}))
    return manifest
