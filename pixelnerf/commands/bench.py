"""``pixelnerf bench``: rendering throughput per precision against the reference path."""

from __future__ import annotations

import argparse
import functools

from pixelnerf.config import PROJECT_ROOT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=str(PROJECT_ROOT / "config/experiments/sn64.yaml"),
        help="experiment whose model and renderer are measured (default sn64)",
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
        help="comma-separated paths: reference, or a precision (fp32, tf32, bf16, auto) with "
        "the experiment's renderer settings changed by +fold, +nofold, +compile, +autotune "
        "(renderer.compile: max-autotune), +eager, +published, +torch, +triton "
        "(renderer.mlp_kernel), e.g. bf16+triton (default: "
        "reference, each precision the device has, and on CUDA bf16 with each MLP kernel)",
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from pixelnerf.bench import bench, default_settings
    from pixelnerf.config import load_experiment, section
    from pixelnerf.device import resolve_device

    device = resolve_device(args.device)
    settings = default_settings(device, args.objects, args.views, args.image_size,
                                tuple(args.paths.split(",")) if args.paths else None, args.seed)
    experiment = load_experiment(args.config)
    bench(section(experiment, "model"), section(experiment, "renderer"), settings, device,
          args.config, emit=functools.partial(print, flush=True))
    return 0
