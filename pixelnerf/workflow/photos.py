"""The folder of real photographs (config key `real_input`): which files are photos, their
masks, and the index of a folder's results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# `<photo>_mask.png` beside a photo is its mask (then Mask R-CNN is not needed); published
# preprocessing outputs `*_normalize.png` are not photos either.
NOT_PHOTO_ENDINGS = ("_mask", "_normalize")


def real_photos(folder: str | Path) -> dict[str, str]:
    """Photo name (file stem) -> path, for every photo in ``folder`` (none if it is absent)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {
        p.stem: str(p)
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in PHOTO_SUFFIXES and not p.stem.endswith(NOT_PHOTO_ENDINGS)
    }


def photo_names(folder: str | Path) -> list[str]:
    """The photos of ``folder``; none is an error (a folder index of nothing)."""
    photos = real_photos(folder)
    if not photos:
        raise PipelineError(f"no photos in {folder}/ (put car photos there)")
    return list(photos)


def photo_path(folder: str | Path, name: str) -> str:
    """The photo ``name`` of ``folder``; an unknown name is one line listing those there."""
    photos = real_photos(folder)
    if name not in photos:
        raise PipelineError(
            f"no photo named {name} in {folder}/ (found: {', '.join(photos) or 'none'})"
        )
    return photos[name]


def mask_files(folder: str | Path, name: str) -> list[str]:
    """``<name>_mask.png`` of ``folder`` when it exists (an optional input)."""
    mask = Path(folder) / f"{name}_mask.png"
    return [str(mask)] if mask.is_file() else []


def write_index(
    photos: Sequence[str], done_files: Sequence[str], index_file: str, log_file: str
) -> None:
    """Photo name -> its result folder (that of its ``done.json``), as JSON."""
    index = {name: str(Path(done).parent) for name, done in zip(photos, done_files, strict=True)}
    atomic_write_text(index_file, json.dumps(index, indent=1) + "\n")
    atomic_write_text(log_file, f"{len(index)} photos indexed in {index_file}\n")
