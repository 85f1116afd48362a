"""The readers return what the published readers return for the reference sample trees.

Driven by the reference directory's content: every key ``<tree>/<split>/<object>::<field>``
of ``dataset_items.npz`` is compared, the tree, split and object coming from the key; only
the reference set's table of tree -> format is restated here.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelnerf.data import open_dataset

# The reference set's trees and their formats (and, for DVR-layout DTU, its list prefix).
TREE_FORMATS = {
    "nmr": ("dvr", {}),
    "dtu": ("dvr_dtu", {"list_prefix": "new_"}),
    "srn": ("srn", {}),
    "multi_chair": ("multi_obj", {}),
}
# Float32 values are compared to 1e-6, relative for magnitudes above 1 (a float32 holds
# about 7 significant digits, so e.g. a focal of 44.4 is only known to ~4e-6 in float32).
TOLERANCE = 1e-6


def _reference_items(reference_root: Path) -> dict[tuple[str, str], dict[str, dict]]:
    """(tree, split) -> object path -> field -> array, from dataset_items.npz."""
    grouped: dict[tuple[str, str], dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    with np.load(reference_root / "dataset_items.npz") as archive:
        for key in archive.files:
            name, field = key.split("::")
            tree, split, object_path = name.split("/", 2)
            grouped[(tree, split)][object_path][field] = archive[key]
    return grouped


def _dataset_root(trees: Path, tree: str, split: str, fmt: str) -> Path:
    """The root a reader takes: the tree itself, or for SRN ``<tree>/<name>`` where the
    tree holds ``<name>_<split>``."""
    if fmt != "srn":
        return trees / tree
    matches = sorted(p for p in (trees / tree).iterdir() if p.name.endswith(f"_{split}"))
    assert len(matches) == 1, f"expected one <name>_{split} folder in {trees / tree}"
    return matches[0].with_name(matches[0].name[: -len(f"_{split}")])


def _as_array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def test_every_reference_item_matches(reference_root: Path) -> None:
    reference = _reference_items(reference_root)
    assert reference, "dataset_items.npz holds no items"
    trees = reference_root / "datasets"
    compared, failures = 0, []
    for (tree, split), objects in sorted(reference.items()):
        assert tree in TREE_FORMATS, f"tree {tree} of the reference set is not in TREE_FORMATS"
        fmt, options = TREE_FORMATS[tree]
        if fmt == "srn":
            # Read at the size the reference holds, as the published SRN reader resizes.
            some_images = next(iter(objects.values()))["images"]
            options = {**options, "image_size": tuple(some_images.shape[-2:])}
        dataset = open_dataset(fmt, _dataset_root(trees, tree, split, fmt), split, **options)
        items = {item["object_id"]: item for item in (dataset[i] for i in range(len(dataset)))}
        assert set(objects) <= set(items), f"{tree}/{split}: objects missing from the reader"
        for object_path, fields in objects.items():
            item = items[object_path]
            assert Path(item["path"]).as_posix().endswith(object_path)
            for field, expected in fields.items():
                assert field in item, f"{tree}/{split}/{object_path}: no field {field}"
                actual = _as_array(item[field])
                compared += 1
                if actual.shape != expected.shape:
                    failures.append(f"{tree}/{split}/{object_path}::{field} shape "
                                    f"{actual.shape} != {expected.shape}")
                    continue
                if not np.allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   rtol=TOLERANCE, atol=TOLERANCE):
                    error = np.abs(actual.astype(np.float64) - expected).max()
                    failures.append(f"{tree}/{split}/{object_path}::{field} max error {error}")
    assert not failures, "\n".join(failures)
    assert compared == sum(len(f) for objs in reference.values() for f in objs.values())


@pytest.mark.parametrize("key_part", ["z_near", "z_far", "category", "object_id"])
def test_items_carry_common_keys(reference_root: Path, key_part: str) -> None:
    """Every reader adds the keys downstream steps rely on."""
    reference = _reference_items(reference_root)
    trees = reference_root / "datasets"
    for (tree, split), objects in reference.items():
        fmt, options = TREE_FORMATS[tree]
        dataset = open_dataset(fmt, _dataset_root(trees, tree, split, fmt), split, **options)
        assert len(dataset) >= len(objects)
        item = dataset[0]
        assert key_part in item
        if key_part.startswith("z_"):
            assert isinstance(item[key_part], float)
            assert item["z_near"] < item["z_far"]
        else:
            assert isinstance(item[key_part], str) and item[key_part]
