"""``pixelnerf render``: render the target views of one shard of an experiment's test objects."""

from __future__ import annotations

import argparse
from pathlib import Path


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
    from pixelnerf.config import load_experiment
    from pixelnerf.device import resolve_device
    from pixelnerf.eval.render import RenderJob, render_shard

    job = RenderJob.of_experiment(load_experiment(args.config), Path(args.data_root),
                                  Path(args.checkpoint), Path(args.out))
    manifest = render_shard(job, args.setting, args.shard, args.shards,
                            resolve_device(args.device), progress=not args.no_progress,
                            approx=args.approx)
    print(f"render: wrote {manifest}")
    return 0
