"""The training run: build, resume, step to the budget, report, finish.

``train -> build_run -> (Checkpointer.resume) -> train_step* -> after_step hooks
(validation_loss, visualization, Checkpointer.save) -> write_done``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pixelnerf.config import section
from pixelnerf.data.config import DatasetConfig
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text
from pixelnerf.model.checkpoint import load_checkpoint
from pixelnerf.train.batches import first_objects, step_batches
from pixelnerf.train.checkpoint import Checkpointer, warn
from pixelnerf.train.config import (
    Precision,
    TrainConfig,
    resolve_fold,
    resolve_workers,
    training_precision,
)
from pixelnerf.train.distributed import (
    SINGLE,
    World,
    barrier,
    reduce_losses,
    scaled,
    share_of_batch,
    wrap_objective,
)
from pixelnerf.train.divergence import check_step
from pixelnerf.train.evaluate import validation_loss
from pixelnerf.train.init import init_source, prepare_init
from pixelnerf.train.monitor import LossLog, Progress, Scalars
from pixelnerf.train.objective import Losses, LossSettings, autocast, tf32_matmul
from pixelnerf.train.sampling import (
    STREAM_RENDER,
    STREAM_SAMPLE,
    SamplerSettings,
    sample_batch,
    step_generator,
)
from pixelnerf.train.visualize import save_visualization, visualization

DONE = "done.json"
TRAINING_RENDERER_SETTINGS = {"precision": "fp32", "compile": False}


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where one run writes (see docs: contracts)."""

    checkpoints: Path
    out: Path

    @property
    def done(self) -> Path:
        return self.out / DONE

    @property
    def losses(self) -> Path:
        return self.out / "losses.csv"

    @property
    def tensorboard(self) -> Path:
        return self.out / "tb"

    @property
    def vis(self) -> Path:
        return self.out / "vis"


@dataclasses.dataclass
class Run:
    """Everything a training step needs."""

    config: TrainConfig
    budget: int
    device: torch.device
    precision: Precision
    fold_latent: bool
    model: Any
    renderer: Any
    optimizer: torch.optim.Optimizer
    train_set: Any
    val_objects: list[dict[str, Any]]
    loss_settings: LossSettings = LossSettings()
    epoch_steps: int = 1  # steps of one pass over the training objects
    loader_workers: int = 0  # train.num_workers resolved for the device
    world: World = SINGLE
    objective: Any = None  # the objective module (under DDP in a job of several ranks)


def open_split(experiment: Mapping[str, Any], data_root: str | os.PathLike, split: str,
               **extra: Any) -> Any:
    """The experiment's dataset split as a torch Dataset of object dicts; ``extra`` are
    reader options."""
    return DatasetConfig.of_experiment(experiment).open(data_root, split, **extra)


def held_out_objects(experiment: Mapping[str, Any], data_root: str | os.PathLike, count: int,
                     device: torch.device) -> list[dict[str, Any]]:
    """The first ``count`` objects of the ``val`` split; none (with one warning line) where
    the dataset has no usable ``val`` split, which turns validation and pictures off."""
    try:
        objects = first_objects(open_split(experiment, data_root, "val"), count, device)
    except PipelineError as exc:
        warn(f"no validation objects ({exc}); validation loss and visualisations are off")
        return []
    if not objects:
        warn("the val split has no objects; validation loss and visualisations are off")
    return objects


def build_run(experiment: Mapping[str, Any], data_root: str | os.PathLike,
              device: torch.device, steps: int | None = None, world: World = SINGLE) -> Run:
    """Model, renderer, optimizer and data of one experiment, on ``device``; the objective
    under DDP when ``world`` has several ranks (validation objects on rank 0 only)."""
    from pixelnerf.model import PixelNeRF
    from pixelnerf.render import Renderer, resolve_plan

    config = TrainConfig.of_experiment(experiment)
    if config.weights != "train":
        raise PipelineError(f"train.weights is {config.weights!r}: this experiment uses the "
                            f"published checkpoint and is not trained")
    budget = config.steps if steps is None else steps
    if budget <= 0:
        raise PipelineError(f"--steps must be positive, not {budget}")
    torch.manual_seed(config.seed)  # initial weights; every later draw has its own generator
    # The evaluation settings (precision, compile) are not training's: its validation and
    # pictures run in fp32 or under train.bf16, on eager modules.
    renderer_config = {**section(experiment, "renderer"), **TRAINING_RENDERER_SETTINGS}
    plan = resolve_plan(renderer_config, device, section(experiment, "model"))
    model = PixelNeRF.from_config(section(experiment, "model"), plan=plan).to(device)
    renderer = Renderer.from_config(renderer_config, plan)
    if isinstance(renderer, torch.nn.Module):
        renderer = renderer.to(device)
    # The published trainer fine-tunes everything, the encoder included, unless frozen.
    if config.freeze_encoder:
        freeze_encoder(model)
    # Fused Adam (one kernel for all parameters) where CUDA has it; the same update rule.
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 fused=True if device.type == "cuda" else None)
    # The published DTU trainer loads at most 49 random views of an object (max_imgs).
    limit = {} if config.max_views is None else {"max_views": config.max_views,
                                                 "seed": config.seed}
    train_set = open_split(experiment, data_root, "train", **limit)
    if len(train_set) == 0:
        raise PipelineError("the training split of the experiment's dataset has no objects")
    needs_val = world.main and config.val_objects > 0 and (config.val_every > 0
                                                           or config.vis_every > 0)
    val_objects = []
    if needs_val:
        val_objects = held_out_objects(experiment, data_root, config.val_objects, device)
    return Run(config=config, budget=budget, device=device,
               precision=training_precision(config, device),
               fold_latent=resolve_fold(config, model.encoder.latent_size,
                                        model.folded_latent_width()),
               model=model, renderer=renderer,
               optimizer=optimizer, train_set=train_set, val_objects=val_objects,
               loss_settings=LossSettings(config.loss, config.lambda_coarse,
                                          config.lambda_fine),
               epoch_steps=math.ceil(len(train_set) / config.batch_objects),
               loader_workers=resolve_workers(config, device, world.local_size),
               world=world, objective=wrap_objective(model, renderer, world, device))


