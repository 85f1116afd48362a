"""``pixelnerf provenance``: git commit, configs, versions, device, stage times of a table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--experiment", required=True, help="the experiment's name")
    parser.add_argument("--benchmarks", required=True, help="Snakemake benchmark folder")
    parser.add_argument("--table", required=True, help="results/tables/<exp>.csv")
    parser.add_argument("--renders", default=None,
                        help="results/<exp>/render (devices from done.json); default beside table")
    parser.add_argument("--workflow-config", default="{}", help="global config as JSON")
    parser.add_argument("--device", default="auto", help="the configured device")
    parser.add_argument("--metrics", nargs="*", default=[],
                        help="the table's metrics CSVs (LPIPS trunk origins are counted)")
    parser.add_argument("--out", required=True, help="results/tables/<exp>.provenance.json")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment
    from pixelnerf.errors import PipelineError
    from pixelnerf.io import atomic_write_text
    from pixelnerf.report.provenance import build_record

    experiment = load_experiment(args.config)
    try:
        workflow_config = json.loads(args.workflow_config)
    except ValueError as exc:
        raise PipelineError(f"--workflow-config is not JSON: {exc}") from exc
    table = Path(args.table)
    default_renders = table.parent.parent / args.experiment / "render"
    renders = Path(args.renders) if args.renders else default_renders
    record = build_record(
        experiment, args.experiment, Path(args.benchmarks), table, renders,
        workflow_config, args.device, [Path(p) for p in args.metrics],
    )
    atomic_write_text(args.out, json.dumps(record, indent=1, sort_keys=False) + "\n")
    print(f"provenance: wrote {args.out}")
    return 0
