"""`pixelnerf real IMAGE...`: photos of cars through the srn_car model (the published eval_real).

Each photo is segmented (Mask R-CNN, or ``--mask``), centred, scaled and composited on white
at the model's input size, then the model renders a turntable video and a few stills into
``<out>/<photo name>/``. With ``--views FILE`` the photos are several views of ONE car with
known cameras, encoded together into ``<out>/<name>/``. Settings: the experiment's ``real``
section (``pixelnerf.real.settings``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CONFIG = "config/experiments/srn_car.yaml"
DEFAULT_CHECKPOINTS = "checkpoints"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="photos of cars")
    parser.add_argument("--mask", action="append", default=None, metavar="MASK",
                        help="mask image of a photo (white = car), once per photo in order; "
                             "skips Mask R-CNN")
    parser.add_argument("--views", default=None, metavar="FILE",
                        help="YAML/JSON: photo file name -> {azimuth, elevation} or {pose: 4x4}; "
                             "the photos are then views of one car")
    parser.add_argument("--name", default=None,
                        help="output folder name of the car (default: the first photo's name)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="experiment config of the model")
    parser.add_argument("--checkpoint", default=None,
                        help="weights (default: checkpoints/<experiment>/pixel_nerf_latest)")
    parser.add_argument("--out", default=None,
                        help="output folder (default: results/real/<experiment>)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--seg-weights", default=None, metavar="FILE",
                        help="Mask R-CNN weights file (default: torch's hub cache)")
    parser.add_argument("--offline", action="store_true",
                        help="never download the Mask R-CNN weights")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment
    from pixelnerf.device import resolve_device
    from pixelnerf.errors import PipelineError
    from pixelnerf.real.photos import read_mask, read_view_poses
    from pixelnerf.real.render import VIDEO_FILE, process_photos
    from pixelnerf.real.segment import load_segmenter, segment_car
    from pixelnerf.real.settings import RealSettings
    from pixelnerf.train.config import TrainConfig

    experiment = load_experiment(args.config)
    settings = RealSettings.of_experiment(experiment)
    name = str(experiment["name"])
    published = TrainConfig.of_experiment(experiment).published_folder(name)
    checkpoint = Path(args.checkpoint or f"{DEFAULT_CHECKPOINTS}/{published}/pixel_nerf_latest")
    out = Path(args.out or f"results/real/{name}")
    device = resolve_device(args.device)
    photos = [Path(p) for p in args.images]
    if args.mask is not None and len(args.mask) != len(photos):
        raise PipelineError(f"{len(args.mask)} --mask for {len(photos)} photos; give one per photo")
    if args.name is not None and len(photos) > 1 and args.views is None:
        raise PipelineError("--name names one car: give one photo, or several with --views")
    masks = [read_mask(m) for m in args.mask] if args.mask else [None] * len(photos)

    segmenter = None

    def segment(image, photo_name):
        nonlocal segmenter
        if segmenter is None:  # only when a photo has no mask
            segmenter = load_segmenter(args.seg_weights, not args.offline, device)
        return segment_car(segmenter, image, settings.score_threshold, settings.mask_threshold,
                           photo_name)

    if args.views is not None:
        groups = [(args.name or photos[0].stem, photos, masks,
                   read_view_poses(args.views, args.images, settings.radius))]
    else:
        groups = [(args.name or p.stem, [p], [m], None) for p, m in zip(photos, masks, strict=True)]
    for car, car_photos, car_masks, poses in groups:
        result = process_photos(experiment, checkpoint, car_photos, out / car, device, segment,
                                masks=car_masks, poses=poses, settings=settings)
        print(f"real: wrote {result.folder / VIDEO_FILE} ({len(result.frames)} frames) and "
              f"{len(result.stills)} stills from {len(car_photos)} photo(s)")
    return 0