def freeze_encoder(model: Any) -> None:
    """No gradient into the image encoder (``--freeze_enc``); :func:`train_mode` keeps
    its BatchNorm in eval mode."""
    model.stop_encoder_grad = True
    for parameter in model.encoder.parameters():
        parameter.requires_grad_(False)


def train_mode(run: Run) -> None:
    """The model in training mode, a frozen encoder in eval mode (running statistics)."""
    run.model.train()
    if run.config.freeze_encoder:
        run.model.encoder.eval()


def sampler_settings(config: TrainConfig, step: int) -> SamplerSettings:
    """How step ``step`` draws rays: inside the mask bbox while ``step < no_bbox_step``
    (objects without a bbox, e.g. DTU, draw uniformly anyway), uniformly from then on;
    colour jitter when configured."""
    return SamplerSettings(
        nviews=config.nviews,
        rays_per_object=config.rays_per_object,
        use_bbox=step < config.no_bbox_step,
        color_jitter=config.color_jitter_range if config.color_jitter else None,
    )


def train_step(run: Run, step: int, objects: list[dict[str, Any]]) -> tuple[dict[str, float], int]:
    """One optimisation step on ``objects``; returns the loss values of the global batch
    and its ray count. Each rank renders its share of the rays (``share_of_batch``)."""
    cfg = run.config
    settings = sampler_settings(cfg, step)
    batch = sample_batch(objects, settings, step_generator(cfg.seed, STREAM_SAMPLE, step))
    part, draws = share_of_batch(
        batch, step_generator(cfg.seed, STREAM_RENDER, step, run.device), run.world)
    train_mode(run)
    for group in run.optimizer.param_groups:
        group["lr"] = cfg.learning_rate(step, run.epoch_steps)
    # train.accumulate batches make one update; checkpoints fall between updates
    if step % cfg.accumulate == 0:
        run.optimizer.zero_grad(set_to_none=True)
    with autocast(run.device, run.precision.bf16):
        losses: Losses = scaled(run.objective(part, draws, run.fold_latent, run.loss_settings),
                                part.n_rays / batch.n_rays)
    # DDP averages the ranks' gradients; the world size makes it their sum.
    (losses.total * run.world.size / cfg.accumulate).backward()
    whole = reduce_losses(losses, run.world)  # the global batch's (the same on every rank)
    check_step(step, whole.total, run.model)
    if (step + 1) % cfg.accumulate == 0 or step + 1 == run.budget:
        run.optimizer.step()
    return whole.values(), batch.n_rays


def validate(run: Run) -> dict[str, float]:
    """Validation loss and PSNR on the held-out objects (no bbox, no jitter)."""
    settings = SamplerSettings(nviews=run.config.nviews,
                               rays_per_object=run.config.rays_per_object,
                               use_bbox=False, color_jitter=None)
    return validation_loss(run.model, run.renderer, run.val_objects, settings,
                           run.config.batch_objects, run.config.seed, run.device,
                           run.precision.bf16, run.fold_latent)


