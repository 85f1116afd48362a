"""Render the target views of one shard of an experiment's test objects.

Call chain: render_shard -> select_objects, then per object: object_plan -> (skip when
records.is_done) -> render_object -> write_object; records.write_manifest last.

Per object: encode its source views once, render all its target views in ray batches of
`eval.ray_batch`, clamp to [0, 1] and truncate to 8 bits (`uint8(x * 255)`), write
`<out>/<setting>/<object_id>/{view:06d}.png` atomically, the extra files that `eval.outputs`
asks for (depth, coarse render, with sources, comparison:
:mod:`pixelnerf.eval.extra_outputs`), then `done.json` LAST. A rerun
skips an object whose done.json carries the same fingerprint (checkpoint digest, renderer
settings, views, seed), so a killed job loses at most the object in progress, and renders of an
older checkpoint are never mistaken for current ones. The random sample offsets of each object
come from a generator seeded by (eval.seed, setting, object id), so results do not depend on
sharding, order or resume. When every object is done the shard manifest
`<out>/<setting>/shard-<k>-of-<K>.json` is written (the workflow's output of the job).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.errors import PipelineError
from pixelnerf.eval import records
from pixelnerf.eval.coarse_samples import evaluation_renderer_config
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.extra_outputs import write_extras
from pixelnerf.eval.inference import (
    Cameras,
    ViewPasses,
    device_label,
    load_inference,
    object_ids_of,
    open_split,
    render_view_passes,
    to_uint8,
    view_count,
)
from pixelnerf.eval.overlap import HostPasses, OrderedWriter, prefetched
from pixelnerf.eval.protocol import Protocol, ViewSelection, shard_objects, stable_seed


@dataclass(frozen=True)
class RenderJob:
    """One render job: the experiment's sections it reads and where it reads and writes."""

    name: str
    dataset: Mapping[str, Any]
    model: Mapping[str, Any]
    renderer: Mapping[str, Any]
    eval: EvalConfig
    data_root: Path
    checkpoint: Path
    out_root: Path

    @classmethod
    def of_experiment(cls, experiment: Mapping[str, Any], data_root: Path, checkpoint: Path,
                      out_root: Path) -> RenderJob:
        from pixelnerf.config import section

        eval_config = EvalConfig.of_experiment(experiment)
        # the renderer of the evaluation: at least eval.min_coarse_samples coarse samples
        renderer = evaluation_renderer_config(section(experiment, "renderer"),
                                              eval_config.min_coarse_samples)
        return cls(str(experiment["name"]), section(experiment, "dataset"),
                   section(experiment, "model"), renderer, eval_config, data_root, checkpoint,
                   out_root)


@dataclass(frozen=True)
class ObjectPlan:
    """What one object's renders are: its views, seed and the fingerprint they carry."""

    object_id: str
    selection: ViewSelection
    seed: int
    fingerprint: str


def select_objects(job: RenderJob, all_ids: Sequence[str], shard: int, shards: int,
                   approx: bool) -> list[str]:
    """The objects of this shard: of the whole split, or of the approximate sample."""
    if not approx:
        return shard_objects(list(all_ids), shard, shards)
    from pixelnerf.eval.approx import sample_objects

    if job.eval.approx is None:
        raise PipelineError(f"{job.name}: --approx needs an eval.approx section")
    sample = sample_objects(list(all_ids), job.eval.approx.objects, job.eval.approx.seed)
    return shard_objects(sample, shard, shards)


def object_plan(job: RenderJob, protocol: Protocol, setting: str, object_id: str,
                n_views: int, checkpoint_digest: str, approx: bool) -> ObjectPlan:
    """The object's source and target views (the approximate sample's targets with
    ``approx``), its seed and its fingerprint."""
    selection = protocol.select(setting, object_id, n_views)
    if approx:
        from pixelnerf.eval.approx import sample_views

        views = sample_views(object_id, selection.targets, job.eval.approx.views,
                             job.eval.approx.seed)
        selection = ViewSelection(sources=selection.sources, targets=views)
    seed = stable_seed(job.eval.seed, setting, object_id)
    digest = records.fingerprint(checkpoint_digest, job.model, job.renderer, job.eval,
                                 selection, seed)
    return ObjectPlan(object_id, selection, seed, digest)


