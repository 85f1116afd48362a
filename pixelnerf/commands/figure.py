"""``pixelnerf figure``: a few renders beside ground truth, for the Snakemake report."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--data-root", required=True, help="folder holding the dataset dir")
    parser.add_argument("--renders", required=True, help="results/<exp>/render")
    parser.add_argument("--setting", required=True, help="view setting, e.g. 1v")
    parser.add_argument("--manifests", required=True, nargs="+", help="shard manifests")
    parser.add_argument("--out", required=True, help="PNG to write")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment, section
    from pixelnerf.eval.config import EvalConfig
    from pixelnerf.report.figures import comparison_rows, manifest_objects, save_figure

    experiment = load_experiment(args.config)
    eval_config = EvalConfig.of_experiment(experiment)
    objects = manifest_objects(args.manifests)[: eval_config.report_objects]
    rows = comparison_rows(section(experiment, "dataset"), eval_config.split,
                           Path(args.data_root), Path(args.renders), args.setting, objects,
                           eval_config.report_views, eval_config.scale)
    save_figure(rows, args.out, title=f"{experiment['name']} {args.setting}")
    print(f"figure: wrote {args.out} ({len(rows)} objects)")
    return 0
