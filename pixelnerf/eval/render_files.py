"""The render files an object's ``done.json`` vouches for, and whether they are still there.

The render step records each target PNG's size under ``files`` when it marks an object
finished; a finished object counts as done only while every file it lists exists with that
size, so a deleted or truncated render (a cheap ``stat`` per file, no decoding) makes the
object unfinished again. The metrics step checks the same before scoring, names the object
and the file in one line, and un-marks the object (its ``done.json`` and the shard manifest
removed), so that the next run of the workflow renders that object again, and only it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pixelnerf.errors import PipelineError

FILES_KEY = "files"  # done.json: PNG name -> size in bytes


class DamagedRenderError(PipelineError):
    """A finished object's render file is missing or not the size recorded."""

    def __init__(self, message: str, folder: Path) -> None:
        super().__init__(message)
        self.folder = folder


def png_name(view: int) -> str:
    """The file name of target view ``view``."""
    return f"{view:06d}.png"


def file_sizes(folder: Path, views: Sequence[int]) -> dict[str, int]:
    """``{png name: size}`` of the written renders of ``views``, for ``done.json``."""
    return {png_name(v): (folder / png_name(v)).stat().st_size for v in views}


def first_damage(folder: Path, record: Mapping[str, Any]) -> str | None:
    """What is wrong with the files ``record`` (a done.json) vouches for (one phrase naming
    the file), or None.

    A record without sizes (written before they were kept) is checked for existence only.
    """
    sizes = record.get(FILES_KEY)
    if not isinstance(sizes, dict):
        sizes = {png_name(v): None for v in record.get("targets") or []}
    for name, size in sizes.items():
        try:
            actual = os.stat(folder / name).st_size
        except OSError:
            return f"render {folder / name} is missing"
        if size is not None and actual != size:
            return f"render {folder / name} has {actual} bytes, {size} when it was rendered"
    return None


def check_renders(folder: Path, object_id: str, record: Mapping[str, Any]) -> None:
    """Raise :class:`DamagedRenderError` (one line naming the object and the file) when a file
    that ``record`` vouches for is missing or truncated."""
    damage = first_damage(folder, record)
    if damage is not None:
        raise DamagedRenderError(f"{damage}, yet its object {object_id} is marked rendered",
                                 folder)


def mark_unfinished(damaged: DamagedRenderError, manifest: Path) -> str:
    """Remove the object's ``done.json`` and the shard ``manifest`` (the render job's output,
    so the workflow reruns that job, which renders only unfinished objects); the advice."""
    (damaged.folder / "done.json").unlink(missing_ok=True)
    manifest.unlink(missing_ok=True)
    return (f"{damaged}; marked it unfinished (removed its done.json and {manifest}): run "
            f"the workflow again to render it anew")
