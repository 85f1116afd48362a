"""``pixelnerf synth-demo OUT``: write the embedded demo dataset (DVR layout)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder of the dataset (e.g. data/demo)")
    parser.add_argument("--config", default=None,
                        help="experiment config whose dataset.synth holds the settings "
                             "(default: the defaults of pixelnerf.data.demo.SynthSettings)")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment
    from pixelnerf.data.config import DatasetConfig
    from pixelnerf.data.demo import SynthSettings, synthesize

    settings = None
    if args.config is not None:
        settings = DatasetConfig.of_experiment(load_experiment(args.config)).synth
    settings = settings or SynthSettings()
    record = synthesize(settings, args.out)
    counts = ", ".join(f"{n} {split}" for split, n in record["objects"].items())
    print(f"synth-demo: {args.out}: {len(settings.categories)} categories "
          f"({', '.join(settings.categories)}), {counts} objects, {settings.views} views at "
          f"{settings.image_size}x{settings.image_size}, seed {settings.seed}")
    return 0
