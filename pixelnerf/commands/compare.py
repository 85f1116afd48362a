"""``pixelnerf compare A B``: the paired difference B - A of two runs, per category and in
total, with bootstrap intervals (:mod:`pixelnerf.eval.compare`)."""

from __future__ import annotations

import argparse

from pixelnerf.eval.paired import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="run A: an experiment name or a metrics folder")
    parser.add_argument("b", help="run B: an experiment name or a metrics folder")
    parser.add_argument("--results", default="results",
                        help="results folder in which experiment names are looked up")
    parser.add_argument("--a-metrics", nargs="+", default=None,
                        help="exactly these metrics CSVs for A (default: all of its folder)")
    parser.add_argument("--b-metrics", nargs="+", default=None,
                        help="exactly these metrics CSVs for B (default: all of its folder)")
    parser.add_argument("--common", action="store_true",
                        help="compare the objects both scored on the same views, if the "
                             "runs differ (default: differing runs are an error)")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES,
                        help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"bootstrap seed, written in the output (default {DEFAULT_SEED})")
    parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                        help=f"interval level (default {DEFAULT_CONFIDENCE})")
    parser.add_argument("--out-csv", default=None, help="results/compare/<a>__<b>.csv")
    parser.add_argument("--out-md", default=None,
                        help="results/compare/<a>__<b>.md (default: printed)")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.eval.compare import (
        compare_runs,
        comparison_csv_text,
        comparison_markdown,
        load_run_spec,
    )
    from pixelnerf.io import atomic_write_text

    run_a = load_run_spec(args.a, args.results, args.a_metrics)
    run_b = load_run_spec(args.b, args.results, args.b_metrics)
    comparison = compare_runs(run_a, run_b, args.common, args.resamples, args.seed,
                              args.confidence)
    markdown = comparison_markdown(comparison)
    if args.out_csv:
        atomic_write_text(args.out_csv, comparison_csv_text(comparison))
    if args.out_md:
        atomic_write_text(args.out_md, markdown)
    else:
        print(markdown, end="")
    return 0
