"""The files the render step leaves for the later steps: each object's ``done.json`` and
the shard manifests. This module alone writes, reads and validates them.

Layout under the render folder ``<out>``: ``<out>/<setting>/<object_id>/{view:06d}.png``,
then ``<out>/<setting>/<object_id>/done.json`` (written last, after the PNGs), and, when a
shard is complete, ``<out>/<setting>/shard-<k>-of-<K>.json``.

done.json: ``object_id, category, sources, targets, seconds, seed, device, fingerprint,
files`` (each PNG's size: :mod:`pixelnerf.eval.render_files`);
the fingerprint is a digest of everything the renders depend on, so a rerun can tell
current renders from those of an older checkpoint or config.
Manifest: ``setting, shard, shards, objects`` (object ids in render order) and ``split``
when the split rendered is not ``eval.split``.
Extra outputs (``eval.outputs``, :mod:`pixelnerf.eval.extra_outputs`) are listed with their
sizes under ``extra_files`` (and ``depth_scale`` for depth maps); the metrics step never
reads them, and a missing one makes the object unfinished for the render step only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.protocol import ViewSelection
from pixelnerf.eval.render_files import FILES_KEY, check_renders, file_sizes, first_damage
from pixelnerf.io import atomic_write_text

DONE_FILE = "done.json"
EXTRA_FILES_KEY = "extra_files"  # done.json: extra output name -> size in bytes
HASH_BLOCK_BYTES = 1 << 20  # read size when hashing the checkpoint
# How the network is run, left out of the render fingerprint.
RUN_ONLY_RENDERER_KEYS = ("chunk_points", "compile", "max_memory_mb")


# --------------------------------------------------------------------------- JSON


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PipelineError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{what} {path} is not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise PipelineError(f"{what} {path} must hold a JSON object")
    return data


# --------------------------------------------------------------------------- manifests


def shard_manifest_path(out_root: Path, setting: str, shard: int, shards: int) -> Path:
    """``<out>/<setting>/shard-<k>-of-<K>.json`` (k is 0-based)."""
    return out_root / setting / f"shard-{shard}-of-{shards}.json"


def write_manifest(out_root: Path, setting: str, shard: int, shards: int,
                   objects: Sequence[str], split: str | None = None) -> Path:
    """Write the manifest of a finished shard atomically; returns its path. ``split``: the
    split rendered, recorded when it is not ``eval.split`` (the published approximate
    protocol), so the metrics step reads the ground truth of that split."""
    path = shard_manifest_path(out_root, setting, shard, shards)
    manifest: dict[str, Any] = {"setting": setting, "shard": shard, "shards": shards,
                                "objects": list(objects)}
    if split is not None:
        manifest["split"] = split
    atomic_write_text(path, json.dumps(manifest, indent=1) + "\n")
    return path


def manifest_split(path: str | os.PathLike) -> str | None:
    """The split a shard manifest records it rendered, or None (``eval.split``)."""
    split = _read_json(Path(path), "render manifest").get("split")
    if split is not None and not isinstance(split, str):
        raise PipelineError(f"render manifest {path}: key 'split' must be a string")
    return split


def read_manifest(path: str | os.PathLike) -> tuple[str, list[str]]:
    """A shard manifest -> (setting, object ids in order)."""
    path = Path(path)
    data = _read_json(path, "render manifest")
    setting, objects = data.get("setting"), data.get("objects")
    if not isinstance(setting, str) or not setting:
        raise PipelineError(f"render manifest {path}: key 'setting' must be a non-empty string")
    if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
        raise PipelineError(f"render manifest {path}: key 'objects' must be a list of strings")
    return setting, objects


# --------------------------------------------------------------------------- done.json


@dataclass(frozen=True)
class RenderedObject:
    """What the render step recorded for one object (its done.json)."""

    object_id: str
    category: str
    sources: tuple[int, ...]
    targets: tuple[int, ...]
    folder: Path

    @property
    def record_path(self) -> Path:
        return self.folder / DONE_FILE

    def render_path(self, view: int) -> Path:
        return self.folder / f"{view:06d}.png"


def object_dir(renders_root: str | os.PathLike, setting: str, object_id: str) -> Path:
    return Path(renders_root) / setting / object_id


def read_done(renders_root: str | os.PathLike, setting: str, object_id: str) -> RenderedObject:
    """One object's done.json under ``<renders_root>/<setting>/<object_id>/``."""
    folder = object_dir(renders_root, setting, object_id)
    path = folder / DONE_FILE
    data = _read_json(path, "render record")
    for key in ("category", "sources", "targets"):
        if key not in data:
            raise PipelineError(f"render record {path} lacks the key '{key}'")
    if data.get("object_id", object_id) != object_id:
        raise PipelineError(f"render record {path} names object {data['object_id']!r}")
    views = {}
    for key in ("sources", "targets"):
        value = data[key]
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            raise PipelineError(f"render record {path}: '{key}' must be a list of view indices")
        views[key] = tuple(value)
    if not views["targets"]:
        raise PipelineError(f"render record {path} has no target views")
    check_renders(folder, object_id, data)
    return RenderedObject(object_id, str(data["category"]), views["sources"], views["targets"],
                          folder)


