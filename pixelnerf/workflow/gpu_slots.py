"""One GPU per local job: a job claims free device slots and sees only those GPUs.

``gpu_slot`` (around every ``pixelnerf`` command with ``--device auto|cuda``) -> ``claim``
-> ``try_claim``. Snakemake's ``--resources gpu=G`` lets at most
G GPU jobs run at once; which GPU each one uses is settled here. Slot ``i`` is held by an
exclusive ``flock`` on ``<slot dir>/gpu<i>.lock`` for the life of the process; the kernel
drops it when the process ends, however it ends, so a killed job's slot is free again.
The process then sets ``CUDA_VISIBLE_DEVICES`` before CUDA starts.

Slots are claimed only where the slot directory is set (``PIXELNERF_GPU_SLOT_DIR``, which
the workflow sets for its local jobs) and no one else has assigned devices: not inside a
SLURM job, nor under torchrun, nor with ``CUDA_VISIBLE_DEVICES`` already set. The number
of slots is the number of GPUs (``nvidia-smi -L``) unless ``PIXELNERF_GPU_SLOTS`` says.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from pixelnerf.errors import PipelineError

SLOT_DIR_ENV = "PIXELNERF_GPU_SLOT_DIR"
SLOTS_ENV = "PIXELNERF_GPU_SLOTS"
# Set when a scheduler or launcher has already chosen this process's devices.
ASSIGNED_ENV = ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES", "LOCAL_RANK")
# Device names that leave the choice of GPU to the process.
UNCHOSEN_DEVICES = ("auto", "cuda")
POLL_S = 0.2


@dataclasses.dataclass
class Slots:
    """GPU slots held by this process: their indices and the open, locked lock files."""

    indices: list[int]
    handles: list[IO[str]]

    @property
    def visible(self) -> str:
        """The ``CUDA_VISIBLE_DEVICES`` value of the slots."""
        return ",".join(str(i) for i in self.indices)

    def release(self) -> None:
        for handle in self.handles:
            handle.close()  # closing the last descriptor drops the flock
        self.handles.clear()


def count_gpus() -> int:
    """GPUs on this machine as ``nvidia-smi -L`` lists them; 0 without a driver. (Asking
    torch would start CUDA, after which ``CUDA_VISIBLE_DEVICES`` no longer applies.)"""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return 0
    try:
        listing = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return 0
    if listing.returncode != 0:
        return 0
    return sum(line.startswith("GPU ") for line in listing.stdout.splitlines())


def slot_count(env: Mapping[str, str]) -> int:
    """``PIXELNERF_GPU_SLOTS`` when set (tests simulate GPUs so), else the GPUs present."""
    if SLOTS_ENV not in env:
        return count_gpus()
    try:
        count = int(env[SLOTS_ENV])
    except ValueError:
        count = -1
    if count < 0:
        raise PipelineError(f"{SLOTS_ENV}={env[SLOTS_ENV]!r} is not a GPU count")
    return count


def try_claim(directory: Path, slots: int, wanted: int = 1) -> Slots | None:
    """``wanted`` free slots out of ``slots``, locked; None (holding nothing) when fewer
    are free, so two jobs never wait on each other's half."""
    directory.mkdir(parents=True, exist_ok=True)
    held = Slots(indices=[], handles=[])
    for index in range(slots):
        handle = open(directory / f"gpu{index}.lock", "a+")  # noqa: SIM115 (held while in use)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        os.set_inheritable(handle.fileno(), True)  # a job of several GPUs execs torchrun
        held.indices.append(index)
        held.handles.append(handle)
        if len(held.indices) == wanted:
            return held
    held.release()
    return None


def claim(directory: Path, slots: int, wanted: int = 1, poll_s: float = POLL_S) -> Slots:
    """``wanted`` slots, waiting (with one line) while too few are free."""
    if wanted > slots:
        raise PipelineError(f"a job asks for {wanted} GPUs but this machine has {slots} "
                            f"({SLOTS_ENV} or nvidia-smi)")
    waited = False
    while (held := try_claim(directory, slots, wanted)) is None:
        if not waited:
            print(f"pixelnerf: waiting for {wanted} free GPU slot(s) in {directory}",
                  file=sys.stderr, flush=True)
            waited = True
        time.sleep(poll_s)
    return held


def slot_directory(env: Mapping[str, str]) -> Path | None:
    """Where slots are claimed, or None where this process must not claim any."""
    if not env.get(SLOT_DIR_ENV) or any(name in env for name in ASSIGNED_ENV):
        return None
    return Path(env[SLOT_DIR_ENV])


@contextlib.contextmanager
def gpu_slot(device: str | None, count: int = 1) -> Iterator[list[int]]:
    """Hold ``count`` GPU slots for the block when ``device`` leaves the GPU to choose
    (``auto``, ``cuda``) and slots apply (``slot_directory``); ``CUDA_VISIBLE_DEVICES``
    names them inside the block (and in a program the block execs: the locks go with it).
    Yields the slot indices, none when no slot was claimed."""
    directory = slot_directory(os.environ)
    slots = 0 if directory is None or device not in UNCHOSEN_DEVICES else slot_count(os.environ)
    if directory is None or slots == 0:
        yield []
        return
    held = claim(directory, slots, count)
    os.environ["CUDA_VISIBLE_DEVICES"] = held.visible
    try:
        yield list(held.indices)
    finally:
        del os.environ["CUDA_VISIBLE_DEVICES"]
        held.release()
