"""`pixelnerf metrics` with several worker threads: the same rows in the same order as one,
and the first failing object, in manifest order, raises its own error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelnerf.errors import PipelineError
from pixelnerf.eval.scoring import score_shard
from pixelnerf.io import atomic_save_png

SIZE, VIEWS = 16, 4


def _shard(root: Path, n_objects: int) -> tuple[list[str], dict]:
    rng = np.random.default_rng(0)
    ids, items = [], {}
    for index in range(n_objects):
        object_id = f"obj{index:02d}"
        folder = root / "render" / "1v" / object_id
        folder.mkdir(parents=True)
        for view in range(1, VIEWS):
            atomic_save_png(folder / f"{view:06d}.png",
                            rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
        (folder / "done.json").write_text(json.dumps({
            "object_id": object_id, "category": "chair", "sources": [0],
            "targets": list(range(1, VIEWS)), "seconds": 0.1}))
        images = torch.rand(VIEWS, 3, SIZE, SIZE) * 2 - 1
        items[object_id] = {"images": images, "object_id": object_id}
        ids.append(object_id)
    return ids, items


def test_several_workers_give_the_rows_of_one_in_manifest_order(tmp_path: Path) -> None:
    ids, items = _shard(tmp_path, 7)

    def rows(workers: int) -> list:
        return score_shard("1v", ids, tmp_path / "render", items.__getitem__, baselines=True,
                           progress=False, workers=workers)

    one, four = rows(1), rows(4)
    assert len(one) == 3 * len(ids)
    assert [r.object_id for r in one[::3]] == ids
    assert four == one


def test_the_first_failing_object_raises_its_error(tmp_path: Path) -> None:
    ids, items = _shard(tmp_path, 5)
    for object_id in ("obj02", "obj04"):
        (tmp_path / "render" / "1v" / object_id / "000002.png").unlink()
    with pytest.raises(PipelineError, match=r"obj02/000002\.png is missing"):
        score_shard("1v", ids, tmp_path / "render", items.__getitem__, progress=False,
                    workers=3)
