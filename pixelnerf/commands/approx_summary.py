"""``pixelnerf approx-summary``: metrics of the approximate sample -> mean and 95% CI."""

from __future__ import annotations

import argparse

from pixelnerf.eval.approx import DEFAULT_CONFIDENCE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", required=True, nargs="+",
                        help="metrics CSVs of the approximate renders")
    parser.add_argument("--out", required=True, help="results/approx/<exp>.csv")
    parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                        help=f"confidence level of the interval (default {DEFAULT_CONFIDENCE})")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.eval.approx import write_summary
    from pixelnerf.eval.object_scores import read_rows

    rows = [row for path in args.metrics for row in read_rows(path)]
    for summary in write_summary(args.out, rows, args.confidence):
        iv = summary.interval
        if iv is None:
            text = "not computed"
        elif iv.low is None:
            text = f"{iv.mean:.4f} (one object: no interval)"
        else:
            text = f"{iv.mean:.4f} [{iv.low:.4f}, {iv.high:.4f}]"
        print(f"{summary.setting} {summary.metric}: {text}")
    return 0
