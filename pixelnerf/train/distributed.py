"""Data-parallel training: which process of a job this is, its process group, its rays.

``world_from_env -> process_group -> (share_of_batch, ObjectiveModule under DDP,
reduce_losses)`` each step.

Every rank draws the whole global batch of a step from the same seed (the one-process
draw) and encodes all of its source views, so the encoder's BatchNorm normalises with the
statistics a single process computes; only the rays are split over the ranks (the encoder
is a small part of a step's cost). A rank's loss is its rays' squared errors over the
global ray count, times the world size, which DDP's gradient averaging turns into the
one-process gradient of the global batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any

import torch
from torch import nn

from pixelnerf.errors import PipelineError
from pixelnerf.render.sampling import Draws, RowDraws
from pixelnerf.train.objective import Losses, LossSettings, batch_losses
from pixelnerf.train.sampling import RayBatch

# Seconds a collective may wait for the other ranks. Rank 0 alone validates, draws the
# visualisation and writes checkpoints while the others wait in the next step, so it
# must cover those; a rank that dies is noticed sooner (its sockets close, and torchrun
# and `srun --kill-on-bad-exit` stop the others).
DEFAULT_TIMEOUT_S = 300
# Base of the rendezvous port derived from the SLURM job id when MASTER_PORT is unset.
SLURM_PORT_BASE, SLURM_PORT_SPAN = 20000, 20000


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place in a training job: ``rank`` of ``size``, ``local_rank`` of
    ``local_size`` on its node, and where the group meets (``init_method``; None for a
    single process)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    init_method: str | None = None
    local_size: int = 1  # ranks on this node (torchrun's LOCAL_WORLD_SIZE)

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, logs, TensorBoard and pictures."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()  # a run of one process


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``gpu[07-09,12],cpu1`` -> ``gpu07``."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise PipelineError(f"SLURM node list {nodelist!r} names no host")
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except (KeyError, ValueError) as exc:
        raise PipelineError(f"environment variable {name}={env.get(name)!r} is not an "
                            f"integer") from exc


def world_from_env(env: Mapping[str, str]) -> World:
    """The job this process belongs to: torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``,
    else an ``srun`` step of several tasks (``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS``,
    ``SLURM_LOCALID``; rank 0's host from the node list, the port from ``MASTER_PORT`` or
    the job id), else a single process. A SLURM job step of one task is a single process."""
    if "RANK" in env and "WORLD_SIZE" in env:
        return World(rank=_int(env, "RANK"), size=_int(env, "WORLD_SIZE"),
                     local_rank=_int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0,
                     init_method="env://",
                     local_size=(_int(env, "LOCAL_WORLD_SIZE") if "LOCAL_WORLD_SIZE" in env
                                 else 1))
    if int(env.get("SLURM_STEP_NUM_TASKS", "1") or 1) > 1 and "SLURM_PROCID" in env:
        nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or ""
        host = env.get("MASTER_ADDR") or first_host(nodes)
        port = (_int(env, "MASTER_PORT") if "MASTER_PORT" in env else
                SLURM_PORT_BASE + _int(env, "SLURM_JOB_ID") % SLURM_PORT_SPAN)
        return World(rank=_int(env, "SLURM_PROCID"), size=_int(env, "SLURM_STEP_NUM_TASKS"),
                     local_rank=_int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0,
                     init_method=f"tcp://{host}:{port}")
    return SINGLE


def rank_device(world: World, device: torch.device) -> torch.device:
    """The device of this rank: its node-local GPU when training on CUDA (a scheduler that
    shows each task one GPU makes that ``cuda:0``), else ``device``."""
    if not world.distributed or device.type != "cuda":
        return device
    local = torch.device("cuda", world.local_rank % torch.cuda.device_count())
    torch.cuda.set_device(local)
    return local


def backend_for(world: World, device: torch.device) -> str:
    """NCCL between GPUs; gloo on CPUs and where ranks share a GPU (NCCL refuses two ranks
    on one device; a check of DDP on a machine with one GPU runs so)."""
    if device.type == "cuda" and world.local_size <= torch.cuda.device_count():
        return "nccl"
    return "gloo"


RERUN = "run the same command again to resume from the last checkpoint"


def stop_handler(where: str) -> Callable[[int, FrameType | None], None]:
    """A SIGTERM handler that ends this rank at once with one error line: torchrun and
    ``srun --kill-on-bad-exit`` send it to every rank when one has failed."""

    def stop(signum: int, frame: FrameType | None) -> None:
        print(f"pixelnerf: error: {where}: stopped by {signal.Signals(signum).name} (the "
              f"launcher stops every rank when one fails); {RERUN}", file=sys.stderr,
              flush=True)
        os._exit(2)

    return stop


# What gloo and NCCL say, from inside a collective or the backward pass, when a peer is gone.
PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "Broken pipe",
             "NCCL communicator was aborted", "Timed out", "timed out")


def lost_peer(exc: BaseException) -> str | None:
    """What says that ``exc`` is a collective that failed because another rank is gone."""
    text = str(exc)
    return next((marker for marker in PEER_LOST if marker in text), None)


@contextlib.contextmanager
def process_group(world: World, device: torch.device,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[torch.device]:
    """Join the job's process group (NCCL on CUDA, gloo otherwise) for the block and yield
    this rank's device; a single process just yields ``device``. A lost rank or a timed-out
    collective becomes one :class:`PipelineError` line, a stop signal one error line."""
    if not world.distributed:
        yield device
        return
    import torch.distributed as dist

    device = rank_device(world, device)
    backend = backend_for(world, device)
    where = f"rank {world.rank} of {world.size}"
    previous = signal.signal(signal.SIGTERM, stop_handler(where))
    try:
        dist.init_process_group(backend, init_method=world.init_method, rank=world.rank,
                                world_size=world.size,
                                timeout=datetime.timedelta(seconds=timeout_s))
        yield device
    except RuntimeError as exc:
        if not (isinstance(exc, dist.DistError) or lost_peer(exc)):
            raise
        # One line from this rank: the launcher's SIGTERM, coming next, must neither add
        # another nor end the process before the line is out.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        previous = signal.SIG_IGN
        reason = lost_peer(exc) or " ".join(f"{type(exc).__name__}: {exc}".split())[:120]
        raise PipelineError(f"{where}: another rank of the training job is gone ({reason}); "
                            f"{RERUN}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(world: World) -> None:
    """Wait until every rank of the job is here (nothing in a single process)."""
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def ray_share(rays_per_object: int, world: World) -> tuple[int, int]:
    """``(begin, end)``: this rank's rays of every object, consecutive and as even as the
    count allows (``torch.tensor_split``'s rule)."""
    if rays_per_object < world.size:
        raise PipelineError(f"train.rays_per_object ({rays_per_object}) is smaller than the "
                            f"{world.size} ranks of the job that share the rays")
    base, extra = divmod(rays_per_object, world.size)
    begin = world.rank * base + min(world.rank, extra)
    return begin, begin + base + (1 if world.rank < extra else 0)


def share_of_batch(batch: RayBatch, generator: torch.Generator,
                   world: World) -> tuple[RayBatch, Draws]:
    """This rank's rays ``(SB, R_rank, 8)`` of the global ``batch`` (all its source views),
    and the renderer draws of the whole batch restricted to them. One process: as given."""
    if not world.distributed:
        return batch, generator
    objects, rays_per_object = batch.rays.shape[:2]
    begin, end = ray_share(rays_per_object, world)
    rows = (torch.arange(objects)[:, None] * rays_per_object
            + torch.arange(begin, end)[None, :]).reshape(-1)
    part = dataclasses.replace(batch, rays=batch.rays[:, begin:end],
                               target=batch.target[:, begin:end])
    return part, RowDraws(generator=generator, total=objects * rays_per_object, rows=rows)


class ObjectiveModule(nn.Module):
    """The training objective as one module call (DDP hooks one forward and one backward
    a step; the renderer calls the model many times inside it)."""

    def __init__(self, model: nn.Module, renderer: Any):
        super().__init__()
        self.model = model
        self.renderer = renderer

    def forward(self, batch: RayBatch, generator: Draws, fold: bool,
                settings: LossSettings) -> Losses:
        return batch_losses(self.model, self.renderer, batch, generator, fold, settings)


def wrap_objective(model: nn.Module, renderer: Any, world: World,
                   device: torch.device) -> nn.Module:
    """The objective module, under DDP in a job of several ranks. Encoder layers past
    ``num_layers`` are never used, hence the unused-parameter search; every rank encodes
    the same images, so the BatchNorm statistics DDP copies from rank 0 already agree."""
    module = ObjectiveModule(model, renderer)
    if not world.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None,
                                   find_unused_parameters=True)


def scaled(losses: Losses, weight: float) -> Losses:
    """``losses`` times ``weight`` (a rank's share of the global ray count)."""
    return Losses(total=losses.total * weight, coarse=losses.coarse * weight,
                  fine=None if losses.fine is None else losses.fine * weight)


def reduce_losses(losses: Losses, world: World) -> Losses:
    """The sum over ranks of their (weighted) losses: the global batch's mean losses."""
    if not world.distributed:
        return losses
    import torch.distributed as dist

    parts = [losses.total, losses.coarse] + ([] if losses.fine is None else [losses.fine])
    summed = torch.stack([p.detach().float() for p in parts])
    dist.all_reduce(summed)
    return Losses(total=summed[0], coarse=summed[1],
                  fine=None if losses.fine is None else summed[2])
