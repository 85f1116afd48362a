"""A training job of several processes on this machine: ``pixelnerf train --gpus N`` runs
itself again under torchrun (one process per GPU; gloo processes on a CPU).

``torchrun_command`` builds the command; ``relaunch`` replaces this process with it, so
GPU slots claimed for the job (``pixelnerf.workflow.gpu_slots``) stay held by the launcher.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from pixelnerf.errors import PipelineError


def torchrun_command(processes: int, train_args: Sequence[str],
                     python: str = sys.executable) -> list[str]:
    """torchrun on one node (``--standalone``: a free local port) with ``processes``
    workers, each running ``pixelnerf train <train_args>``."""
    return [python, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", str(processes), "-m", "pixelnerf.cli", "train", *train_args]


def rank_threads(env: Mapping[str, str], processes: int) -> str:
    """``OMP_NUM_THREADS`` of each worker: the job's threads shared out (at least 1)."""
    try:
        total = int(env.get("OMP_NUM_THREADS", "") or processes)
    except ValueError:
        total = processes
    return str(max(1, total // processes))


def relaunch(processes: int, train_args: Sequence[str]) -> None:
    """Replace this process by the torchrun job (does not return)."""
    command = torchrun_command(processes, train_args)
    env = dict(os.environ, OMP_NUM_THREADS=rank_threads(os.environ, processes))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(command[0], command, env)
    except OSError as exc:
        raise PipelineError(f"cannot start torchrun ({command[0]}): {exc}") from exc