def visualize(run: Run, step: int, directory: Path) -> float:
    """Write the visualisation of step ``step`` (a held-out object, cycling); its PSNR."""
    obj = run.val_objects[(step // max(run.config.vis_every, 1)) % len(run.val_objects)]
    panel, value = visualization(run.model, run.renderer, obj, run.config.nviews,
                                 run.config.seed, step, run.precision.bf16)
    save_visualization(directory, step, panel)
    return value


def due(done_steps: int, every: int) -> bool:
    return every > 0 and done_steps % every == 0


class Reporter:
    """Losses CSV, TensorBoard, progress bar and the running summary of one run."""

    def __init__(self, paths: RunPaths, start: int, budget: int):
        self.log = LossLog(paths.losses, start)
        self.scalars = Scalars(paths.tensorboard, start)
        self.progress = Progress(start, budget)
        self.window: list[dict[str, float]] = []  # train losses since the last checkpoint
        self.val: dict[str, float] | None = None

    def step(self, step: int, values: dict[str, float], n_rays: int) -> None:
        self.log.add(step, values)
        self.scalars.add("train", values, step)
        self.progress.update(values, n_rays)
        self.window.append(values)

    def train_summary(self) -> dict[str, float]:
        """Mean train loss and PSNR over the steps since the last checkpoint (the last ones)."""
        if not self.window:
            return {}
        return {k: sum(v[k] for v in self.window) / len(self.window) for k in ("loss", "psnr")}

    def close(self) -> None:
        self.progress.close()
        self.scalars.close()


def after_step(run: Run, step: int, paths: RunPaths, reporter: Reporter,
               checkpointer: Checkpointer, seconds: float) -> None:
    """Validation, visualisation and checkpoint due once step ``step`` (0-based) is done."""
    finished = step + 1
    if run.val_objects and due(finished, run.config.val_every):
        reporter.val = validate(run)
        reporter.scalars.add("val", reporter.val, step)
    if run.val_objects and due(finished, run.config.vis_every):
        reporter.scalars.add("vis", {"psnr": visualize(run, finished, paths.vis)}, step)
    if due(finished, run.config.checkpoint_every) or finished == run.budget:
        reporter.log.flush()  # before the checkpoint: a resume cuts rows after it
        checkpointer.save(run.model, run.optimizer, finished, seconds)
        if finished < run.budget:
            reporter.window.clear()


def read_done(path: Path) -> dict[str, Any] | None:
    """The ``done.json`` of a finished run, or None."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{path} is not readable JSON: {exc}") from exc


def write_done(path: Path, budget: int, seconds: float, train: Mapping[str, float],
               val: Mapping[str, float] | None) -> dict[str, Any]:
    """Write ``done.json`` (last output of the run): steps, seconds, final losses."""
    summary = {
        "steps": budget,
        "seconds": round(seconds, 3),
        "train_loss": train.get("loss"),
        "train_psnr": train.get("psnr"),
        "val_loss": None if val is None else val["loss"],
        "val_psnr": None if val is None else val["psnr"],
    }
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in summary.items()}
    atomic_write_text(path, json.dumps(clean, indent=2) + "\n")
    return clean


def train(experiment: Mapping[str, Any], data_root: str | os.PathLike, paths: RunPaths,
          device: torch.device, steps: int | None = None,
          init: str | None = None, world: World = SINGLE) -> dict[str, Any] | None:
    """Train to the step budget, resuming from ``paths.checkpoints`` when it holds a
    checkpoint; returns the ``done.json`` summary (None on ranks other than 0, which write
    nothing). A finished run (``done.json`` with at least the budget's steps) is left as it
    is. ``init`` (else ``train.init``): the weights file a run without a checkpoint starts
    from (:mod:`pixelnerf.train.init`). Several ranks (``world``, inside
    ``distributed.process_group``) train as one."""
    config = TrainConfig.of_experiment(experiment)
    budget = config.steps if steps is None else steps
    source = init_source(config.init, init)
    if source is not None and world.main:
        for moved in prepare_init(source, paths.checkpoints, paths.out):
            print(f"pixelnerf: another run's files moved aside to {moved}", flush=True)
    barrier(world)  # the other ranks read the checkpoint folder once rank 0 has set it up
    done = read_done(paths.done)
    if done is not None and int(done.get("steps", -1)) >= budget:
        if world.main:
            print(f"pixelnerf: training already done ({paths.done}); nothing to do")
        return done if world.main else None
    run = build_run(experiment, data_root, device, steps, world)
    checkpointer = Checkpointer(paths.checkpoints)
    resumed = checkpointer.resume(run.model, run.optimizer)
    if resumed is None and source is not None:
        load_checkpoint(source, run.model)
        if world.main:
            print(f"pixelnerf: starting from the weights {source}", flush=True)
    start = 0 if resumed is None else min(resumed.step, run.budget)
    seconds_before = 0.0 if resumed is None else resumed.seconds
    if resumed is not None and world.main:
        print(f"pixelnerf: resuming from {resumed.source} at step {start}", flush=True)
    began = time.perf_counter()
    reporter = Reporter(paths, start, run.budget) if world.main else None
    batches = step_batches(run.train_set, run.config.batch_objects, run.config.seed, start,
                           run.budget, device, run.loader_workers, run.config.cache_mb)
    try:
        with tf32_matmul(run.precision.tf32) if device.type == "cuda" else contextlib.nullcontext():
            for step, objects in batches:
                values, n_rays = train_step(run, step, objects)
                if reporter is not None:
                    reporter.step(step, values, n_rays)
                    after_step(run, step, paths, reporter, checkpointer,
                               seconds_before + time.perf_counter() - began)
    finally:
        if reporter is not None:
            reporter.close()
    if reporter is None:
        return None
    if run.val_objects and reporter.val is None:
        reporter.val = validate(run)
    return write_done(paths.done, run.budget, seconds_before + time.perf_counter() - began,
                      reporter.train_summary(), reporter.val)
