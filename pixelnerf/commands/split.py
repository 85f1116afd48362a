"""``pixelnerf split``: write an experiment's seeded unseen-category split lists."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<name>.yaml")
    parser.add_argument("--data-root", default="data", help="root of the datasets")
    parser.add_argument("--out", default=None,
                        help="record written last (default <dataset>/<prefix>split.json)")


def run(args: argparse.Namespace) -> int:
    from pixelnerf.config import load_experiment
    from pixelnerf.data.config import DatasetConfig
    from pixelnerf.data.split import (
        NOTE,
        check_source_list,
        make_split,
        source_objects,
        write_split,
    )

    config = load_experiment(args.config)
    dataset = DatasetConfig.of_experiment(config)
    settings = dataset.split_settings()
    root = Path(args.data_root) / dataset.dir
    split = make_split(root, settings)
    if settings.source_list is not None:
        check_source_list(split, Path(settings.source_list))
    marker = write_split(root, split, settings, args.out)
    tested = sum(len(split[c]["test"]) for c in settings.unseen)
    total = sum(len(set(source_objects(root / c, settings.source_prefix))) for c in settings.unseen)
    print(f"split: wrote {settings.list_prefix}{{train,val,test}}.lst for {len(split)} "
          f"categories under {root}; {tested} of {total} objects of {len(settings.unseen)} "
          f"unseen categories are test objects (test_fraction {settings.test_fraction}, "
          f"seed {settings.seed}); record: {marker}")
    print(f"split: note: {NOTE}")
    return 0


