"""The one tiny demo of the test suite: an override of config/experiments/demo.yaml.

Two categories, 32x32 images, 8 views, a network of width 16 on a ResNet-18 cut after two
levels, 4 training steps: the whole workflow runs on it in about a minute on 2 CPU cores.
Tests that need only part of it (the test split, the dataset) take it from here too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

TINY_DEMO: dict[str, Any] = {
    "dataset": {"synth": {"seed": 0, "categories": ["chair", "car"], "train_objects": 3,
                          "val_objects": 1, "test_objects": 2, "views": 8, "image_size": 32}},
    "model": {
        "mlp_coarse": {"d_hidden": 16, "n_blocks": 1, "combine_layer": 1},
        "mlp_fine": {"d_hidden": 16, "n_blocks": 1, "combine_layer": 1},
        "encoder": {"backbone": "resnet18", "num_layers": 2},
    },
    "renderer": {"n_coarse": 8, "n_fine": 4, "n_fine_depth": 2},
    "train": {"steps": 4, "batch_objects": 2, "rays_per_object": 32, "checkpoint_every": 2,
              "val_every": 0, "vis_every": 0},
    "eval": {"shards": 2, "ray_batch": 2048, "report_objects": 2, "report_views": 1},
}


def tiny_synth(**override: Any) -> dict[str, Any]:
    """The tiny demo's synthesizer settings, with ``override`` (say, no training objects for
    an evaluation test)."""
    return {**TINY_DEMO["dataset"]["synth"], **override}


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in, mapping by mapping (lists are replaced)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
