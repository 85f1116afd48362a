"""The ``pixelnerf`` command line: one subcommand per workflow step.

Each subcommand lives in its own module of :mod:`pixelnerf.commands`, named after it, which
defines ``add_arguments(parser)`` and ``run(args) -> int``; it is imported only when called,
so ``pixelnerf --help`` is fast and one step's heavy imports never slow another down.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pixelnerf.errors import PipelineError
from pixelnerf.workflow.gpu_slots import gpu_slot

# name -> one-line help; its module is pixelnerf.commands.<name, "-" written "_">
SUBCOMMANDS: dict[str, str] = {
    "bench": "rendering throughput of the default plan and its variations against the reference",
    "validate-data": "list every bad file of a dataset in one pass",
    "check-weights": "load a weights file strictly into an experiment's model",
    "synth-demo": "write the embedded demo dataset (DVR layout)",
    "split": "write an experiment's seeded unseen-category split lists",
    "metrics": "PSNR, SSIM, LPIPS per object of a render shard",
    "table": "the table beside the paper's numbers",
    "approx-summary": "approximate evaluation: means, 95% CI",
    "compare": "paired difference B - A of two runs with bootstrap intervals",
    "sensitivity": "how the table total moves with each evaluation-protocol choice",
    "render": "render the target views of one shard of test objects",
    "figure": "renders beside ground truth for the report",
    "provenance": "git commit, configs, versions, device, stage times",
    "download": "fetch, verify and extract one entry of sources.yaml",
    "train": "train one experiment to its step budget (resumes by itself)",
    "video": "novel views of an object along the published camera path",
    "real": "photos of cars: segment, normalise, render a turntable",
    "run": "snakemake [args]: one run per folder, stale locks cleared",
    "config-docs": "rewrite config/README.md's key tables from the config dataclasses",
}


def command_module(name: str) -> str:
    """``approx-summary`` -> ``pixelnerf.commands.approx_summary``."""
    return "pixelnerf.commands." + name.replace("-", "_")


def _top_level_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixelnerf",
        description="pixelNeRF pipeline steps (the Snakemake workflow calls these).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="subcommands:\n"
        + "\n".join(f"  {name:<16} {text}" for name, text in SUBCOMMANDS.items()),
    )
    parser.add_argument("subcommand", choices=sorted(SUBCOMMANDS), metavar="SUBCOMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a :class:`PipelineError` becomes one error line and status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        _top_level_parser().parse_args(argv[:1] or ["--help"])
        return 2
    name = argv[0]
    module = importlib.import_module(command_module(name))
    parser = argparse.ArgumentParser(prog=f"pixelnerf {name}", description=SUBCOMMANDS[name])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        # A local job on a machine of several GPUs takes free ones (workflow.gpu_slots).
        with gpu_slot(getattr(args, "device", None), getattr(args, "gpus", 1)):
            return int(module.run(args) or 0)
    except PipelineError as exc:
        print(f"pixelnerf: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
