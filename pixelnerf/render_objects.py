"""`pixelnerf render`: render the target views of one shard of an experiment's test objects.

Call chain: run -> render_shard -> (load_model, render_views -> pixelnerf.render.Renderer).

Per object: encode its source views once, render all its target views in ray batches of
`eval.ray_batch`, clamp to [0, 1] and truncate to 8 bits (`uint8(x * 255)`, spec section 5),
write `<out>/<setting>/<object_id>/{view:06d}.png` atomically, then `done.json` LAST. A rerun
skips an object whose done.json carries the same fingerprint (checkpoint digest, renderer
settings, views, seed), so a killed job loses at most the object in progress, and renders of an
older checkpoint are never mistaken for current ones. The random sample offsets of each object
come from a generator seeded by (eval.seed, setting, object id), so results do not depend on
sharding, order or resume. When every object is done the shard manifest
`<out>/<setting>/shard-<k>-of-<K>.json` is written (the workflow's output of the job).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.config import load_experiment, section
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_save_png, atomic_write_text
from pixelnerf.protocol import Protocol, ViewSelection, shard_objects, stable_seed

DONE_FILE = "done.json"
HASH_BLOCK_BYTES = 1 << 20  # read size when hashing the checkpoint
RUN_ONLY_RENDERER_KEYS = ("chunk_points", "compile")  # left out of the render fingerprint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--data-root", required=True, help="folder holding the dataset dir")
    parser.add_argument("--checkpoint", required=True, help="checkpoints/<exp>/pixel_nerf_latest")
    parser.add_argument("--setting", required=True, help="view setting of eval.settings, e.g. 1v")
    parser.add_argument("--shard", type=int, default=0, help="this shard, 0-based")
    parser.add_argument("--shards", type=int, default=1, help="number of shards")
    parser.add_argument("--out", required=True, help="results/<exp>/render")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--approx", action="store_true",
                        help="render only the seeded sample of eval.approx (objects and views)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.device import resolve_device

    experiment = load_experiment(args.config)
    manifest = render_shard(
        experiment,
        data_root=Path(args.data_root),
        checkpoint=Path(args.checkpoint),
        setting=args.setting,
        shard=args.shard,
        shards=args.shards,
        out_root=Path(args.out),
        device=resolve_device(args.device),
        progress=not args.no_progress,
        approx=args.approx,
    )
    print(f"render: wrote {manifest}")
    return 0


# --------------------------------------------------------------------------- helpers


def shard_manifest_path(out_root: Path, setting: str, shard: int, shards: int) -> Path:
    """``<out>/<setting>/shard-<k>-of-<K>.json`` (k is 0-based)."""
    return out_root / setting / f"shard-{shard}-of-{shards}.json"


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


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``(..., 3)`` float colours -> uint8 by clamping to [0, 1] and truncating ``x * 255``."""
    values = np.clip(rgb.detach().float().cpu().numpy(), 0.0, 1.0)
    return (values * 255).astype(np.uint8)


def device_label(device: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H100 ...)``: recorded per object for the provenance file."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _focal_batch(focal: torch.Tensor) -> torch.Tensor:
    """Per-object focal as the model wants it: ``(1,)`` for one value, ``(1, 2)`` for fx, fy."""
    focal = torch.as_tensor(focal, dtype=torch.float32)
    return focal.reshape(1) if focal.numel() == 1 else focal.reshape(1, 2)


def _principal_batch(c: Any) -> torch.Tensor | None:
    """``(2,)`` principal point -> ``(1, 2)``; None stays None (image centre)."""
    return None if c is None else torch.as_tensor(c, dtype=torch.float32).reshape(1, 2)


@dataclass(frozen=True)
class Cameras:
    """The cameras of one object: poses ``(NV, 4, 4)``, focal scalar or ``(2,)``, c ``(2,)``."""

    poses: torch.Tensor
    focal: torch.Tensor
    c: torch.Tensor | None
    z_near: float
    z_far: float

    @classmethod
    def of_item(cls, item: Mapping[str, Any]) -> Cameras:
        return cls(
            poses=torch.as_tensor(item["poses"], dtype=torch.float32),
            focal=torch.as_tensor(item["focal"], dtype=torch.float32),
            c=None if item.get("c") is None else torch.as_tensor(item["c"], dtype=torch.float32),
            z_near=float(item["z_near"]),
            z_far=float(item["z_far"]),
        )


