"""``pixelnerf check-weights``: load a weights file strictly into an experiment's model.

Weights a user already has (``in_place``) are checked once, before any step uses them;
any difference from the model is one error line naming the file and the key.

Example::

    pixelnerf check-weights --config config/experiments/sn64.yaml \
        --checkpoint /shared/pixelnerf/sn64/pixel_nerf_latest --out results/sn64/weights.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pixelnerf.config import load_experiment, section
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment config (YAML)")
    parser.add_argument("--checkpoint", required=True, help="weights file (state dict)")
    parser.add_argument("--out", required=True, help="record written when the load succeeds")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.model import PixelNeRF
    from pixelnerf.model.checkpoint import load_checkpoint

    experiment = load_experiment(args.config)
    path = Path(args.checkpoint)
    if not path.is_file():
        raise PipelineError(f"weights file {path} does not exist")
    model = PixelNeRF.from_config(section(experiment, "model"), pretrained_encoder=False)
    load_checkpoint(path, model)
    record = {"checkpoint": str(path), "keys": len(model.state_dict())}
    atomic_write_text(args.out, json.dumps(record, indent=1) + "\n")
    print(f"check-weights: {path} loads strictly into the {experiment['name']} model")
    return 0
