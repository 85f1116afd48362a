"""Bookkeeping cost of the evaluation at the real scale, without the network.

Builds a synthetic DVR-layout test split of N tiny objects (8x8 images, a tiny model; the
objects are hard links of a few synthesized ones, so building 8,762 takes seconds), then
times, per N: a first render over the shards with the network replaced by a constant (what
is left is listing, skip checks, PNG and done.json writes, manifests), the resume of the same
command (every object skipped), the metrics step's done.json scan and render-file checks, and
the table's reduction of N rows. Prints one Markdown row per N with microseconds per object.

    OMP_NUM_THREADS=1 python benchmarks/scale_check.py --sizes 1000 2000 4000 8762 --work /tmp/scale
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
SEED_OBJECTS = 8  # synthesized per category; every other object links to one of them
CATEGORIES = ("chair", "car")
TINY_MODEL = {
    "mlp_coarse": {"d_hidden": 8, "n_blocks": 1, "combine_layer": 1},
    "mlp_fine": {"d_hidden": 8, "n_blocks": 1, "combine_layer": 1},
    "encoder": {"backbone": "resnet18", "num_layers": 1},
}


@dataclass
class Figures:
    """Seconds of each phase for N objects."""

    n: int
    render: float
    resume: float
    scan: float
    table: float
    rendered_on_resume: int


def build_dataset(root: Path, n: int, views: int) -> Path:
    """``root/scale`` with ``n`` test objects split over the categories; returns it."""
    from pixelnerf.data.demo import SynthSettings, synthesize

    seeds = root / "seeds"
    if not seeds.exists():
        synthesize(SynthSettings.from_mapping(
            {"categories": list(CATEGORIES), "train_objects": 0, "val_objects": 0,
             "test_objects": SEED_OBJECTS, "views": views, "image_size": 8}), seeds)
    data = root / "scale"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    shutil.copy(seeds / "metadata.yaml", data / "metadata.yaml")
    for c, category in enumerate(CATEGORIES):
        ids = [f"obj_{i:05d}" for i in range(c, n, len(CATEGORIES))]
        for i, object_id in enumerate(ids):
            source = seeds / category / f"{category}_{i % SEED_OBJECTS:03d}"
            shutil.copytree(source, data / category / object_id, copy_function=os.link)
        for split in ("train", "val", "test"):
            listed = ids if split == "test" else []
            (data / category / f"softras_{split}.lst").write_text("".join(f"{o}\n" for o in listed))
    return data


def experiment(shards: int) -> dict[str, Any]:
    from pixelnerf.config import load_experiment

    config = load_experiment(ROOT / "config" / "experiments" / "demo.yaml")
    config["dataset"].update(dir="scale", image_size=None)
    config["dataset"].pop("synth", None)
    for key, value in TINY_MODEL.items():
        config["model"][key].update(value)
    config["eval"].update(shards=shards, baselines=False)
    return config


def time_it(fn) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure(work: Path, n: int, shards: int, views: int) -> Figures:
    """The four phases for ``n`` objects (the network of the render is a constant)."""
    from unittest import mock

    import pixelnerf.eval.render as render
    from pixelnerf.eval.config import EvalConfig
    from pixelnerf.eval.inference import Inference, ViewPasses
    from pixelnerf.eval.object_scores import ObjectRow
    from pixelnerf.eval.records import read_done, read_manifest
    from pixelnerf.eval.tables import build_table, read_paper
    from pixelnerf.io import atomic_torch_save
    from pixelnerf.model import PixelNeRF
    from pixelnerf.model.plan import DEFAULT_PLAN

    build_dataset(work, n, views)
    config = experiment(shards)
    checkpoint = work / "model.pt"
    atomic_torch_save(PixelNeRF.from_config(config["model"], pretrained_encoder=False)
                      .state_dict(), checkpoint)
    out = work / "render"
    shutil.rmtree(out, ignore_errors=True)
    calls = []

    def constant(model, renderer, images, cameras, selection, *args, **kwargs):
        calls.append(selection)
        n, height, width = len(selection.targets), images.shape[2], images.shape[3]
        rgb = torch.full((n, height, width, 3), 0.5)
        return ViewPasses(rgb=rgb, depth=torch.ones(n, height, width), coarse_rgb=rgb)

    job = render.RenderJob.of_experiment(config, work, checkpoint, out)

    def render_all() -> list[Path]:
        return [render.render_shard(job, "1v", k, shards, torch.device("cpu"), progress=False)
                for k in range(shards)]

    with mock.patch.object(render, "render_view_passes", constant), \
            mock.patch.object(render, "load_inference",
                              lambda *a, **k: Inference(None, None, DEFAULT_PLAN)):
        render_s, manifests = time_it(render_all)
        assert len(calls) == n, (len(calls), n)
        calls.clear()
        resume_s, _ = time_it(render_all)
    rendered_on_resume = len(calls)

    def scan() -> list[Any]:
        records = []
        for manifest in manifests:
            setting, ids = read_manifest(manifest)
            records.extend(read_done(out, setting, object_id) for object_id in ids)
        return records

    scan_s, records = time_it(scan)
    assert len(records) == n
    rows = [ObjectRow("1v", r.category, r.object_id, len(r.targets), 20.0 + i % 7, 0.9, 0.1)
            for i, r in enumerate(records)]
    paper = read_paper(ROOT / "config" / "paper" / "demo.csv")
    eval_config = EvalConfig.of_experiment(config)
    table_s, _ = time_it(lambda: build_table("scale", "dvr", eval_config, rows, paper))
    return Figures(n, render_s, resume_s, scan_s, table_s, rendered_on_resume)


def report(figures: Sequence[Figures]) -> str:
    lines = ["| objects | first render (s) | resume, all skipped (s) | metrics done.json scan (s) "
             "| table reduction (s) | resume per object (ms) | rendered on resume |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for f in figures:
        lines.append(f"| {f.n} | {f.render:.2f} | {f.resume:.2f} | {f.scan:.2f} | "
                     f"{f.table:.3f} | {1000 * f.resume / f.n:.3f} | {f.rendered_on_resume} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[Figures]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 8762])
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--views", type=int, default=4, help="views per object (1 source)")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (recreated)")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    figures = []
    for n in args.sizes:  # a row as soon as it is measured: the largest sizes take minutes
        figures.append(measure(args.work, n, args.shards, args.views))
        print(report(figures[-1:]), flush=True)
    print(report(figures))
    return figures


if __name__ == "__main__":
    main()
