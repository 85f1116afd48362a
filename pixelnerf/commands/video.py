"""`pixelnerf video`: one object's novel views along the published camera path, as an mp4.

The path, frame count, fps, elevation, radius and source views come from the experiment's
``video`` section (``pixelnerf.video.settings``); the network and renderer are those of
``pixelnerf render``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pixelnerf.config import load_experiment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--data-root", required=True, help="folder holding the dataset dir")
    parser.add_argument("--checkpoint", required=True, help="checkpoints/<exp>/pixel_nerf_latest")
    parser.add_argument("--object", required=True,
                        help="object id in the split, e.g. 02691156/1a2b3c (as in render/)")
    parser.add_argument("--out", required=True, help="results/videos/<exp>/<object>.mp4")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.device import resolve_device
    from pixelnerf.video.render import make_object_video
    from pixelnerf.video.settings import VideoSettings

    experiment = load_experiment(args.config)
    settings = VideoSettings.of_experiment(experiment)
    start = time.perf_counter()
    video = make_object_video(
        experiment,
        data_root=Path(args.data_root),
        checkpoint=Path(args.checkpoint),
        object_id=args.object,
        out=Path(args.out),
        device=resolve_device(args.device),
        settings=settings,
    )
    frames, height, width, _ = video.frames.shape
    print(f"video: wrote {args.out}: {frames} frames {width}x{height} at {settings.fps:g} fps "
          f"from source views {list(video.sources)} in {time.perf_counter() - start:.1f} s")
    return 0
