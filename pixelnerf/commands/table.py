"""``pixelnerf table``: all shard metrics of an experiment -> its table, Markdown and plot."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--metrics", required=True, nargs="+",
                        help="every shard CSV of every view setting (pixelnerf metrics)")
    parser.add_argument("--paper", required=True, help="config/paper/<exp>.csv")
    parser.add_argument("--out-csv", required=True, help="results/tables/<exp>.csv")
    parser.add_argument("--out-md", required=True, help="results/tables/<exp>.md")
    parser.add_argument("--out-plot", required=True, help="results/plots/<exp>.png")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment, section
    from pixelnerf.data.config import DatasetConfig
    from pixelnerf.eval.coarse_samples import coarse_samples_note
    from pixelnerf.eval.config import EvalConfig
    from pixelnerf.eval.object_scores import read_rows
    from pixelnerf.eval.tables import build_table, read_paper, write_table
    from pixelnerf.report.plots import plot_table

    config = load_experiment(args.config)
    rows = [row for path in args.metrics for row in read_rows(path)]
    eval_config = EvalConfig.of_experiment(config)
    table = build_table(str(config["name"]), DatasetConfig.of_experiment(config).format,
                        eval_config,
                        rows, read_paper(args.paper))
    table.notes.insert(0, coarse_samples_note(section(config, "renderer"),
                                              eval_config.min_coarse_samples))
    write_table(table, args.out_csv, args.out_md)
    plot_table(table, args.out_plot)
    return 0
