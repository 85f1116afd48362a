"""``pixelnerf synth-demo OUT``: write the embedded demo dataset (DVR layout)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder of the dataset (e.g. data/demo)")
    parser.add_argument("--config", default=None,
                        help="experiment config whose dataset.synth holds the settings "
                             "(default: the defaults of pixelnerf.data.demo.SynthSettings)")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment, section
    from pixelnerf.data.demo import SynthSettings, synthesize
    from pixelnerf.errors import PipelineError

    mapping: Mapping[str, Any] | None = None
    if args.config is not None:
        dataset = section(load_experiment(args.config), "dataset")
        mapping = dataset.get("synth")
        if mapping is not None and not isinstance(mapping, Mapping):
            raise PipelineError(f"{args.config}: dataset.synth must be a mapping")
    settings = SynthSettings.from_mapping(mapping)
    record = synthesize(settings, args.out)
    counts = ", ".join(f"{n} {split}" for split, n in record["objects"].items())
    print(f"synth-demo: {args.out}: {len(settings.categories)} categories "
          f"({', '.join(settings.categories)}), {counts} objects, {settings.views} views at "
          f"{settings.image_size}x{settings.image_size}, seed {settings.seed}")
    return 0
