"""``pixelnerf table``: all shard metrics of an experiment -> its table, Markdown and plot.

Call chain: ``run -> pixelnerf.tables.build_table -> write_table``.
"""

from __future__ import annotations

import argparse

from pixelnerf.object_scores import read_rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--metrics", required=True, nargs="+",
                        help="every shard CSV of every view setting (pixelnerf metrics)")
    parser.add_argument("--paper", required=True, help="config/paper/<exp>.csv")
    parser.add_argument("--out-csv", required=True, help="results/tables/<exp>.csv")
    parser.add_argument("--out-md", required=True, help="results/tables/<exp>.md")
    parser.add_argument("--out-plot", required=True, help="results/plots/<exp>.png")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment
    from pixelnerf.tables import build_table, read_paper, write_table

    config = load_experiment(args.config)
    rows = [row for path in args.metrics for row in read_rows(path)]
    table = build_table(config, rows, read_paper(args.paper))
    write_table(table, args.out_csv, args.out_md, args.out_plot)
    return 0
