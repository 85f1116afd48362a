"""Training speed on a GPU: steps/s and validation PSNR in fp32, TF32 and bf16 at the
published sn64 model size, and the steps/s of data-parallel training (DDP).

    python benchmarks/train_speed.py              # a GPU machine: under 2 minutes
    python benchmarks/train_speed.py --tiny       # a tiny model on the CPU

tests/gpu/test_training.py runs it on a GPU (``make test-gpu``), tests/unit/test_train_speed.py
with ``--tiny`` on the CPU.

``main -> prepare (synthesize) -> measure per precision -> measure_ddp (torchrun of this
file with --worker) -> print_table``. The data are the procedural demo objects at 64 x 64
(sn64's image size), written to a temporary folder: nothing is downloaded. Model, renderer
and batch are sn64's (config/experiments/sn64.yaml) with an untrained encoder. Every
precision trains the same seeded steps, so the validation PSNRs after them compare; a
precision that runs past its time box stops early and says so. DDP runs one process per
GPU, two on one GPU when there is only one (gloo then, since NCCL refuses two ranks on
a device).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from pixelnerf.config import load_yaml
from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.device import resolve_device
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text
from pixelnerf.train.batches import step_batches
from pixelnerf.train.distributed import SINGLE, World, process_group, world_from_env
from pixelnerf.train.loop import build_run, train_step, validate
from pixelnerf.train.objective import tf32_matmul

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SN64 = PROJECT_ROOT / "config/experiments/sn64.yaml"
DATASET_DIR = "check"
RESULT = "train_speed result: "  # the line a --worker rank 0 prints
PRECISIONS = {"fp32": {"bf16": False, "tf32": False},
              "tf32": {"bf16": False, "tf32": True},
              "bf16": {"bf16": True, "tf32": False}}


# Sizes of a run: the published sn64 size on a GPU, a tiny model for the CPU.
FULL = {"steps": 200, "warmup": 10, "ddp_steps": 60, "time_box_s": 15.0,
        "synth": {"categories": ["chair", "car"], "train_objects": 8, "val_objects": 2,
                  "test_objects": 0, "views": 12, "image_size": 64}}
TINY = {"steps": 4, "warmup": 1, "ddp_steps": 3, "time_box_s": 60.0,
        "synth": {"categories": ["chair"], "train_objects": 2, "val_objects": 1,
                  "test_objects": 0, "views": 4, "image_size": 32}}
TINY_MODEL = {"mlp": {"type": "resnet", "n_blocks": 1, "d_hidden": 16, "combine_layer": 1,
                      "combine_type": "average"},
              "encoder": {"backbone": "resnet18", "pretrained": False, "num_layers": 1,
                          "use_first_pool": False},
              "renderer": {"n_coarse": 8, "n_fine": 4, "n_fine_depth": 2},
              "batch": {"batch_objects": 2, "rays_per_object": 16}}


def experiment(tiny: bool, steps: int, precision: str) -> dict[str, Any]:
    """sn64's model, renderer and batch (tiny ones with ``tiny``) on the synthesized data,
    trained from scratch for ``steps`` with validation at the end only."""
    sn64 = load_yaml(SN64)
    model = dict(sn64["model"], encoder=dict(sn64["model"]["encoder"], pretrained=False))
    renderer = dict(sn64["renderer"])
    train = {k: v for k, v in sn64["train"].items()
             if k not in ("published_source", "published_name")}
    if tiny:
        model.update(mlp_coarse=TINY_MODEL["mlp"], mlp_fine=TINY_MODEL["mlp"],
                     encoder=TINY_MODEL["encoder"])
        renderer.update(TINY_MODEL["renderer"])
        train.update(TINY_MODEL["batch"])
    train.update(weights="train", steps=steps, val_every=steps, vis_every=0,
                 checkpoint_every=steps, val_objects=2, **PRECISIONS[precision])
    return {"name": "train_speed",
            "dataset": {"format": "dvr", "dir": DATASET_DIR, "source": "synth-demo",
                        "list_prefix": "softras_", "image_size": None},
            "model": model, "renderer": renderer, "train": train}


def synthesize_check_data(work: Path, tiny: bool) -> Path:
    """The check's procedural objects in the DVR layout (64 x 64, sn64's size, unless
    ``tiny``) in ``work/data/check``; returns ``work/data``, the data root of
    :func:`experiment`'s dataset."""
    data_root = work / "data"
    synthesize(SynthSettings.from_mapping((TINY if tiny else FULL)["synth"]),
               data_root / DATASET_DIR)
    return data_root


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(spec: dict[str, Any], data_root: Path, device: torch.device, steps: int,
            warmup: int, time_box_s: float | None, world: World = SINGLE) -> dict[str, Any]:
    """Train ``steps`` steps (fewer when past ``time_box_s``; never in a job of several
    ranks, which must stop together); steps/s after ``warmup`` steps, validation PSNR."""
    run = build_run(spec, data_root, device, steps=steps, world=world)
    cfg = run.config
    batches = step_batches(run.train_set, cfg.batch_objects, cfg.seed, 0, steps, device,
                           run.loader_workers, cfg.cache_mb)
    began = timed_from = time.perf_counter()
    done = 0
    tf32 = tf32_matmul(run.precision.tf32) if device.type == "cuda" else contextlib.nullcontext()
    with tf32:
        for step, objects in batches:
            if step == warmup:
                synchronize(device)
                timed_from = time.perf_counter()
            train_step(run, step, objects)
            done = step + 1
            if time_box_s is not None and time.perf_counter() - began > time_box_s:
                break
        synchronize(device)
        elapsed = time.perf_counter() - timed_from
        timed = done - warmup if done > warmup else done
        psnr = validate(run)["psnr"] if run.val_objects else math.nan
    return {"steps": done, "steps_per_s": timed / elapsed if elapsed > 0 else math.nan,
            "val_psnr": psnr, "note": "" if done == steps else f"time box {time_box_s:.0f} s"}


