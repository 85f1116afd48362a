"""End-to-end evaluation speed: a synthetic set at the sn64 size rendered shard by shard
through ``pixelnerf render``, then scored by ``pixelnerf metrics``, with random weights.

write_experiment -> synth-demo -> random checkpoint -> render (each shard) -> metrics
(each shard) -> objects/s, rays/s and the projected sn64 evaluation time. A render's
steady rate is the one it prints for its objects after the first (which also pays loading
and compiling); what a shard spends beyond it is its start-up, paid once per shard.

Usage: python tools/gpu_check_e2e.py WORKDIR [--device cuda] [--tiny]. ``--tiny`` takes the
demo's small model at 16x16 (a CPU dry run of the same steps).
"""

from __future__ import annotations

import argparse
import re
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


STEADY = re.compile(r"([0-9.]+) objects/s after the first")
SCORED = re.compile(r"(\d+) objects scored in ([0-9.]+) s")


def cli(*args: str) -> tuple[float, str]:
    """Run ``pixelnerf ARGS`` in a fresh process: its wall time in seconds and its output
    (printed through as well)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pixelnerf.cli", *args], check=True,
                          stdout=subprocess.PIPE, text=True)
    print(done.stdout, end="", flush=True)
    return time.perf_counter() - start, done.stdout


def steady_objects_per_s(output: str) -> float:
    """The render's rate after its first object, from its summary line."""
    found = STEADY.search(output)
    if found is None:
        raise SystemExit("e2e: the render printed no steady rate (fewer than 3 objects?)")
    return float(found.group(1))


def scoring_seconds(output: str) -> float:
    """The metrics step's own scoring time (its imports and start-up left out)."""
    found = SCORED.search(output)
    if found is None:
        raise SystemExit("e2e: the metrics step printed no scoring time")
    return float(found.group(2))


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
    render_seconds = metrics_seconds = scoring = 0.0
    rates = []
    for shard in range(args.shards):
        seconds, output = cli("render", "--config", str(config), "--data-root", str(data),
                              "--checkpoint", str(checkpoint), "--setting", "1v",
                              "--shard", str(shard), "--shards", str(args.shards),
                              "--out", str(renders), "--device", args.device, "--no-progress")
        render_seconds += seconds
        rates.append(steady_objects_per_s(output))
    for shard in range(args.shards):
        manifest = renders / "1v" / f"shard-{shard}-of-{args.shards}.json"
        seconds, output = cli("metrics", "--config", str(config), "--data-root", str(data),
                              "--manifest", str(manifest), "--renders", str(renders),
                              "--out", str(work / f"metrics-{shard}.csv"),
                              "--device", args.device, "--no-progress")
        metrics_seconds += seconds
        scoring += scoring_seconds(output)
    pngs = sorted(renders.glob("1v/**/*.png"))
    objects = len(categories) * args.objects_per_category
    side = experiment["dataset"]["synth"]["image_size"]
    rays_per_object = SN64_TARGET_VIEWS * side * side
    if len(pngs) != objects * SN64_TARGET_VIEWS:
        print(f"e2e: expected {objects * SN64_TARGET_VIEWS} PNGs, found {len(pngs)}")
        return 1
    rows = sum(len((work / f"metrics-{s}.csv").read_text().splitlines()) - 1
               for s in range(args.shards))
    steady = sum(rates) / len(rates)  # objects/s
    start_up = (render_seconds - objects / steady) / args.shards  # per shard
    metrics_rate = objects / scoring
    metrics_start_up = (metrics_seconds - scoring) / args.shards
    print(f"e2e: {objects} objects x {SN64_TARGET_VIEWS} views at {side}x{side} in "
          f"{args.shards} shards; render {render_seconds:.1f} s in all, steady "
          f"{steady:.2f} objects/s = {steady * rays_per_object:,.0f} rays/s (compare the "
          f"bench's line of the same path: the goal is at least 90% of it), start-up "
          f"{start_up:.1f} s a shard; metrics {metrics_seconds:.1f} s in all, "
          f"{metrics_rate:.2f} objects/s scoring, start-up {metrics_start_up:.1f} s a shard "
          f"({rows} CSV rows)")
    for shards in (1, 8):
        per_shard = SN64_OBJECTS / shards
        render_min = (start_up + per_shard / steady) / 60
        metrics_min = (metrics_start_up + per_shard / metrics_rate) / 60
        print(f"e2e: projected sn64 evaluation ({SN64_OBJECTS} objects at 64x64) on "
              f"{shards} device{'s' if shards > 1 else ''} ({shards} shard"
              f"{'s' if shards > 1 else ''}{', SLURM' if shards > 1 else ''}): render "
              f"{render_min:.1f} min + metrics {metrics_min:.1f} min = "
              f"{render_min + metrics_min:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
