"""The sensitivity table of one experiment: the reference row from its metrics files, the
re-scored variants over every object, the re-rendered ones over a seeded sample.

Call chain: ``build_sensitivity -> setting_rows -> reference_row, rescored_rows,
rerendered_rows``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.errors import PipelineError
from pixelnerf.eval.approx import sample_objects
from pixelnerf.eval.metrics import METRICS
from pixelnerf.eval.object_scores import ObjectRow
from pixelnerf.eval.paired import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    paired_summary,
)
from pixelnerf.eval.records import read_done
from pixelnerf.eval.render import RenderJob
from pixelnerf.eval.sensitivity import choices, rerender
from pixelnerf.eval.sensitivity.choices import RenderVariant
from pixelnerf.eval.sensitivity.lpips_seam import LpipsModels
from pixelnerf.eval.sensitivity.rescore import object_images, rescore
from pixelnerf.eval.sensitivity.scoring import REFERENCE_SCORING, score_views
from pixelnerf.eval.sensitivity.table import ALL_VIEWS, REFERENCE, SensitivityRow, SensitivityTable
from pixelnerf.eval.tables import check_unique, natural_key, reduce_rows

# Re-rendered variants: objects drawn (all if fewer) and target views per object. On the
# demo's network a view cost 1.2-2.5 s of CPU time in fp32 at 64 coarse samples and about
# twice that in bf16 (a shared, loaded 2-core machine), plus about 5 s a variant: its six
# re-renders of 8 objects x 3 views take 200-420 s of CPU time, within the 5 minutes the
# demo's target may take on 2 cores.
DEFAULT_OBJECTS = 100
DEFAULT_VIEWS = 3
DEFAULT_DRAWS = 3

Scores = dict[str, float | None]


@dataclass(frozen=True)
class SensitivityOptions:
    objects: int | None = DEFAULT_OBJECTS
    views: int = DEFAULT_VIEWS
    draws: int = DEFAULT_DRAWS
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    confidence: float = DEFAULT_CONFIDENCE
    workers: int = 1
    rerender: bool = True


def _scores(row: ObjectRow) -> Scores:
    return {metric: getattr(row, metric) for metric in METRICS}


def _means(scores: Sequence[Scores]) -> Scores:
    out: Scores = {}
    for metric in METRICS:
        values = [s[metric] for s in scores]
        out[metric] = (None if not values or any(v is None for v in values)
                       else math.fsum(values) / len(values))  # type: ignore[arg-type]
    return out


def paired_row(choice: str, variant: str, setting: str, n_views: str,
               reference: Sequence[Scores], scores: Sequence[Scores],
               options: SensitivityOptions, note: str = "",
               spread: Mapping[str, float | None] | None = None) -> SensitivityRow:
    """A variant's row: its means, the reference's on the same objects, the paired effects."""
    effects = paired_summary(reference, scores, options.resamples, options.seed,
                             options.confidence)
    return SensitivityRow(choice, variant, setting, len(scores), n_views, _means(scores),
                          _means(reference), effects, dict(spread or {}), note)


def reference_row(setting: str, rows: Sequence[ObjectRow]) -> SensitivityRow:
    """The experiment's own protocol: the table's total, reduced by the table's own code."""
    total = next(r for r in reduce_rows(rows, "category") if r.kind == "total")
    return SensitivityRow(REFERENCE, "experiment's protocol", setting, total.n_objects,
                          ALL_VIEWS, dict(total.ours), dict(total.ours), {})


def rescored_rows(setting: str, rows: Sequence[ObjectRow], renders: Path, lookup: Callable,
                  models: LpipsModels, batch_size: int,
                  options: SensitivityOptions) -> list[SensitivityRow]:
    variants = choices.RESCORE_VARIANTS
    scored = rescore(rows, renders, lookup, variants, models, batch_size, options.workers)
    reference = [_scores(r) for r in rows]
    out = []
    for variant, variant_rows in zip(variants, scored, strict=True):
        note = ""
        if variant.metric == "lpips" and models(variant.scoring.lpips_net) is None:
            note = f"LPIPS {variant.scoring.lpips_net} weights absent: not computed"
        elif variant.metric == "lpips" and reference[0]["lpips"] is None:
            note = "the reference has no LPIPS: no difference"
        out.append(paired_row(variant.choice, variant.variant, setting, ALL_VIEWS, reference,
                              [_scores(r) for r in variant_rows], options, note))
    return out


