"""``pixelnerf validate-data FMT ROOT``: list every bad file of a dataset in one pass.

Exit status 0 when clean, 1 when any problem was found.
"""

from __future__ import annotations

import argparse
import sys

from pixelnerf.data import FORMATS
from pixelnerf.data.validate import find_problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=FORMATS, help="dataset format")
    parser.add_argument("root", help="dataset root (for srn: e.g. data/srn/cars)")
    parser.add_argument("--list-prefix", default=None,
                        help="split-list prefix (default per format: softras_, gen_, new_)")


def run(args: argparse.Namespace) -> int:
    problems, checked = find_problems(args.format, args.root, args.list_prefix)
    for problem in problems:
        print(problem)
    if problems:
        print(f"validate-data: {len(problems)} problem(s) in {args.root}", file=sys.stderr)
        return 1
    print(f"validate-data: {args.root} is valid ({checked} split(s) checked)")
    return 0
