"""End-to-end evaluation speed: a synthetic set at the sn64 size rendered shard by shard
through ``pixelnerf render``, then scored by ``pixelnerf metrics``, with random weights.

write_experiment -> synth-demo -> random checkpoint -> render (each shard) -> metrics
(each shard) -> objects/s, rays/s and the projected sn64 evaluation time.

Usage: python tools/gpu_check_e2e.py WORKDIR [--device cuda] [--tiny]. ``--tiny`` takes the
demo's small model at 16x16 (a CPU dry run of the same steps).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
SN64_OBJECTS = 8762
SN64_TARGET_VIEWS = 23
CATEGORIES = ["chair", "table", "lamp", "car"]


def write_experiment(work: Path, tiny: bool, categories: list[str], objects_per_category: int,
                     shards: int) -> Path:
    """The demo experiment with sn64's model, renderer and eval batch (or the demo's own
    small ones with ``tiny``), a synthetic test split of 24 views (1 source + 23 targets)."""
    demo = yaml.safe_load((ROOT / "config/experiments/demo.yaml").read_text())
    sn64 = yaml.safe_load((ROOT / "config/experiments/sn64.yaml").read_text())
    experiment = dict(demo, name="gpucheck")
    synth = dict(demo["dataset"]["synth"], categories=categories, train_objects=1,
                 val_objects=1, test_objects=objects_per_category, views=24,
                 image_size=16 if tiny else 64)
    experiment["dataset"] = dict(demo["dataset"], dir="gpucheck", synth=synth)
    if not tiny:
        experiment["model"] = sn64["model"]
        experiment["model"]["encoder"] = dict(sn64["model"]["encoder"], pretrained=False)
        experiment["renderer"] = sn64["renderer"]
    experiment["eval"] = dict(demo["eval"], shards=shards, baselines=False,
                              ray_batch=demo["eval"]["ray_batch"] if tiny
                              else sn64["eval"]["ray_batch"])
    path = work / "gpucheck.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return path


def cli(*args: str) -> float:
    """Run ``pixelnerf ARGS`` in a fresh process; its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pixelnerf.cli", *args], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--objects-per-category", type=int, default=8)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--categories", type=int, default=len(CATEGORIES))
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    categories = CATEGORIES[: args.categories]
    config = write_experiment(work, args.tiny, categories, args.objects_per_category, args.shards)
    data = work / "data"
    cli("synth-demo", str(data / "gpucheck"), "--config", str(config))

    from pixelnerf.config import load_experiment, section
    from pixelnerf.model import PixelNeRF

    experiment = load_experiment(config)
    torch.manual_seed(0)
    model = PixelNeRF.from_config(section(experiment, "model"), pretrained_encoder=False)
    checkpoint = work / "pixel_nerf_latest"
    torch.save(model.state_dict(), checkpoint)

    renders = work / "render"
    render_seconds = metrics_seconds = 0.0
    for shard in range(args.shards):
        render_seconds += cli("render", "--config", str(config), "--data-root", str(data),
                              "--checkpoint", str(checkpoint), "--setting", "1v",
                              "--shard", str(shard), "--shards", str(args.shards),
                              "--out", str(renders), "--device", args.device, "--no-progress")
    for shard in range(args.shards):
        manifest = renders / "1v" / f"shard-{shard}-of-{args.shards}.json"
        metrics_seconds += cli("metrics", "--config", str(config), "--data-root", str(data),
                               "--manifest", str(manifest), "--renders", str(renders),
                               "--out", str(work / f"metrics-{shard}.csv"),
                               "--device", args.device, "--no-progress")
    pngs = sorted(renders.glob("1v/**/*.png"))
    objects = len(categories) * args.objects_per_category
    side = experiment["dataset"]["synth"]["image_size"]
    rays = len(pngs) * side * side
    if len(pngs) != objects * SN64_TARGET_VIEWS:
        print(f"e2e: expected {objects * SN64_TARGET_VIEWS} PNGs, found {len(pngs)}")
        return 1
    rows = sum(len((work / f"metrics-{s}.csv").read_text().splitlines()) - 1
               for s in range(args.shards))
    per_object_render = render_seconds / objects
    per_object_metrics = metrics_seconds / objects
    total = SN64_OBJECTS * (per_object_render + per_object_metrics)
    print(f"e2e: {objects} objects x {SN64_TARGET_VIEWS} views at {side}x{side} in "
          f"{args.shards} shards; render {render_seconds:.1f} s ({objects / render_seconds:.2f} "
          f"objects/s, {rays / render_seconds:,.0f} rays/s, process start and model load "
          f"included); metrics {metrics_seconds:.1f} s ({objects / metrics_seconds:.2f} "
          f"objects/s, {rows} CSV rows)")
    print(f"e2e: projected sn64 evaluation ({SN64_OBJECTS} objects): render "
          f"{SN64_OBJECTS * per_object_render / 60:.1f} min + metrics "
          f"{SN64_OBJECTS * per_object_metrics / 60:.1f} min = {total / 60:.1f} min on one "
          f"device, {total / 8 / 60:.1f} min on 8 SLURM shards (one device each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