def render_variants(experiment: Mapping[str, Any], job: RenderJob, setting: str,
                    source_count: int, device: torch.device,
                    options: SensitivityOptions) -> list[RenderVariant]:
    """The rendering choices, in table order."""
    from pixelnerf.render.config import RendererConfig
    from pixelnerf.render.precision import resolve_precision

    renderer = experiment["renderer"]
    base = choices.reference_variant(renderer, job.eval)
    resolved = resolve_precision(RendererConfig.from_mapping(job.renderer).precision, device)
    variants = [
        RenderVariant("scoring_input", "float renders", base.renderer, base.eval,
                      score_float=True),
        choices.coarse_rule_variant(renderer, job.eval),
        choices.precision_variant(renderer, job.eval, resolved),
        *choices.source_draw_variants(renderer, job.eval, setting, source_count, options.draws),
    ]
    if experiment["dataset"]["format"] == "dvr_dtu":
        variants.append(choices.cameras_variant(renderer, job.eval))
    return variants


@dataclass(frozen=True)
class SampleContext:
    """What every rendering variant of one view setting shares: the job (its network's
    checkpoint), the sample, its items, truths and reference PNGs (by object id), the first
    object's cameras."""

    job: RenderJob
    setting: str
    plan: Sequence[rerender.SampledObject]
    items: Mapping[str, Any]
    truths: Mapping[str, list[np.ndarray]]
    pngs: Mapping[str, list[np.ndarray]]
    first: Any
    device: torch.device
    models: LpipsModels
    batch_size: int


def variant_scores(context: SampleContext,
                   variant: RenderVariant) -> tuple[list[Scores], list[Scores] | None, str]:
    """The variant's scores per sampled object; for ``score_float`` also those of the 8-bit
    images of the same renders (what it is paired with) and a note on the PNGs."""
    inference = rerender.variant_inference(
        context.job, variant, context.device,
        lambda line: print(f"sensitivity: {variant.choice} {variant.variant}: {line}",
                           flush=True))
    scores, own_eight_bit, differing = [], [], 0
    for s in context.plan:
        views = rerender.render_views(inference.model, inference.renderer, context.job, variant,
                                      context.setting, context.items[s.object_id], s,
                                      context.first, context.device)
        truths = context.truths[s.object_id]
        predicted = views.images if variant.score_float else views.eight_bit
        scores.append(score_views(list(predicted), truths, REFERENCE_SCORING, context.models,
                                  context.batch_size))
        if variant.score_float:
            own_eight_bit.append(score_views(list(views.eight_bit), truths, REFERENCE_SCORING,
                                             context.models, context.batch_size))
        differing += sum(not np.array_equal(a, b) for a, b in
                         zip(views.eight_bit, context.pngs[s.object_id], strict=True))
    if not variant.score_float:
        return scores, None, ""
    # Paired with the 8-bit images of the same renders, so that the difference is the
    # quantisation alone: a render of other views splits its ray batches elsewhere, which
    # moves some pixels of the PNGs by one level.
    total = sum(len(s.views) for s in context.plan)
    return scores, own_eight_bit, ("paired with the 8-bit images of the same renders; "
                                   f"these equal the PNGs in {total - differing} of {total} views")


