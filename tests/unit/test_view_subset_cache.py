"""A reader that draws a subset of the views (``max_views``, published DTU: 49 of 64)
draws a new subset at every access, also where the training cache keeps the object."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from pixelnerf.data import open_dataset
from pixelnerf.train.batches import MemoryCache, step_batches

N_VIEWS = 64
MAX_VIEWS = 49


@pytest.fixture()
def dtu_root(tmp_path: Path) -> Path:
    """One DTU-layout scan of 64 views; view i has pixel value 3 i and camera centre x = i."""
    scan = tmp_path / "DTU" / "scan1"
    (scan / "image").mkdir(parents=True)
    (tmp_path / "DTU" / "new_train.lst").write_text("scan1\n")
    intrinsics = np.array([[5.0, 0, 2.0], [0, 5.0, 2.0], [0, 0, 1]])
    cameras = {}
    for i in range(N_VIEWS):
        iio.imwrite(scan / "image" / f"{i:06d}.png", np.full((4, 4, 3), 3 * i, np.uint8))
        centre = np.array([[float(i)], [0.0], [-4.0]])
        projection = np.eye(4)
        projection[:3] = intrinsics @ np.hstack([np.eye(3), -centre])
        cameras[f"world_mat_{i}"] = projection
    np.savez(scan / "cameras.npz", **cameras)
    return tmp_path


def view_ids(item: dict) -> list[int]:
    """The views of an item, read from their pixel values; checked against their cameras."""
    ids = [round(float((v * 0.5 + 0.5) * 255) / 3) for v in item["images"][:, 0, 0, 0]]
    centres = [round(float(x)) for x in item["poses"][:, 0, 3]]
    assert ids == centres, "a view's image and its camera come from different views"
    return ids


def test_two_epochs_with_the_training_cache_draw_different_subsets(dtu_root: Path) -> None:
    dataset = open_dataset("dvr_dtu", dtu_root, "train", max_views=MAX_VIEWS, seed=0)
    reads = []
    load_view = dataset.load_view
    dataset.load_view = lambda *args: reads.append(1) or load_view(*args)  # type: ignore[method-assign]
    # one object, one object a step: every step is an epoch
    epochs = [view_ids(objects[0]) for _, objects in
              step_batches(dataset, 1, 0, 0, 2, torch.device("cpu"), 0, cache_mb=64)]
    assert len(reads) == N_VIEWS, "the cache did not keep the scan: it was decoded again"
    for ids in epochs:
        assert len(ids) == MAX_VIEWS and len(set(ids)) == MAX_VIEWS
        assert set(ids) <= set(range(N_VIEWS))
    assert set(epochs[0]) != set(epochs[1])


def test_cache_draws_what_uncached_reading_draws(dtu_root: Path) -> None:
    """The same seed gives the same subsets, access by access, cached or not (the cache
    changes what is decoded, never what is drawn)."""
    plain = open_dataset("dvr_dtu", dtu_root, "train", max_views=MAX_VIEWS, seed=3)
    cached = MemoryCache(open_dataset("dvr_dtu", dtu_root, "train", max_views=MAX_VIEWS,
                                      seed=3), 1 << 26)
    own_cache = open_dataset("dvr_dtu", dtu_root, "train", max_views=MAX_VIEWS, seed=3,
                             cache=True)
    for _ in range(3):
        expected = plain[0]
        for item in (cached[0], own_cache[0]):
            assert view_ids(item) == view_ids(expected)
            for key in ("images", "poses", "focal", "c"):
                torch.testing.assert_close(item[key], expected[key])
    assert len(cached.items) == 1


def test_cached_items_are_independent_of_the_cache(dtu_root: Path) -> None:
    cache = MemoryCache(open_dataset("dvr_dtu", dtu_root, "train"), 1 << 26)
    first = cache[0]
    first["images"].zero_()
    assert view_ids(cache[0]) == list(range(N_VIEWS))