def measure_ddp(args: argparse.Namespace, processes: int, limit_s: float) -> dict[str, Any]:
    """The same measurement in a torchrun job of ``processes`` ranks (this file, --worker)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(processes), str(Path(__file__).resolve()), "--worker",
               "--work", str(args.work), "--device", args.device]
    if args.tiny:
        command.append("--tiny")
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), OMP_NUM_THREADS="1")
    try:
        job = subprocess.run(command, capture_output=True, text=True, timeout=limit_s, env=env)
    except subprocess.TimeoutExpired:
        return {"steps": 0, "steps_per_s": math.nan, "val_psnr": math.nan,
                "note": f"did not finish in {limit_s:.0f} s"}
    for line in job.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    tail = (job.stderr.strip().splitlines() or ["no output"])[-1]
    return {"steps": 0, "steps_per_s": math.nan, "val_psnr": math.nan,
            "note": f"failed (exit {job.returncode}): {tail[:80]}"}


def worker(args: argparse.Namespace, size: dict[str, Any]) -> None:
    """One rank of the DDP measurement; rank 0 prints the result line."""
    world = world_from_env(os.environ)
    with process_group(world, resolve_device(args.device)) as device:
        row = measure(experiment(args.tiny, size["ddp_steps"], "fp32"), args.work / "data",
                      device, size["ddp_steps"], size["warmup"], None, world)
    if world.main:
        print(RESULT + json.dumps(row), flush=True)


def print_table(rows: list[dict[str, Any]], device: str) -> None:
    print(f"training check on {device} (steps/s after warm-up; PSNR on held-out objects)")
    print(f"{'mode':<6} {'procs':>5} {'steps':>6} {'steps/s':>8} {'val PSNR':>9}  note")
    for row in rows:
        print(f"{row['mode']:<6} {row['processes']:>5} {row['steps']:>6} "
              f"{row['steps_per_s']:>8.2f} {row['val_psnr']:>9.2f}  {row['note']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="steps/s and validation PSNR of training per precision, and DDP steps/s")
    parser.add_argument("--tiny", action="store_true", help="a tiny model (CPU)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the synthesized data (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = TINY if args.tiny else FULL
    if args.worker:
        worker(args, size)
        return 0
    with contextlib.ExitStack() as stack:
        if args.work is None:
            args.work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        data_root = synthesize_check_data(args.work, args.tiny)
        device = resolve_device(args.device)
        rows = []
        for mode in PRECISIONS:
            row = {"mode": mode, "processes": 1}
            if mode == "tf32" and device.type != "cuda":
                row.update(steps=0, steps_per_s=math.nan, val_psnr=math.nan,
                           note="needs CUDA")
            else:
                row.update(measure(experiment(args.tiny, size["steps"], mode),
                                   data_root, device, size["steps"], size["warmup"],
                                   size["time_box_s"]))
            rows.append(row)
        gpus = torch.cuda.device_count() if device.type == "cuda" else 0
        processes = gpus if gpus >= 2 else 2
        ddp = measure_ddp(args, processes, limit_s=size["time_box_s"] + 30)
        rows.append({"mode": "ddp", "processes": processes, **ddp,
                     "note": ddp["note"] or ("on one GPU" if gpus == 1 else "")})
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print_table(rows, name)
        if args.json is not None:
            atomic_write_text(args.json, json.dumps({"device": name, "rows": rows}, indent=2)
                              + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PipelineError as exc:
        print(f"train_speed: error: {exc}", file=sys.stderr)
        sys.exit(2)