def rerendered_rows(experiment: Mapping[str, Any], job: RenderJob, setting: str,
                    rows: Sequence[ObjectRow], dataset: Any, lookup: Callable,
                    models: LpipsModels, batch_size: int, device: torch.device,
                    options: SensitivityOptions,
                    variants: Sequence[RenderVariant] | None = None) -> list[SensitivityRow]:
    """The rendering variants on the seeded sample, each beside the reference's PNGs."""
    from pixelnerf.eval.inference import object_ids_of

    index_of = {object_id: i for i, object_id in enumerate(object_ids_of(dataset))}
    by_id = {row.object_id: row for row in rows}
    chosen = sample_objects(list(by_id), options.objects, options.seed)
    records = {oid: read_done(job.out_root, setting, oid) for oid in chosen}
    source_count = len(records[chosen[0]].sources)
    if variants is None:
        variants = render_variants(experiment, job, setting, source_count, device, options)
    reference = choices.reference_variant(experiment["renderer"], job.eval)
    first = None
    if any(v.eval.reuse_first_object_cameras for v in [reference, *variants]):
        first = rerender.first_object_cameras(dataset)
    plan = rerender.sample_plan(
        [(oid, index_of[oid], by_id[oid].category, records[oid].targets) for oid in chosen],
        [reference, *variants], setting, dataset, first, options.views, options.seed)
    items = {s.object_id: lookup(s.object_id) for s in plan}
    pngs = {s.object_id: object_images(job.out_root, setting, s.object_id, lookup, s.views).preds
            for s in plan}
    truths = {s.object_id: rerender.truths_of(items[s.object_id], s) for s in plan}
    ref_scores = [score_views(pngs[s.object_id], truths[s.object_id], REFERENCE_SCORING,
                              models, batch_size) for s in plan]
    n_views = str(len(plan[0].views)) if len({len(s.views) for s in plan}) == 1 else "varies"

    context = SampleContext(job, setting, plan, items, truths, pngs, first, device, models,
                            batch_size)
    out, draws = [], []
    for variant in variants:
        started, cpu = time.perf_counter(), time.process_time()
        if variant.same:
            scores, paired_with, note = list(ref_scores), ref_scores, variant.same
        else:
            scores, own, note = variant_scores(context, variant)
            paired_with = own if own is not None else ref_scores
        print(f"sensitivity: {setting} {variant.choice} {variant.variant}: "
              f"{time.perf_counter() - started:.1f} s ({time.process_time() - cpu:.1f} s "
              "of CPU time)", flush=True)
        out.append(paired_row(variant.choice, variant.variant, setting, n_views, paired_with,
                              scores, options, note))
        if variant.choice == choices.DRAWS_GROUP:
            draws.append(scores)
    if len(draws) > 1:
        out.append(draws_summary(setting, n_views, ref_scores, draws, options))
    return out


def draws_summary(setting: str, n_views: str, reference: Sequence[Scores],
                  draws: Sequence[Sequence[Scores]], options: SensitivityOptions) -> SensitivityRow:
    """The draws together: per object the mean over draws, and the spread of the draws'
    totals (their standard deviation)."""
    per_object = [_means([draw[i] for draw in draws]) for i in range(len(reference))]
    totals = [_means(draw) for draw in draws]
    spread = {}
    for metric in METRICS:
        values = [t[metric] for t in totals]
        spread[metric] = (None if any(v is None for v in values)
                          else float(np.std(np.array(values, dtype=np.float64), ddof=1)))
    return paired_row(choices.DRAWS_GROUP, f"mean of {len(draws)} draws", setting, n_views,
                      reference, per_object, options,
                      f"sd_* columns: spread of the {len(draws)} draws' means", spread)


def build_sensitivity(experiment: Mapping[str, Any], job: RenderJob, rows: Sequence[ObjectRow],
                      models: LpipsModels, device: torch.device,
                      options: SensitivityOptions) -> SensitivityTable:
    """Every view setting of ``rows`` (the experiment's metrics rows), in natural order."""
    from pixelnerf.eval.inference import item_lookup, open_split

    ours = [row for row in rows if not row.is_baseline]
    check_unique(ours)
    if not ours:
        raise PipelineError("the metrics files hold no (non-baseline) object rows")
    dataset = open_split(job.dataset, job.data_root, job.eval.split, job.eval.scale)
    lookup = item_lookup(dataset)
    batch = job.eval.lpips_batch_size
    table = SensitivityTable(str(experiment["name"]), [], options.resamples, options.seed,
                             options.confidence)
    for setting in sorted({row.setting for row in ours}, key=natural_key):
        members = [row for row in ours if row.setting == setting]
        table.rows.append(reference_row(setting, members))
        table.rows += rescored_rows(setting, members, job.out_root, lookup, models, batch,
                                    options)
        if options.rerender:
            table.rows += rerendered_rows(experiment, job, setting, members, dataset, lookup,
                                          models, batch, device, options)
    if all(row.values.get("lpips") is None for row in table.rows):
        table.notes.append("LPIPS: not computed (weights absent), its columns left empty.")
    if not options.rerender:
        table.notes.append("The choices that change the rendering were not evaluated "
                           "(--no-rerender).")
    return table
