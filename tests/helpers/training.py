"""Shared by the training tests: a tiny demo dataset and a tiny experiment config on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from helpers.demo import tiny_synth

# A model and renderer small enough for a CPU test (the key names are the published ones).
TINY_MLP = {"type": "resnet", "n_blocks": 2, "d_hidden": 32, "combine_layer": 1,
            "combine_type": "average"}
TINY_ENCODER = {"backbone": "resnet18", "pretrained": False, "num_layers": 2,
                "use_first_pool": False}
TINY_RENDERER = {"n_coarse": 16, "n_fine": 8, "n_fine_depth": 4}
# The tiny demo's training and validation objects (no test objects: training reads none).
TINY_SYNTH = tiny_synth(test_objects=0)
# Steps of the seeded run that shows the model learns (tests/conftest.py: trained_demo).
LEARN_STEPS = 200


def make_experiment(work: Path, project_root: Path, train: dict[str, Any] | None = None,
                    synth: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Synthesize ``work/data/demo`` and write ``work/experiment.yaml`` from the demo config
    with a tiny model; ``train`` overrides keys of its ``train`` section.
    Returns ``(work, config path)``."""
    from pixelnerf.data.demo import SynthSettings, synthesize

    settings = dict(TINY_SYNTH, **(synth or {}))
    synthesize(SynthSettings.from_mapping(settings), work / "data" / "demo")
    experiment = yaml.safe_load((project_root / "config/experiments/demo.yaml").read_text())
    experiment["dataset"].update(dir="demo", image_size=None)
    experiment["dataset"].pop("synth", None)  # synthesized above, not by the workflow
    experiment["model"]["mlp_coarse"] = dict(TINY_MLP)
    experiment["model"]["mlp_fine"] = dict(TINY_MLP)
    experiment["model"]["encoder"] = dict(TINY_ENCODER)
    experiment["renderer"].update(TINY_RENDERER)
    experiment["train"].update({"steps": 40, "batch_objects": 2, "rays_per_object": 64,
                                "checkpoint_every": 8, "val_every": 8, "vis_every": 16,
                                "val_objects": 2, "seed": 0, "lr": 1e-3}, **(train or {}))
    config = work / "experiment.yaml"
    config.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return work, config