def write_done(folder: Path, object_id: str, category: str, selection: ViewSelection,
               seconds: float, seed: int, device: str, fingerprint: str,
               extra: Mapping[str, Any] | None = None,
               plan: Mapping[str, Any] | None = None) -> None:
    """Write an object's done.json atomically (after its PNGs); ``extra``: keys describing
    the extra outputs (``extra_files``, ``depth_scale``), none when there are none;
    ``plan``: the job's inference plan (provenance: how the network was evaluated)."""
    record: dict[str, Any] = {
        "object_id": object_id,
        "category": category,
        "sources": list(selection.sources),
        "targets": list(selection.targets),
        "seconds": round(seconds, 4),
        "seed": seed,
        "device": device,
        **({} if plan is None else {"plan": dict(plan)}),
        "fingerprint": fingerprint,
        FILES_KEY: file_sizes(folder, selection.targets),
    }
    record.update(extra or {})
    atomic_write_text(folder / DONE_FILE, json.dumps(record, indent=1) + "\n")


def is_done(folder: Path, fingerprint: str) -> bool:
    """True when ``folder/done.json`` exists, records ``fingerprint``, and every render
    file it lists is there with its recorded size."""
    try:
        record = json.loads((folder / DONE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("fingerprint") == fingerprint
            and first_damage(folder, record) is None
            and first_damage(folder, {FILES_KEY: record.get(EXTRA_FILES_KEY) or {}}) is None)


def recorded_values(renders: Path, key: str) -> list[Any]:
    """Distinct values of ``key`` recorded in the done.json files under ``renders``, in
    sorted JSON order (unreadable records are passed over: this is provenance, not a
    check)."""
    found: dict[str, Any] = {}
    if renders.is_dir():
        for done in renders.rglob(DONE_FILE):
            try:
                value = json.loads(done.read_text(encoding="utf-8")).get(key)
            except (OSError, ValueError, AttributeError):
                continue
            if value:
                found[json.dumps(value, sort_keys=True)] = value
    return [found[text] for text in sorted(found)]


def recorded_devices(renders: Path) -> list[str]:
    """Distinct devices recorded in the done.json files under ``renders``."""
    return [str(device) for device in recorded_values(renders, "device")]


def recorded_plans(renders: Path) -> list[dict[str, Any]]:
    """Distinct inference plans recorded in the done.json files under ``renders``."""
    return recorded_values(renders, "plan")


# --------------------------------------------------------------------------- fingerprint


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(HASH_BLOCK_BYTES), b""):
                digest.update(block)
    except OSError as exc:
        raise PipelineError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def fingerprint(
    checkpoint_digest: str,
    model_config: Mapping[str, Any] | None,
    renderer_config: Mapping[str, Any],
    eval_config: EvalConfig,
    selection: ViewSelection,
    seed: int,
) -> str:
    """What an object's renders depend on; a done.json with another fingerprint is stale."""
    payload = {
        "checkpoint": checkpoint_digest,
        "model": model_config,
        # how the network is run (points a call, compiled or eager) does not change the result
        "renderer": {k: v for k, v in renderer_config.items() if k not in RUN_ONLY_RENDERER_KEYS},
        "ray_batch": eval_config.ray_batch,
        "reuse_first_object_cameras": eval_config.reuse_first_object_cameras,
        "sources": list(selection.sources),
        "targets": list(selection.targets),
        "seed": seed,
    }
    if eval_config.scale != 1.0:
        payload["scale"] = eval_config.scale
    if eval_config.outputs.any:
        # only when asked, so that renders without extras keep their fingerprint
        payload["outputs"] = dataclasses.asdict(eval_config.outputs)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