def render_object(model: torch.nn.Module, renderer: Any, item: Mapping[str, Any],
                  cameras: Cameras, plan: ObjectPlan, ray_batch: int, device: torch.device,
                  extras: bool) -> ViewPasses:
    """The object's target views, on ``device`` (``extras``: with depth and coarse pass)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(plan.seed)
    return render_view_passes(model, renderer, torch.as_tensor(item["images"]), cameras,
                              plan.selection, ray_batch, generator, device, extras=extras)


def write_object(folder: Path, plan: ObjectPlan, images: np.ndarray, category: str,
                 seconds: float, device: torch.device,
                 extra: Mapping[str, Any] | None = None,
                 inference: Mapping[str, Any] | None = None) -> None:
    """The PNGs atomically, then done.json last (``extra``: its keys for the extra outputs,
    already written; ``inference``: the job's inference plan, recorded with them)."""
    from pixelnerf.io import atomic_save_png

    for view, image in zip(plan.selection.targets, images, strict=True):
        atomic_save_png(folder / f"{view:06d}.png", image)
    records.write_done(folder, plan.object_id, category, plan.selection, seconds, plan.seed,
                       device_label(device), plan.fingerprint, extra, inference)


def finish_object(job: RenderJob, plan: ObjectPlan, folder: Path, item: Mapping[str, Any],
                  cameras: Cameras, on_host: HostPasses, started: float,
                  device: torch.device, finished: list[float],
                  inference: Mapping[str, Any] | None = None) -> None:
    """Wait for an object's passes, then write its files, done.json last (on the writer
    thread), and append the time it was done to ``finished``. Its ``seconds`` run from the
    start of its render to its pixels on the host."""
    passes = on_host.wait()
    seconds = time.perf_counter() - started
    images = to_uint8(passes.rgb)
    extra = write_extras(folder, job.eval.outputs, plan.selection, passes, images, item,
                         cameras.z_far)
    write_object(folder, plan, images, str(item.get("category", "")), seconds, device, extra,
                 inference)
    finished.append(time.perf_counter())


def steady_rate(finished: Sequence[float]) -> str:
    """``; X objects/s after the first`` from the times objects were done: the first object
    also pays loading and compiling, so the rate of the others is what a longer shard gets."""
    if len(finished) < 3 or finished[-1] <= finished[0]:
        return ""
    rate = (len(finished) - 1) / (finished[-1] - finished[0])
    return f"; {rate:.3f} objects/s after the first"


def render_shard(
    job: RenderJob,
    setting: str,
    shard: int,
    shards: int,
    device: torch.device,
    progress: bool = True,
    approx: bool = False,
) -> Path:
    """Render every unfinished object of one shard; returns the manifest path written last.

    ``approx``: only the seeded sample of `eval.approx` (objects of the split, then target
    views per object, :mod:`pixelnerf.eval.approx`), for the approximate evaluation.
    Decoding the next object and writing the last one overlap the render of the current
    one (:mod:`pixelnerf.eval.overlap`).
    """
    from tqdm import tqdm

    protocol = Protocol.from_config(job.eval)
    protocol.rule(setting)  # an unknown setting fails before any work
    split = job.eval.render_split(approx)
    dataset = open_split(job.dataset, job.data_root, split, job.eval.scale)
    all_ids = object_ids_of(dataset)
    if not all_ids:
        raise PipelineError(f"split {split!r} of {job.name} has no objects")
    mine = select_objects(job, all_ids, shard, shards, approx)
    index_of = {object_id: i for i, object_id in enumerate(all_ids)}
    digest = records.file_digest(job.checkpoint)

    first_cameras = None
    if job.eval.reuse_first_object_cameras:
        # The published eval.py quirk: the first object's cameras for all.
        first_cameras = Cameras.of_item(dataset[0])

    todo = []
    for object_id in mine:
        # Only the listing is read here, no image decoded: a resume stays cheap.
        n_views = (view_count(dataset, index_of[object_id]) if first_cameras is None
                   else int(first_cameras.poses.shape[0]))
        plan = object_plan(job, protocol, setting, object_id, n_views, digest, approx)
        if not records.is_done(records.object_dir(job.out_root, setting, object_id),
                               plan.fingerprint):
            todo.append(plan)
    print(f"render: {setting} shard {shard} of {shards}: {len(todo)} of {len(mine)} objects "
          "to render", flush=True)
    finished: list[float] = []
    if todo:
        inference = load_inference(job.model, job.renderer, job.checkpoint, device)
        model, renderer = inference.model, inference.renderer
        extras = job.eval.outputs.depth or job.eval.outputs.coarse
        objects = prefetched(todo, lambda plan: dataset[index_of[plan.object_id]])
        bar = tqdm(objects, total=len(todo), desc=f"render {setting} shard {shard}/{shards}",
                   unit="obj", disable=not progress)
        with OrderedWriter() as writer:
            for plan, item in bar:
                started = time.perf_counter()
                cameras = first_cameras or Cameras.of_item(item)
                passes = render_object(model, renderer, item, cameras, plan,
                                       job.eval.ray_batch, device, extras)
                folder = records.object_dir(job.out_root, setting, plan.object_id)
                writer.submit(functools.partial(finish_object, job, plan, folder, item,
                                                cameras, HostPasses.start(passes), started,
                                                device, finished, inference.plan.record()))
        bar.close()
    print(f"render: {setting} shard {shard} of {shards}: {len(todo)} objects rendered, "
          f"{len(mine) - len(todo)} already done{steady_rate(finished)}")
    return records.write_manifest(job.out_root, setting, shard, shards, mine,
                                  None if split == job.eval.split else split)
