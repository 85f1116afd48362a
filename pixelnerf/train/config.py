"""The experiment config's ``train`` section as a typed, validated dataclass.

Every key has a documented default (the published value where the published trainer has
one); a misspelt key or a wrong type stops with one line naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any

import torch

from pixelnerf.errors import PipelineError


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training settings (experiment config section ``train``).

    Attributes:
        weights: ``train`` (this project trains the model) or ``published`` (the
            published checkpoint is used; the train step is not run for it).
        published_source, published_name: where the published weights come from (read by
            the download step, not by training).
        steps: iteration budget; the published trainer has none (it never stops).
        batch_objects: objects per batch (published 4).
        rays_per_object: rays drawn per object a step (published 128).
        nviews: source-view counts; one is drawn per batch (sn64 [1], SRN [1, 2], DTU [3]).
        lr: Adam learning rate (published 1e-4).
        lr_schedule: ``constant`` (published), ``exponential`` (see ``lr_gamma``) or
            ``cosine``: the rate falls along half a
            cosine from ``lr`` at step 0 to ``lr_final`` at ``steps``. It depends on
            the step alone, so a resumed run uses the rates of an unbroken one.
        lr_final: the rate at the end of a ``cosine`` schedule.
        lr_gamma: the ``exponential`` schedule's factor per epoch (the published ``--gamma``,
            an ExponentialLR stepped after every epoch, 1.0 = none): the rate of a step in
            epoch ``e`` is ``lr * lr_gamma ** e``, an epoch being one pass over the training
            objects, ``ceil(objects / batch_objects)`` steps.
        loss: ``mse`` (published) or ``l1``, the colour loss of both passes (the published
            ``loss.rgb.use_l1``).
        lambda_coarse, lambda_fine: weights of the coarse and fine losses (published 1, 1);
            as published, a run without a fine pass uses the coarse loss unweighted.
        freeze_encoder: the image encoder gets no gradient and its BatchNorm layers keep
            their running statistics (eval mode), the published ``--freeze_enc``.
        accumulate: batches whose gradients are summed before one optimiser update (the
            published ``accu_grad``, 1 = none). Each batch's loss is divided by it, so the
            update is that of one batch ``accumulate`` times larger. A step is one batch.
        init: where a run that has no checkpoint of its own starts from: None (fresh
            weights, the default), ``published`` (the experiment's published weights) or a
            checkpoint file; loaded strictly, with a new optimiser at step 0.
        lr_warmup: steps over which the rate rises linearly from ``1 / lr_warmup`` of the
            scheduled rate to all of it (0: none, as published). A high rate from step 0
            can push the density below zero everywhere before the colours are learnt: the
            model then renders the background alone and ReLU passes no gradient to leave it.
        no_bbox_step: from this step on, rays are drawn uniformly instead of inside the
            mask bounding box (published 100000).
        checkpoint_every: steps between checkpoints (published 50).
        val_every: steps between validation losses (published 50); 0 disables.
        vis_every: steps between visualisation images (published 100, DTU 200); 0 disables.
        seed: seed of every random draw of the run (object order, views, rays, jitter,
            renderer offsets); a resumed run draws exactly what an unbroken run draws.
        color_jitter: jitter colours once per object and batch (published for DTU only).
        color_jitter_range: half-width of the jitter factors (published 0.1 for hue,
            saturation, contrast and brightness alike).
        bf16: bfloat16 autocast of the forward pass: true, false or ``auto`` (bf16 where the
            device computes it natively, as everywhere: :func:`training_precision`).
        tf32: TF32 matmuls and convolutions on CUDA: true, false or ``auto`` (never TF32).
        fold_latent: apply the MLPs' ``lin_z`` layers to the latent map once a step and
            sample the result (``PixelNeRF.fold_latent_terms``), instead of multiplying
            every sampled point's latent: the same function and gradients, fewer FLOPs
            when a step queries more points than the map has cells. ``auto`` folds when
            the folded map is no wider than the latent, so sampling costs no more.
        num_workers: DataLoader worker processes decoding objects; 0 decodes in the main
            process and keeps decoded objects in memory up to ``cache_mb``; ``auto``: see
            :func:`resolve_workers`.
        cache_mb: memory for decoded objects when ``num_workers`` is 0.
        val_objects: held-out (``val`` split) objects in the validation loss; 0 disables.
        max_views: at most this many views of an object are loaded for training, drawn by
            the reader (published DTU: 49); None loads all.
        gpus: GPUs of the workflow's training job, one data-parallel process each (the
            train rule asks for them and passes ``--gpus``); the global batch, and so the
            training, is the same for every count.
    """

    weights: str = "train"
    published_source: str | None = None
    published_name: str | None = None
    steps: int = 400000
    batch_objects: int = 4
    rays_per_object: int = 128
    nviews: tuple[int, ...] = (1,)
    lr: float = 1e-4
    lr_schedule: str = "constant"
    lr_final: float = 0.0
    lr_warmup: int = 0
    lr_gamma: float = 1.0
    loss: str = "mse"
    lambda_coarse: float = 1.0
    lambda_fine: float = 1.0
    freeze_encoder: bool = False
    accumulate: int = 1
    init: str | None = None
    no_bbox_step: int = 100000
    checkpoint_every: int = 50
    val_every: int = 50
    vis_every: int = 100
    seed: int = 0
    color_jitter: bool = False
    color_jitter_range: float = 0.1
    bf16: bool | str = False
    tf32: bool | str = False
    fold_latent: bool | str = "auto"
    num_workers: int | str = "auto"
    cache_mb: int = 4096
    val_objects: int = 4
    max_views: int | None = None
    gpus: int = 1

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, origin: str = "train") -> TrainConfig:
        """Read a schema-checked ``train`` mapping (None: the defaults); keys, types and
        ranges are the experiment schema's, only the cross-field check is made here."""
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        config = cls(**{name: _as_field(value, defaults[name])
                        for name, value in (data or {}).items()})
        if config.lr_final > config.lr:
            raise PipelineError(f"{origin}.lr_final must be between 0 and lr ({config.lr}), "
                                f"not {config.lr_final}")
        if config.checkpoint_every % config.accumulate:
            # a checkpoint between the batches of one update would lose their gradients
            raise PipelineError(f"{origin}.checkpoint_every ({config.checkpoint_every}) must "
                                f"be a multiple of {origin}.accumulate ({config.accumulate})")
        return config

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


def _as_field(value: Any, default: Any) -> Any:
    """A YAML value as its field holds it: lists as tuples, integers in float fields as
    floats."""
    if isinstance(default, tuple):
        return tuple(value)
    if isinstance(default, float) and not isinstance(value, bool):
        return float(value)
    return value


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
    (``tools/gpu_train_check.py``, logged in docs/performance.md). ``tf32: true`` on a CPU
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
