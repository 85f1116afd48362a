"""``pixelnerf run -- <snakemake arguments>``: the workflow, one run per folder, a stale lock
left by a killed run released (:mod:`pixelnerf.workflow.run`)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                        help="after --, passed to snakemake unchanged (--cores 2 results/...)")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.workflow.run import run_snakemake

    snakemake_args = list(args.snakemake_args)
    return run_snakemake(snakemake_args[1:] if snakemake_args[:1] == ["--"] else snakemake_args)
