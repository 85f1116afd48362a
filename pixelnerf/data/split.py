"""An experiment's unseen-category split lists (``pixelnerf split``; the published
``genlist``).

For every category folder of the dataset, ``<prefix>{train,val,test}.lst``: a seen
category keeps its training and validation objects (from the source lists, e.g.
``softras_``) and gets an empty test list; an unseen category gets empty training and
validation lists and, as test list, a seeded fraction of all its objects; any other
category gets three empty lists. The published quarter was never released (the viewlist
gives a source view for every object), so this split is a seeded choice and says so.
The record (settings, counts, that note; ``--out``, default ``<root>/<prefix>split.json``)
is written last. Reruns write
identical files. Call chain: DatasetConfig.split_settings -> make_split -> write_split.

Config: the experiment's ``dataset.split`` mapping (keys and defaults in
:class:`SplitSettings`): seen, unseen (category folder names), test_fraction, val_fraction,
seed, source_list (a ``category object view`` file that must name every test object, e.g.
``config/viewlists/src_gen.txt``; null: no check). The lists written get the prefix the
``dvr_gen`` reader uses: ``dataset.list_prefix`` for a ``dvr_gen`` experiment, else ``gen_``
(so a ``dvr`` experiment such as the demo keeps its own lists); the objects come from the
``softras_`` lists.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pixelnerf.config import REQUIRED, setting
from pixelnerf.data.common import read_list
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text

SPLITS = ("train", "val", "test")
NOTE = ("the published unseen-category test quarter is unknown (genlist.py was never "
        "released); this split is a seeded choice and differs from the paper's")


@dataclass(frozen=True)
class SplitSettings:
    """``dataset.split``: the seen and unseen categories and how their lists are drawn;
    ``list_prefix`` (of the lists written) is not a key of it but follows from
    ``dataset.list_prefix`` (:func:`split_settings`)."""

    seen: tuple[str, ...] = setting(
        REQUIRED, "category folders (synsets) whose training and validation objects are kept")
    unseen: tuple[str, ...] = setting(
        REQUIRED, "category folders (synsets) whose test list is drawn")
    test_fraction: float = setting(
        0.25, "share of each unseen category's objects in its test list (published: about a "
        "quarter; `1.0` = all; at least one object)")
    val_fraction: float = setting(
        0.1, "only for a seen category whose source validation list is empty: the seeded "
        "share of its training objects moved to validation, so validation is never empty "
        "(NMR has validation lists, so it is unused there)")
    seed: int = setting(0, "seed of both draws")
    source_list: str | None = setting(
        None, "a `category object view` file that must name every test object (e.g. "
        "`config/viewlists/src_gen.txt`); null: no check")
    source_prefix: str = setting(
        "softras_", "prefix of the lists the split draws objects from")
    list_prefix: str = dataclasses.field(default="gen_")

    def check(self, origin: str) -> None:
        """What the schema cannot say."""
        overlap = sorted(set(self.seen) & set(self.unseen))
        if overlap:
            raise PipelineError(f"{origin}: categories both seen and unseen: {', '.join(overlap)}")


def _category_objects(folder: Path, prefix: str) -> dict[str, list[str]]:
    """The source lists of a category folder: split -> object names (absent list: [])."""
    lists = {}
    for split in SPLITS:
        path = folder / f"{prefix}{split}.lst"
        lists[split] = read_list(path) if path.is_file() else []
    return lists


def _read_viewlist(path: Path) -> set[tuple[str, str]]:
    """(category, object) pairs of a ``category object view`` file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PipelineError(f"cannot read viewlist {path}: {exc.strerror or exc}") from exc
    pairs = set()
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            raise PipelineError(f"viewlist {path} line {number}: expected 'category object view'")
        pairs.add((parts[0], parts[1]))
    return pairs


