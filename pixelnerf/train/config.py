"""The experiment config's ``train`` section as a typed, frozen dataclass.

Every key's default (the published value where the published trainer has one) and meaning
are written once, in its field; the experiment schema checks keys, types and ranges.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any, Literal

import torch

from pixelnerf.config import build, section, setting
from pixelnerf.errors import PipelineError


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training settings (experiment config section ``train``); every default is the
    published trainer's value where it has one."""

    weights: Literal["train", "published"] = setting(
        "train", "`train` (the train rule trains and resumes by itself) or `published` (the "
        "download rule fetches `published_source` and the model is loaded from "
        "`<checkpoints_root>/<published_name>/pixel_nerf_latest`; the train step is not run)")
    published_source: str = setting(
        "pretrained", "key of `config/sources.yaml` holding the published weights zip")
    published_name: str | None = setting(
        None, "this experiment's folder in the published weights zip (`multi_obj` for "
        "`multi_chair`; null: the experiment's name)")
    steps: int = setting(
        400000, "iteration budget. The published trainer has none (`--epochs` defaults to "
        "10000000 in its `src/util/args.py`; it runs until stopped), and neither its configs "
        "(`conf/exp/*.conf`) nor its README state how many iterations the published models "
        "were trained for. 400000 is this project's choice, a finite budget so that the train "
        "job ends; it is not a published number, and no run of it has been compared with the "
        "published weights")
    batch_objects: int = setting(4, "objects per batch (published 4)")
    rays_per_object: int = setting(128, "rays drawn per object a step (published 128)")
    nviews: tuple[int, ...] = setting(
        (1,), "source-view counts, one drawn per batch (sn64 `[1]`, SRN `[1, 2]`, DTU `[3]`)")
    lr: float = setting(1e-4, "Adam learning rate (published 1e-4, no decay)")
    lr_schedule: Literal["constant", "cosine", "exponential"] = setting(
        "constant", "`constant` (published), `exponential` (see `lr_gamma`) or `cosine`: half "
        "a cosine from `lr` at step 0 to `lr_final` at `steps`; it depends on the step alone, "
        "so a resumed run follows the unbroken schedule")
    lr_final: float = setting(0.0, "the rate at the end of a `cosine` schedule")
    lr_warmup: int = setting(
        0, "steps over which the rate rises linearly from `1 / lr_warmup` of the scheduled "
        "rate to all of it (0: none, as published). A high rate from step 0 can push the "
        "density below zero everywhere before the colours are learnt: the model then renders "
        "the background alone and ReLU passes no gradient to leave it")
    lr_gamma: float = setting(
        1.0, "`lr_schedule: exponential`: the rate of a step in epoch `e` is "
        "`lr * lr_gamma ** e`, an epoch being `ceil(training objects / batch_objects)` steps, "
        "as the published `--gamma` (an `ExponentialLR` stepped after each epoch); 1.0: no "
        "decay, published")
    loss: Literal["mse", "l1"] = setting(
        "mse", "colour loss of both passes: `mse` (published `loss.rgb.use_l1 = False`) or "
        "`l1`; the logged PSNR stays that of the squared error")
    lambda_coarse: float = setting(
        1.0, "weight of the coarse loss (published 1.0); as published, a run without a fine "
        "pass uses the coarse loss unweighted")
    lambda_fine: float = setting(1.0, "weight of the fine loss (published 1.0)")
    freeze_encoder: bool = setting(
        False, "`true`: the image encoder gets no gradient and its BatchNorm keeps its running "
        "statistics (eval mode), the published `--freeze_enc`; `false`: fine-tuned, published")
    accumulate: int = setting(
        1, "batches whose gradients make one optimiser update (published `accu_grad`). Each "
        "batch's loss is divided by it, so the update equals that of one batch `accumulate` "
        "times larger (the published code sums; Adam is nearly blind to the scale); a step is "
        "still one batch, and `checkpoint_every` must be a multiple of it")
    init: str | None = setting(
        None, "where a run starts that has no checkpoint of its own: null (fresh weights), "
        "`published` (the experiment's published weights, downloaded first) or a checkpoint "
        "file; loaded strictly, with a new optimiser at step 0 (fine-tuning). A run already in "
        "`<checkpoints_root>/<exp>` or `results/<exp>/train` that did not start from this "
        "`init` is moved aside to `<folder>.<UTC time>` first; one that did is resumed")
    no_bbox_step: int = setting(
        100000, "step from which rays are drawn uniformly instead of inside the mask bounding "
        "box (published 100000)")
    checkpoint_every: int = setting(50, "steps between checkpoints (published 50)")
    val_every: int = setting(
        50, "steps between validation losses (published 50); 0 disables")
    vis_every: int = setting(
        100, "steps between visualisation images (published 100, DTU 200); 0 disables")
    seed: int = setting(
        0, "seed of every random draw of training (object order, views, rays, jitter, "
        "renderer offsets); a resumed run draws exactly what an unbroken run draws")
    color_jitter: bool = setting(
        False, "jitter colours once per object and batch (published for DTU only)")
    color_jitter_range: float = setting(
        0.1, "half-width of the jitter factors (published 0.1 for hue, saturation, contrast "
        "and brightness alike)")
    bf16: bool | Literal["auto"] = setting(
        False, "bfloat16 autocast of the forward pass: `true`, `false` or `auto` (bf16 where "
        "the device computes it natively, the meaning `auto` has for every precision setting)")
    tf32: bool | Literal["auto"] = setting(
        False, "TF32 matmuls and convolutions on CUDA: `true`, `false` or `auto` (never TF32)")
    fold_latent: bool | Literal["auto"] = setting(
        "auto", "apply the MLPs' `lin_z` layers to the latent map once a step and sample the "
        "result instead of multiplying every sampled point's latent: the same function and "
        "gradients, fewer FLOPs when a step queries more points than the map has cells; "
        "`auto`: when the folded map is no wider than the latent, so sampling costs no more")
    num_workers: int | Literal["auto"] = setting(
        "auto", "DataLoader worker processes decoding objects; 0 decodes in the main process "
        "and keeps decoded objects in memory up to `cache_mb`; `auto`: none on a CPU, on a GPU "
        "the process's share of the CPUs less one, at most 8")
    cache_mb: int = setting(4096, "memory for decoded objects when `num_workers` is 0")
    val_objects: int = setting(
        4, "held-out (`val` split) objects in the validation loss; 0 disables")
    max_views: int | None = setting(
        None, "at most this many views of an object are loaded for training, drawn by the "
        "reader (published DTU: 49); null loads all")
    gpus: int = setting(
        1, "GPUs of the training job, one data-parallel process each: the train rule asks for "
        "`gpu: N` and runs `pixelnerf train --gpus N` (torchrun on one node); the global "
        "batch and the training are the same for every N (docs/multi-gpu.md)")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, origin: str = "train") -> TrainConfig:
        """A schema-checked ``train`` mapping (None: the defaults)."""
        return build(cls, data, origin)

    @classmethod
    def of_experiment(cls, experiment: Mapping[str, Any]) -> TrainConfig:
        """The ``train`` section of a schema-validated experiment config."""
        return build(cls, section(experiment, "train"), "train")

    def published_folder(self, experiment: str) -> str:
        """The folder of experiment ``experiment`` inside the published weights."""
        return self.published_name or experiment

    def check(self, origin: str) -> None:
        """What the schema cannot say: one field against another."""
        if self.lr_final > self.lr:
            raise PipelineError(f"{origin}.lr_final must be between 0 and lr ({self.lr}), "
                                f"not {self.lr_final}")
        if self.checkpoint_every % self.accumulate:
            # a checkpoint between the batches of one update would lose their gradients
            raise PipelineError(f"{origin}.checkpoint_every ({self.checkpoint_every}) must "
                                f"be a multiple of {origin}.accumulate ({self.accumulate})")

    def learning_rate(self, step: int, epoch_steps: int = 1) -> float:
        """The rate of 0-based step ``step`` (the schedule spans ``steps``; an epoch is
        ``epoch_steps`` steps; the warm-up scales its first ``lr_warmup`` steps)."""
        warmup = min((step + 1) / self.lr_warmup, 1.0) if self.lr_warmup else 1.0
        if self.lr_schedule == "constant":
            scheduled = self.lr
        elif self.lr_schedule == "exponential":
            scheduled = self.lr * self.lr_gamma ** (step // max(epoch_steps, 1))
        else:
            progress = min(step / max(self.steps, 1), 1.0)
            scheduled = self.lr_final + 0.5 * (self.lr - self.lr_final) * (
                1 + math.cos(math.pi * progress))
        return warmup * scheduled



@dataclasses.dataclass(frozen=True)
class Precision:
    """Resolved numeric options of one run (``auto`` already decided for the device)."""

    bf16: bool
    tf32: bool


def training_precision(config: TrainConfig, device: torch.device) -> Precision:
    """Decide ``train.bf16`` and ``train.tf32`` on ``device``.

    ``auto`` has the meaning it has for every precision setting
    (:func:`pixelnerf.render.precision.resolve_precision`): bf16 where the device computes
    it natively, never TF32. The experiments train in fp32 (``bf16: false``) until a GPU
    measurement shows validation PSNR within 0.1 dB of fp32 at the same step
    (``benchmarks/train_speed.py``, logged in docs/performance.md). ``tf32: true`` on a CPU
    is refused rather than silently ignored, since TF32 does not exist there.
    """
    from pixelnerf.render.precision import resolve_precision

    bf16 = config.bf16 is True or (
        config.bf16 == "auto" and resolve_precision("auto", device) == "bf16")
    tf32 = config.tf32 is True
    if tf32 and device.type != "cuda":
        raise PipelineError(f"train.tf32 is true but the device is {device}; TF32 needs CUDA")
    return Precision(bf16=bf16, tf32=tf32)


MAX_AUTO_WORKERS = 8  # the published trainer's DataLoader workers


def resolve_workers(config: TrainConfig, device: torch.device, ranks_on_node: int = 1,
                    cpus: int | None = None) -> int:
    """DataLoader workers of one training process: ``num_workers``, or for ``auto``

    - on a CPU none: workers would take the cores the step computes on, and the in-memory
      cache serves the objects seen before;
    - on CUDA the process's share of the node's ``cpus`` (default: those it may run on)
      less one for itself, at most ``MAX_AUTO_WORKERS``: the GPU's step is shorter than
      decoding the 4 objects of a step in the training process (24 PNGs each), and a cache
      cannot hold sn64's training set, so decoding must run beside the step.
    """
    if config.num_workers != "auto":
        return int(config.num_workers)
    if device.type != "cuda":
        return 0
    if cpus is None:
        cpus = len(os.sched_getaffinity(0))
    return max(1, min(MAX_AUTO_WORKERS, cpus // max(ranks_on_node, 1) - 1))


def resolve_fold(config: TrainConfig, latent_width: int, folded_width: int) -> bool:
    """Decide ``fold_latent`` for a model whose latent has ``latent_width`` channels and
    whose folded map would have ``folded_width`` (0: the MLPs have no ``lin_z``)."""
    if folded_width == 0:
        return False
    if config.fold_latent == "auto":
        return folded_width <= latent_width
    return bool(config.fold_latent)
