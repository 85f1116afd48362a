"""Fine-tuning: a run that starts from given weights (``train.init``) instead of fresh ones.

``prepare_init -> (move_aside) -> write record``; the loop then loads the weights strictly
when there is no checkpoint to resume from. The record ``init.json`` in the checkpoint
folder names the weights the run started from: a rerun with the same ``init`` resumes, a
run with another (or one started without ``init``) is moved aside first, never deleted.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text

INIT_RECORD = "init.json"
HASH_BLOCK_BYTES = 1 << 20


def init_source(config_init: str | None, given: str | None) -> Path | None:
    """The weights file a run starts from: ``given`` (the command line, where the workflow
    resolves ``published``), else ``train.init`` when it is a path; None for none."""
    if given is not None:
        return Path(given)
    if config_init is None:
        return None
    if config_init == "published":
        raise PipelineError("train.init is published: give the published weights file with "
                            "--init (the workflow does)")
    return Path(config_init)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def init_record(source: Path) -> dict[str, Any]:
    if not source.is_file():
        raise PipelineError(f"train.init: weights file {source} does not exist")
    return {"init": str(source), "sha256": file_digest(source)}


def read_record(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / INIT_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def move_aside(folder: Path, stamp: str) -> Path | None:
    """Rename a non-empty ``folder`` to ``<folder>.<stamp>``; the new path, or None."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    target = folder.with_name(f"{folder.name}.{stamp}")
    folder.rename(target)
    return target


def prepare_init(source: Path, checkpoints: Path, out: Path) -> list[Path]:
    """Make ``checkpoints`` and ``out`` the folders of a run started from ``source``: kept
    when their record names the same weights, else moved aside. Returns the folders moved."""
    record = init_record(source)
    if checkpoints.resolve() in source.resolve().parents:
        raise PipelineError(f"train.init: {source} lies in the run's own checkpoint folder "
                            f"{checkpoints}; fine-tune into an experiment of another name")
    if read_record(checkpoints) == record:
        return []
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = [m for m in (move_aside(checkpoints, stamp), move_aside(out, stamp)) if m]
    checkpoints.mkdir(parents=True, exist_ok=True)
    atomic_write_text(checkpoints / INIT_RECORD, json.dumps(record, indent=1) + "\n")
    return moved