def choose(objects: list[str], fraction: float, seed: int, category: str, purpose: str
           ) -> list[str]:
    """A seeded ``fraction`` of ``objects`` (at least one when there are any), in sorted
    order. The generator depends on the seed, the category's name and the purpose
    ("test" or "val") only, so one category's choice never depends on the others."""
    ordered = sorted(set(objects))
    if not ordered:
        return []
    count = len(ordered) if fraction >= 1 else max(1, round(fraction * len(ordered)))
    rng = np.random.default_rng([seed, zlib.crc32(category.encode()), zlib.crc32(purpose.encode())])
    chosen = np.sort(rng.choice(len(ordered), size=count, replace=False))
    return [ordered[i] for i in chosen]


def make_split(root: str | os.PathLike, settings: SplitSettings
               ) -> dict[str, dict[str, list[str]]]:
    """category folder -> split -> object names, for every category folder of ``root``
    that has source lists or is named in the settings."""
    root = Path(root)
    if not root.is_dir():
        raise PipelineError(f"dataset folder {root} does not exist")
    folders = {p.name: p for p in sorted(root.iterdir()) if p.is_dir()}
    missing = [c for c in settings.seen + settings.unseen if c not in folders]
    if missing:
        raise PipelineError(f"split: category folder(s) {', '.join(missing)} missing under {root}")
    result: dict[str, dict[str, list[str]]] = {}
    for name, folder in folders.items():
        source = _category_objects(folder, settings.source_prefix)
        lists: dict[str, list[str]] = {split: [] for split in SPLITS}
        if name in settings.seen:
            lists["train"], lists["val"] = list(source["train"]), list(source["val"])
            if not lists["val"] and settings.val_fraction > 0 and len(set(lists["train"])) > 1:
                held = set(choose(lists["train"], settings.val_fraction, settings.seed, name,
                                  "val"))
                lists["val"] = sorted(held)
                lists["train"] = [obj for obj in lists["train"] if obj not in held]
            if not lists["val"]:
                raise PipelineError(f"split: seen category {name} has no validation objects "
                                    f"({folder / (settings.source_prefix + 'val.lst')} is empty "
                                    "and dataset.split.val_fraction holds none out)")
        elif name in settings.unseen:
            everything = source["train"] + source["val"] + source["test"]
            if not everything:
                raise PipelineError(f"split: unseen category {name} has no objects in "
                                    f"{folder}/{settings.source_prefix}{{train,val,test}}.lst")
            lists["test"] = choose(everything, settings.test_fraction, settings.seed, name, "test")
        elif not any(source.values()):
            continue  # not a category folder of this dataset (no source lists)
        for split in SPLITS:
            for obj in lists[split]:
                if not (folder / obj).is_dir():
                    raise PipelineError(f"split: {folder / obj} (category {name}) is missing")
        result[name] = lists
    return result


def check_source_list(split: dict[str, dict[str, list[str]]], path: Path) -> None:
    """Every test object must have a source view in the ``category object view`` file."""
    pairs = _read_viewlist(path)
    for category, lists in split.items():
        for obj in lists["test"]:
            if (category, obj) not in pairs:
                raise PipelineError(f"test object {category}/{obj} has no source view in {path}")


def write_split(root: str | os.PathLike, split: dict[str, dict[str, list[str]]],
                settings: SplitSettings, marker: str | os.PathLike | None = None) -> Path:
    """Write the lists atomically, then the record (settings, counts, the note) to
    ``marker`` (default ``<root>/<prefix>split.json``); returns the record's path."""
    root = Path(root)
    for category, lists in split.items():
        for name in SPLITS:
            text = "".join(f"{obj}\n" for obj in lists[name])
            atomic_write_text(root / category / f"{settings.list_prefix}{name}.lst", text)
    counts = {c: {s: len(v) for s, v in lists.items()} for c, lists in split.items()}
    record = {"root": str(root), "settings": asdict(settings), "counts": counts, "note": NOTE}
    marker = Path(marker) if marker is not None else root / f"{settings.list_prefix}split.json"
    atomic_write_text(marker, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return marker


def source_objects(folder: Path, prefix: str) -> list[str]:
    """Every object of a category folder's source lists (all splits)."""
    return [obj for objs in _category_objects(folder, prefix).values() for obj in objs]
