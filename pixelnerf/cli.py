"""The ``pixelnerf`` command line: one subcommand per workflow step.

Each subcommand lives in its own module, which defines ``add_arguments(parser)`` and
``run(args) -> int``; it is imported only when called, so ``pixelnerf --help`` is fast
and one step's heavy imports never slow another down.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pixelnerf.errors import PipelineError

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("pixelnerf.bench", "rendering throughput per precision against the reference path"),
    "validate-data": ("pixelnerf.data.validate", "list every bad file of a dataset in one pass"),
    "synth-demo": ("pixelnerf.data.demo", "write the embedded demo dataset (DVR layout)"),
    "split": ("pixelnerf.split", "write an experiment's seeded unseen-category split lists"),
    "metrics": ("pixelnerf.evaluate_metrics", "PSNR, SSIM, LPIPS per object of a render shard"),
    "table": ("pixelnerf.evaluate_table", "the table beside the paper's numbers"),
    "approx-summary": ("pixelnerf.evaluate_approx", "approximate evaluation: means, 95% CI"),
    "render": ("pixelnerf.render_objects", "render the target views of one shard of test objects"),
    "figure": ("pixelnerf.figures", "renders beside ground truth for the report"),
    "provenance": ("pixelnerf.provenance", "git commit, configs, versions, device, stage times"),
    "download": ("pixelnerf.download.cli", "fetch, verify and extract one entry of sources.yaml"),
    "train": ("pixelnerf.train.cli", "train one experiment to its step budget (resumes by itself)"),
    "video": ("pixelnerf.video.cli", "novel views of an object along the published camera path"),
    "real": ("pixelnerf.real.cli", "photos of cars: segment, normalise, render a turntable"),
}


def _top_level_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixelnerf",
        description="pixelNeRF pipeline steps (the Snakemake workflow calls these).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="subcommands:\n"
        + "\n".join(f"  {name:<16} {text}" for name, (_, text) in SUBCOMMANDS.items()),
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
    module = importlib.import_module(SUBCOMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"pixelnerf {name}", description=SUBCOMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except PipelineError as exc:
        print(f"pixelnerf: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
