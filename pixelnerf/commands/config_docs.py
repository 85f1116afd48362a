"""``pixelnerf config-docs``: rewrite config/README.md's key tables from the section
dataclasses (:mod:`pixelnerf.report.config_tables`), or with ``--check`` only say whether it is
current."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--readme", default="config/README.md", help="the file to rewrite")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the file is not current")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pixelnerf.errors import PipelineError
    from pixelnerf.io import atomic_write_text
    from pixelnerf.report.config_tables import render_readme

    path = Path(args.readme)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"cannot read {path}: {exc.strerror or exc}") from exc
    current = render_readme(text)
    if args.check:
        if current != text:
            print(f"config-docs: {path} is out of date; run `pixelnerf config-docs`")
            return 1
        print(f"config-docs: {path} is current")
        return 0
    if current != text:
        atomic_write_text(path, current)
    print(f"config-docs: {path} {'rewritten' if current != text else 'already current'}")
    return 0
