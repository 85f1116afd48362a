"""`pixelnerf download SOURCE`: fetch, verify and extract one entry of config/sources.yaml."""

from __future__ import annotations

import argparse

from pixelnerf.download.fetch import ensure_source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="a key of the sources file, e.g. nmr")
    parser.add_argument("--data-root", default="data", help="datasets go here (default: data)")
    parser.add_argument(
        "--checkpoints-root",
        default="checkpoints",
        help="sources with 'root: checkpoints' (published weights) go here",
    )
    parser.add_argument(
        "--sources", default="config/sources.yaml", help="the sources file (default: %(default)s)"
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="write the size and SHA-256 of archives that the sources file lacks into it",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    ensure_source(
        args.source,
        args.data_root,
        args.sources,
        checkpoints_root=args.checkpoints_root,
        record=args.record,
        show_progress=not args.quiet,
    )
    return 0
