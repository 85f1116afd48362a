"""``pixelnerf train``: train one experiment to its step budget, resuming by itself.

Example::

    pixelnerf train --config config/experiments/demo.yaml --data-root data \
        --checkpoints checkpoints/demo --out results/demo/train --device auto

Under ``torchrun`` or an ``srun`` step of several tasks, every process runs this command
and the processes train as one data-parallel job (see docs/multi-gpu.md).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from pixelnerf.config import load_experiment
from pixelnerf.device import resolve_device
from pixelnerf.errors import PipelineError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment config (YAML)")
    parser.add_argument("--data-root", required=True, help="folder holding the datasets")
    parser.add_argument("--checkpoints", required=True,
                        help="checkpoint folder of the experiment (resumed from when present)")
    parser.add_argument("--out", required=True,
                        help="results folder of the run: losses.csv, tb/, vis/, done.json")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--steps", type=int, default=None,
                        help="iteration budget (default: train.steps of the config)")
    parser.add_argument("--weights", choices=("train", "published"), default=None,
                        help="override train.weights of the config (the workflow's "
                             "--config weights=...)")
    parser.add_argument("--init", default=None,
                        help="weights file to start from (default: train.init of the config; "
                             "empty: that default)")
    parser.add_argument("--gpus", type=int, default=1, metavar="N",
                        help="processes of a data-parallel job on this machine, one per GPU "
                             "(gloo processes with --device cpu); started through torchrun")
    parser.add_argument("--dist-timeout", type=float, default=None, metavar="SECONDS",
                        help="in a job of several ranks: how long a rank waits for the others "
                             "before the job stops (default 300)")


def worker_arguments(args: argparse.Namespace) -> list[str]:
    """The command line of each process of a ``--gpus N`` job (this one, less ``--gpus``)."""
    argv = ["--config", args.config, "--data-root", args.data_root, "--checkpoints",
            args.checkpoints, "--out", args.out, "--device", args.device]
    if args.steps is not None:
        argv += ["--steps", str(args.steps)]
    for option, value in (("--weights", args.weights), ("--init", args.init),
                          ("--dist-timeout", args.dist_timeout)):
        if value is not None:
            argv += [option, str(value)]
    return argv


def run(args: argparse.Namespace) -> int:
    from pixelnerf.train.distributed import DEFAULT_TIMEOUT_S, process_group, world_from_env
    from pixelnerf.train.launch import relaunch
    from pixelnerf.train.loop import RunPaths, train

    experiment = load_experiment(args.config)
    if args.weights is not None:
        experiment = {**experiment, "train": {**experiment["train"], "weights": args.weights}}
    paths = RunPaths(checkpoints=Path(args.checkpoints), out=Path(args.out))
    world = world_from_env(os.environ)
    if args.gpus < 1:
        raise PipelineError(f"--gpus must be positive, not {args.gpus}")
    if args.gpus > 1 and not world.distributed:
        relaunch(args.gpus, worker_arguments(args))
    timeout = DEFAULT_TIMEOUT_S if args.dist_timeout is None else args.dist_timeout
    with process_group(world, resolve_device(args.device), timeout) as device:
        summary = train(experiment, args.data_root, paths, device, steps=args.steps,
                        init=args.init or None, world=world)
    if summary is not None:
        print(json.dumps(summary))
    return 0

