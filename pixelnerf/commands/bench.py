"""``pixelnerf bench``: rendering throughput of the default plan and its variations against
the reference path, with the device's own matmul peak."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from pixelnerf.config import PROJECT_ROOT
from pixelnerf.errors import PipelineError

EXPERIMENTS_DIR = PROJECT_ROOT / "config/experiments"


def experiment_file(value: str) -> Path:
    """``--config``: a path to an experiment file, or an experiment's name as the workflow
    takes it (``config/experiments/<name>.yaml``)."""
    path = Path(value)
    if path.is_file():
        return path
    named = EXPERIMENTS_DIR / f"{value}.yaml"
    if path.suffix == "" and len(path.parts) == 1 and named.is_file():
        return named
    known = ", ".join(sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")))
    raise PipelineError(f"--config {value!r} is neither a file nor an experiment "
                        f"(known: {known})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default="sn64",
        help="experiment whose model and renderer are measured: a name of config/experiments "
        "or a path (default sn64)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--objects",
        type=int,
        default=None,
        help="objects rendered per path (default: 16 on GPU, 1 on CPU)",
    )
    parser.add_argument(
        "--views",
        type=int,
        default=None,
        help="target views per object (default: 23 on GPU, 1 on CPU)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="side of the square views (default: 64 on GPU, 32 on CPU)",
    )
    parser.add_argument(
        "--paths",
        default=None,
        help="comma-separated paths: reference (the published loop), default (the "
        "experiment's plan), or the default with plan fields changed, field=value joined by "
        "+ (fields: kernel, compile, fold_latent, precision, chunk_points), e.g. "
        "precision=bf16+kernel=triton (default: reference, default, and one path per field "
        "changed)",
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment, section
    from pixelnerf.device import resolve_device
    from pixelnerf.eval.bench import bench, default_settings

    device = resolve_device(args.device)
    settings = default_settings(device, args.objects, args.views, args.image_size,
                                tuple(args.paths.split(",")) if args.paths else None, args.seed)
    config = experiment_file(args.config)
    experiment = load_experiment(config)
    bench(section(experiment, "model"), section(experiment, "renderer"), settings, device,
          str(config), emit=functools.partial(print, flush=True))
    return 0
