"""``pixelnerf sensitivity``: how an experiment's table total moves with each choice of the
evaluation protocol (:mod:`pixelnerf.eval.sensitivity`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pixelnerf.commands.metrics import add_lpips_arguments
from pixelnerf.eval.paired import DEFAULT_RESAMPLES, DEFAULT_SEED
from pixelnerf.eval.sensitivity.build import DEFAULT_DRAWS, DEFAULT_OBJECTS, DEFAULT_VIEWS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--data-root", required=True, help="root folder of the datasets")
    parser.add_argument("--checkpoint", required=True, help="the weights the renders used")
    parser.add_argument("--renders", required=True, help="results/<exp>/render")
    parser.add_argument("--metrics", required=True, nargs="+",
                        help="every shard CSV of every view setting (those of the table)")
    parser.add_argument("--out-csv", required=True, help="results/sensitivity/<exp>.csv")
    parser.add_argument("--out-md", required=True, help="results/sensitivity/<exp>.md")
    parser.add_argument("--out-plot", required=True,
                        help="results/plots/<exp>_sensitivity.png")
    add_lpips_arguments(parser)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--objects", type=int, default=DEFAULT_OBJECTS,
                        help="objects drawn for the variants that render again "
                             f"(default {DEFAULT_OBJECTS}; all when fewer)")
    parser.add_argument("--views", type=int, default=DEFAULT_VIEWS,
                        help=f"target views per drawn object (default {DEFAULT_VIEWS})")
    parser.add_argument("--draws", type=int, default=DEFAULT_DRAWS,
                        help=f"seeded random source-view draws (default {DEFAULT_DRAWS})")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES,
                        help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="seed of the bootstrap and of the object and view draws")
    parser.add_argument("--no-rerender", action="store_true",
                        help="only the choices that re-score the reference's PNGs")
    parser.add_argument("--workers", type=int, default=None,
                        help="objects re-scored at once (default: the CPUs this job may use)")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment
    from pixelnerf.device import resolve_device
    from pixelnerf.errors import PipelineError
    from pixelnerf.eval.object_scores import read_rows
    from pixelnerf.eval.render import RenderJob
    from pixelnerf.eval.sensitivity.build import SensitivityOptions, build_sensitivity
    from pixelnerf.eval.sensitivity.lpips_seam import default_lpips_models
    from pixelnerf.eval.sensitivity.plot import plot_sensitivity
    from pixelnerf.eval.sensitivity.table import write

    for name in ("objects", "views", "draws", "resamples"):
        if getattr(args, name) < 1:
            raise PipelineError(f"--{name} must be at least 1")
    experiment = load_experiment(args.config)
    job = RenderJob.of_experiment(experiment, Path(args.data_root), Path(args.checkpoint),
                                  Path(args.renders))
    device = resolve_device(args.device)
    models = default_lpips_models(args.lpips_weights, device,
                                  lambda line: print(line, file=sys.stderr),
                                  checkpoints_root=args.checkpoints_root,
                                  sources_path=args.sources)
    options = SensitivityOptions(objects=args.objects, views=args.views, draws=args.draws,
                                 resamples=args.resamples, seed=args.seed,
                                 workers=args.workers or len(os.sched_getaffinity(0)),
                                 rerender=not args.no_rerender)
    rows = [row for path in args.metrics for row in read_rows(path)]
    table = build_sensitivity(experiment, job, rows, models, device, options)
    write(table, args.out_csv, args.out_md)
    plot_sensitivity(table, args.out_plot)
    return 0
