"""Training batches decoded by DataLoader workers: the same objects and pixels as decoded
in the training process, and readers that draw views draw differently in each worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pixelnerf.data import open_dataset
from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.train.batches import step_batches

CPU = torch.device("cpu")
SYNTH = {"categories": ["chair"], "train_objects": 3, "val_objects": 0, "test_objects": 0,
         "views": 6, "image_size": 8}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loader") / "demo"
    synthesize(SynthSettings.from_mapping(SYNTH), root)
    return root


def _steps(dataset, workers: int, steps: int = 4) -> list[list[dict]]:
    return [objects for _, objects in step_batches(dataset, 2, 7, 0, steps, CPU, workers, 64)]


def test_workers_give_the_batches_of_the_training_process(data: Path) -> None:
    dataset = open_dataset("dvr", str(data), "train")
    alone, loaded = _steps(dataset, 0), _steps(dataset, 2)
    assert len(alone) == len(loaded) == 4
    for objects_a, objects_b in zip(alone, loaded, strict=True):
        assert [o["object_id"] for o in objects_a] == [o["object_id"] for o in objects_b]
        for a, b in zip(objects_a, objects_b, strict=True):
            assert torch.equal(a["images"], b["images"]) and torch.equal(a["poses"], b["poses"])


def test_each_worker_draws_its_own_views(tmp_path: Path) -> None:
    synthesize(SynthSettings.from_mapping(dict(SYNTH, train_objects=1)), tmp_path / "one")
    dataset = open_dataset("dvr", str(tmp_path / "one"), "train", max_views=3, seed=1)
    # one object: every step reads it; two workers take alternate steps
    draws = [tuple(objects[0]["poses"][:, 0, 3].tolist())
             for _, objects in step_batches(dataset, 1, 7, 0, 4, CPU, 2, 64)]
    assert draws[0] != draws[1]  # copied generators would draw alike in both workers
    assert draws[0] != draws[2]  # and each worker draws anew at each access
