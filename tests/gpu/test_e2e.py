"""End-to-end evaluation on a GPU: a synthetic set at the sn64 size rendered shard by shard
through ``pixelnerf render``, then scored by ``pixelnerf metrics``, with random weights.

``measure_e2e``: synth-demo -> random checkpoint -> render (each shard) -> metrics (each
shard). Every test object gets a PNG per target view and a metrics row; the figures printed
are objects/s, rays/s and the projected sn64 evaluation time. A render's steady rate is the
one it prints for its objects after the first (which also pays loading and compiling); what
a shard spends beyond it is its start-up, paid once per shard.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from helpers import PROJECT_ROOT

SN64_OBJECTS = 8762
TARGET_VIEWS = 23  # sn64's target views an object (24 views, one the source)
CATEGORIES = ["chair", "table", "lamp", "car"]
OBJECTS_PER_CATEGORY = 4
SHARDS = 2
STEADY = re.compile(r"([0-9.]+) objects/s after the first")
SCORED = re.compile(r"(\d+) objects scored in ([0-9.]+) s")


@dataclass(frozen=True)
class E2EFigures:
    """What one end-to-end run measured."""

    objects: int
    side: int
    pngs: int
    metric_rows: int
    render_s: float
    steady_objects_per_s: float
    render_start_up_s: float  # a shard's
    metrics_s: float
    metrics_objects_per_s: float
    metrics_start_up_s: float  # a shard's


def sn64_experiment(objects_per_category: int, shards: int) -> dict[str, Any]:
    """The demo experiment with sn64's model (untrained encoder), renderer and eval batch,
    and a synthetic test split of 24 views (1 source + 23 targets) at 64x64."""
    demo = yaml.safe_load((PROJECT_ROOT / "config/experiments/demo.yaml").read_text())
    sn64 = yaml.safe_load((PROJECT_ROOT / "config/experiments/sn64.yaml").read_text())
    synth = dict(demo["dataset"]["synth"], categories=CATEGORIES, train_objects=1,
                 val_objects=1, test_objects=objects_per_category,
                 views=TARGET_VIEWS + 1, image_size=64)
    return dict(
        demo, name="gpucheck",
        dataset=dict(demo["dataset"], dir="gpucheck", synth=synth),
        model=dict(sn64["model"], encoder=dict(sn64["model"]["encoder"], pretrained=False)),
        renderer=sn64["renderer"],
        eval=dict(demo["eval"], shards=shards, baselines=False,
                  ray_batch=sn64["eval"]["ray_batch"]),
    )


def cli(*args: str) -> tuple[float, str]:
    """``pixelnerf ARGS`` in a fresh process: its wall time in seconds and its output (printed
    through as well)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pixelnerf.cli", *args], check=True,
                          stdout=subprocess.PIPE, text=True)
    print(done.stdout, end="", flush=True)
    return time.perf_counter() - start, done.stdout


def found(pattern: re.Pattern[str], output: str, what: str) -> re.Match[str]:
    match = pattern.search(output)
    assert match is not None, f"no {what} in:\n{output[-2000:]}"
    return match


def measure_e2e(work: Path, experiment: dict[str, Any], device: str) -> E2EFigures:
    """Synthesize ``experiment``'s data, render and score its test split shard by shard on
    ``device`` with a seeded random model."""
    from pixelnerf.config import load_experiment, section
    from pixelnerf.model import PixelNeRF

    config = work / "gpucheck.yaml"
    config.write_text(yaml.safe_dump(experiment, sort_keys=False))
    data = work / "data"
    cli("synth-demo", str(data / experiment["dataset"]["dir"]), "--config", str(config))
    torch.manual_seed(0)
    model = PixelNeRF.from_config(section(load_experiment(config), "model"),
                                  pretrained_encoder=False)
    checkpoint = work / "pixel_nerf_latest"
    torch.save(model.state_dict(), checkpoint)

    shards = experiment["eval"]["shards"]
    renders = work / "render"
    render_s = metrics_s = scoring_s = 0.0
    rates = []
    for shard in range(shards):
        seconds, output = cli("render", "--config", str(config), "--data-root", str(data),
                              "--checkpoint", str(checkpoint), "--setting", "1v",
                              "--shard", str(shard), "--shards", str(shards),
                              "--out", str(renders), "--device", device, "--no-progress")
        render_s += seconds
        rates.append(float(found(STEADY, output, "steady render rate").group(1)))
    rows = 0
    for shard in range(shards):
        manifest = renders / "1v" / f"shard-{shard}-of-{shards}.json"
        table = work / f"metrics-{shard}.csv"
        seconds, output = cli("metrics", "--config", str(config), "--data-root", str(data),
                              "--manifest", str(manifest), "--renders", str(renders),
                              "--out", str(table), "--device", device, "--no-progress")
        metrics_s += seconds
        scoring_s += float(found(SCORED, output, "scoring time").group(2))
        rows += len(table.read_text().splitlines()) - 1
    synth = experiment["dataset"]["synth"]
    objects = len(synth["categories"]) * synth["test_objects"]
    steady = sum(rates) / len(rates)
    return E2EFigures(
        objects=objects, side=synth["image_size"],
        pngs=len(list(renders.glob("1v/**/*.png"))), metric_rows=rows,
        render_s=render_s, steady_objects_per_s=steady,
        render_start_up_s=(render_s - objects / steady) / shards,
        metrics_s=metrics_s, metrics_objects_per_s=objects / scoring_s,
        metrics_start_up_s=(metrics_s - scoring_s) / shards,
    )


def report(f: E2EFigures, shards: int) -> str:
    """The figures and the projected sn64 evaluation on 1 and on 8 devices."""
    rays_per_object = TARGET_VIEWS * f.side * f.side
    lines = [
        f"e2e: {f.objects} objects x {TARGET_VIEWS} views at {f.side}x{f.side} in {shards} "
        f"shards; render {f.render_s:.1f} s in all, steady {f.steady_objects_per_s:.2f} "
        f"objects/s = {f.steady_objects_per_s * rays_per_object:,.0f} rays/s (compare the "
        f"bench's line of the same path: the goal is at least 90% of it), start-up "
        f"{f.render_start_up_s:.1f} s a shard; metrics {f.metrics_s:.1f} s in all, "
        f"{f.metrics_objects_per_s:.2f} objects/s scoring, start-up "
        f"{f.metrics_start_up_s:.1f} s a shard ({f.metric_rows} CSV rows)"]
    for devices in (1, 8):
        per_shard = SN64_OBJECTS / devices
        render_min = (f.render_start_up_s + per_shard / f.steady_objects_per_s) / 60
        metrics_min = (f.metrics_start_up_s + per_shard / f.metrics_objects_per_s) / 60
        lines.append(
            f"e2e: projected sn64 evaluation ({SN64_OBJECTS} objects at 64x64) on {devices} "
            f"device(s), one shard each: render {render_min:.1f} min + metrics "
            f"{metrics_min:.1f} min = {render_min + metrics_min:.1f} min")
    return "\n".join(lines)


def test_sharded_render_and_metrics_at_the_sn64_size(tmp_path: Path) -> None:
    experiment = sn64_experiment(OBJECTS_PER_CATEGORY, SHARDS)
    figures = measure_e2e(tmp_path, experiment, "cuda")
    print(report(figures, SHARDS))
    assert figures.objects == len(CATEGORIES) * OBJECTS_PER_CATEGORY
    assert figures.pngs == figures.objects * TARGET_VIEWS
    assert figures.metric_rows == figures.objects
    assert figures.steady_objects_per_s > 0 and figures.metrics_objects_per_s > 0
