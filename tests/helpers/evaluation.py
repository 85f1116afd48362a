"""A tiny demo dataset and fake renders in the render step's layout, for the evaluation tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass(frozen=True)
class DemoMetricsInputs:
    """The tiny demo's test split with fake renders for its first setting: what the
    metrics step reads. ``config`` is the dict written to ``config_path``."""

    config_path: Path
    config: dict[str, Any]
    data_root: Path
    dataset: Any
    setting: str
    selections: dict[str, Any]
    categories: dict[str, str]
    renders: Path
    manifest: Path

    def cli_args(self, out: Path, lpips_weights: Path) -> list[str]:
        """``pixelnerf metrics`` on these inputs, on the CPU, writing ``out``."""
        return ["metrics", "--config", str(self.config_path), "--data-root",
                str(self.data_root), "--manifest", str(self.manifest), "--renders",
                str(self.renders), "--out", str(out), "--lpips-weights", str(lpips_weights),
                "--device", "cpu", "--no-progress"]


def demo_metrics_inputs(project_root: Path, tmp_path: Path) -> DemoMetricsInputs:
    """Synthesize the tiny demo under ``tmp_path/data`` and write fake renders under
    ``tmp_path/render`` for every object of the protocol's first setting."""
    from pixelnerf.data import open_dataset
    from pixelnerf.eval.config import EvalConfig
    from pixelnerf.eval.protocol import Protocol

    data_root = tmp_path / "data"
    config_path, config = tiny_demo_config(project_root, data_root, tmp_path / "demo.yaml")
    dataset = open_dataset("dvr", data_root / "demo_tiny", "test")
    protocol = Protocol.from_config(EvalConfig.of_experiment(config))
    setting = protocol.setting_names[0]
    n_views = dataset[0]["images"].shape[0]
    selections = {e.object_id: protocol.select(setting, e.object_id, n_views)
                  for e in dataset.entries}
    categories = {e.object_id: e.category for e in dataset.entries}
    renders = tmp_path / "render"
    manifest = write_fake_renders(renders, setting, selections, categories, data_root)
    return DemoMetricsInputs(config_path, config, data_root, dataset, setting, selections,
                             categories, renders, manifest)