def load_model(experiment: Mapping[str, Any], checkpoint: Path, device: torch.device):
    """The experiment's network with the checkpoint's weights, in eval mode on ``device``."""
    from pixelnerf.model import PixelNeRF, load_checkpoint

    # Every weight comes from the checkpoint (strict load): no ImageNet download.
    model = PixelNeRF.from_config(section(experiment, "model"), pretrained_encoder=False)
    if not checkpoint.is_file():
        raise PipelineError(f"checkpoint {checkpoint} does not exist")
    load_checkpoint(checkpoint, model)
    return model.to(device).eval()


@torch.no_grad()
def render_views(
    model: torch.nn.Module,
    renderer: Any,
    images: torch.Tensor,
    cameras: Cameras,
    selection: ViewSelection,
    ray_batch: int,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Render the target views of one object from its source views.

    images: ``(NV, 3, H, W)`` in [-1, 1]. Returns ``(NT, H, W, 3)`` float colours (fine pass
    when the renderer has fine samples, else coarse), on the CPU.
    """
    import pixelnerf.render as R

    sources = list(selection.sources)
    targets = list(selection.targets)
    _, _, height, width = images.shape
    focal = _focal_batch(cameras.focal).to(device)
    c = _principal_batch(cameras.c)
    model.encode(
        images[sources].unsqueeze(0).to(device),
        cameras.poses[sources].unsqueeze(0).to(device),
        focal,
        c=None if c is None else c.to(device),
    )
    rays = R.image_rays(
        cameras.poses[targets].to(device),
        height,
        width,
        cameras.focal.to(device),
        cameras.z_near,
        cameras.z_far,
        c=None if cameras.c is None else cameras.c.to(device),
    ).reshape(-1, 8)
    colours = []
    for batch in torch.split(rays, ray_batch, dim=0):
        out = renderer(model, batch.unsqueeze(0), generator=generator)
        passes = out.get("fine") or out["coarse"]
        colours.append(passes["rgb"][0].float().cpu())
    return torch.cat(colours, dim=0).reshape(len(targets), height, width, 3)


def _fingerprint(
    checkpoint_digest: str, experiment: Mapping[str, Any], selection: ViewSelection, seed: int
) -> str:
    """What an object's renders depend on; a done.json with another fingerprint is stale."""
    payload = {
        "checkpoint": checkpoint_digest,
        "model": experiment.get("model"),
        # how the network is run (points a call, compiled or eager) does not change the result
        "renderer": {
            k: v for k, v in section(experiment, "renderer").items()
            if k not in RUN_ONLY_RENDERER_KEYS
        },
        "ray_batch": experiment["eval"].get("ray_batch"),
        "reuse_first_object_cameras": bool(experiment["eval"].get("reuse_first_object_cameras")),
        "sources": list(selection.sources),
        "targets": list(selection.targets),
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def is_done(object_dir: Path, fingerprint: str) -> bool:
    """True when ``object_dir/done.json`` exists and records ``fingerprint``."""
    done = object_dir / DONE_FILE
    try:
        record = json.loads(done.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("fingerprint") == fingerprint


def open_split(experiment: Mapping[str, Any], data_root: Path):
    """The experiment's evaluation split as a dataset (``pixelnerf.data.open_dataset``)."""
    from pixelnerf.data import open_dataset

    dataset_cfg = section(experiment, "dataset")
    root = data_root / dataset_cfg["dir"]
    if not data_root.is_dir():
        raise PipelineError(f"data root {data_root} does not exist")
    if not root.exists():
        raise PipelineError(f"dataset folder {root} does not exist (dataset.dir)")
    options = {}
    if dataset_cfg.get("list_prefix") is not None:
        options["list_prefix"] = dataset_cfg["list_prefix"]
    image_size = dataset_cfg.get("image_size")
    return open_dataset(
        dataset_cfg["format"],
        str(root),
        experiment["eval"]["split"],
        image_size=tuple(image_size) if image_size else None,
        **options,
    )


def object_ids_of(dataset: Any) -> list[str]:
    """Object ids of a dataset in its order, from its listing (no image is decoded)."""
    entries = getattr(dataset, "entries", None)
    if entries is not None:
        return [str(entry.object_id) for entry in entries]
    return [str(dataset[i]["object_id"]) for i in range(len(dataset))]


# --------------------------------------------------------------------------- the shard


def render_shard(
    experiment: Mapping[str, Any],
    data_root: Path,
    checkpoint: Path,
    setting: str,
    shard: int,
    shards: int,
    out_root: Path,
    device: torch.device,
    progress: bool = True,
    approx: bool = False,
) -> Path:
    """Render every unfinished object of one shard; returns the manifest path written last.

    ``approx``: only the seeded sample of `eval.approx` (objects of the split, then target
    views per object, :mod:`pixelnerf.approx`), for the approximate evaluation.
    """
    from tqdm import tqdm

    import pixelnerf.render as R

    eval_cfg = section(experiment, "eval")
    protocol = Protocol.from_config(experiment)
    protocol.rule(setting)  # an unknown setting fails before any work
    dataset = open_split(experiment, data_root)
    all_ids = object_ids_of(dataset)
    if not all_ids:
        raise PipelineError(
            f"split {eval_cfg['split']!r} of {experiment.get('name')} has no objects"
        )
    approx_cfg = eval_cfg.get("approx") or {}
    if approx:
        from pixelnerf.approx import sample_objects

        if not approx_cfg:
            raise PipelineError(f"{experiment.get('name')}: --approx needs an eval.approx section")
        mine = shard_objects(
            sample_objects(all_ids, int(approx_cfg["objects"]), int(approx_cfg["seed"])),
            shard, shards,
        )
    else:
        mine = shard_objects(all_ids, shard, shards)
    index_of = {object_id: i for i, object_id in enumerate(all_ids)}
    setting_dir = out_root / setting
    ray_batch = int(eval_cfg.get("ray_batch") or 50000)
    base_seed = int(eval_cfg.get("seed", 0))
    digest = file_digest(checkpoint)

    first_cameras = None
    if eval_cfg.get("reuse_first_object_cameras"):
        # The published eval.py quirk (spec section 5): the first object's cameras for all.
        first_cameras = Cameras.of_item(dataset[0])

    model = renderer = None
    bar = tqdm(
        mine, desc=f"render {setting} shard {shard}/{shards}", unit="obj", disable=not progress
    )
    rendered = skipped = 0
    for object_id in bar:
        item = None
        n_views = None
        cameras_source = first_cameras
        if cameras_source is None:
            item = dataset[index_of[object_id]]
            n_views = int(item["images"].shape[0])
        else:
            n_views = int(cameras_source.poses.shape[0])
        selection = protocol.select(setting, object_id, n_views)
        if approx:
            from pixelnerf.approx import sample_views

            views = sample_views(
                object_id, selection.targets, int(approx_cfg["views"]), int(approx_cfg["seed"])
            )
            selection = ViewSelection(sources=selection.sources, targets=views)
        seed = stable_seed(base_seed, setting, object_id)
        fingerprint = _fingerprint(digest, experiment, selection, seed)
        object_dir = setting_dir / object_id
        if is_done(object_dir, fingerprint):
            skipped += 1
            continue
        if item is None:
            item = dataset[index_of[object_id]]
        if model is None:
            model = load_model(experiment, checkpoint, device)
            renderer = R.Renderer.from_config(section(experiment, "renderer")).eval()
        cameras = cameras_source or Cameras.of_item(item)
        start = time.perf_counter()
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        rgb = render_views(
            model, renderer, torch.as_tensor(item["images"]), cameras, selection,
            ray_batch, generator, device,
        )
        for view, image in zip(selection.targets, to_uint8(rgb), strict=True):
            atomic_save_png(object_dir / f"{view:06d}.png", image)
        seconds = time.perf_counter() - start
        record = {
            "object_id": object_id,
            "category": str(item.get("category", "")),
            "sources": list(selection.sources),
            "targets": list(selection.targets),
            "seconds": round(seconds, 4),
            "seed": seed,
            "device": device_label(device),
            "fingerprint": fingerprint,
        }
        atomic_write_text(object_dir / DONE_FILE, json.dumps(record, indent=1) + "\n")
        rendered += 1
        bar.set_postfix(views_per_s=f"{len(selection.targets) / max(seconds, 1e-9):.2f}")
    bar.close()
    print(f"render: {setting} shard {shard} of {shards}: {rendered} objects rendered, "
          f"{skipped} already done")
    manifest = shard_manifest_path(out_root, setting, shard, shards)
    atomic_write_text(
        manifest,
        json.dumps({"setting": setting, "shard": shard, "shards": shards, "objects": mine},
                   indent=1) + "\n",
    )
    return manifest

