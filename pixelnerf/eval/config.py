"""The experiment's ``eval`` section as a typed, frozen value.

Every key's default and meaning are written once, in its field here; the JSON schema
(``pixelnerf/schemas/experiment.schema.yaml``) has checked keys, types and ranges when a
config reaches :meth:`EvalConfig.of_experiment`, which builds the value once, at the edge
(a command or the workflow), so the library never re-reads the raw mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pixelnerf.config import REQUIRED, build, section, setting

# The published eval_approx.py renders every object of the val split.
PUBLISHED_APPROX_SPLIT = "val"


@dataclass(frozen=True)
class ApproxConfig:
    """``eval.approx``: the approximate evaluation, a seeded sample of objects and views."""

    protocol: Literal["sampled", "published"] = setting(
        "sampled", "`sampled` (`objects`, `views`, `seed` as given; the summary gives 95% "
        "intervals) or `published`: the published `eval_approx.py` protocol, every object of "
        "the `val` split (whatever `eval.split` says), one random target view each, seed 1234; "
        "`objects`, `views` and `seed` are then not given. The view is drawn by this "
        "pipeline's seeded sampler, not by the published code's generator, so it is not the "
        "same view as the published run picked")
    objects: int | None = setting(
        None, "objects sampled (required for `sampled`); null: every object (`published`)")
    views: int = setting(
        1, "target views per object (required for `sampled`; `published`: 1)")
    seed: int = setting(
        1234, "seed of the sample (required for `sampled`; `published`: 1234)")
    setting: str | None = setting(
        None, "view setting of the approximate evaluation; null: the first of `eval.settings`")

    @property
    def split(self) -> str | None:
        """The split the approximate evaluation renders (None: ``eval.split``)."""
        return PUBLISHED_APPROX_SPLIT if self.protocol == "published" else None


@dataclass(frozen=True)
class EvalOutputs:
    """``eval.outputs``: the extra files written per target view beside its render
    (:mod:`pixelnerf.eval.extra_outputs`)."""

    depth: bool = setting(
        False, "`true` writes per target view `<object>/depth/<view>.png` beside the render: "
        "the expected depth of the pass rendered (fine when there are fine samples; published "
        "`--write_depth`) as a 16-bit grayscale PNG on a fixed scale, depth = pixel value × "
        "`depth_scale` (= `z_far` / 65535, recorded in the object's `done.json`); the "
        "published code normalises each map to its own range instead")
    coarse: bool = setting(
        False, "`true` writes `<object>/coarse/<view>.png`, the coarse network's render, "
        "8 bits (published `--coarse`)")
    include_src: bool = setting(
        False, "`true` writes `<object>/with_src/<view>.png`: the source views, then the "
        "render, side by side (published `--include_src`)")
    compare: bool = setting(
        False, "`true` writes `<object>/compare/<view>.png`: source views | render | "
        "ground truth (published `--write_compare`)")

    @property
    def any(self) -> bool:
        return self.depth or self.coarse or self.include_src or self.compare


@dataclass(frozen=True)
class EvalTargets:
    """``eval.targets``: which views may be targets."""

    view_list: str | None = setting(
        None, "file whose first line lists the only views that may be targets "
        "(`2obj_eval_views.txt`; `srn_eval_views.txt` for a quick SRN subset); null: all views")
    exclude: tuple[int, ...] = setting(
        (), "views never used as targets (DTU 3-7, 16-21, 36-39)")


@dataclass(frozen=True)
class EvalConfig:
    """``eval``: the split evaluated, view settings (name -> raw source-view rule, parsed by
    :class:`pixelnerf.eval.protocol.Protocol`), targets and how objects are rendered, scored
    and shown."""

    split: Literal["train", "val", "test"] = setting(
        REQUIRED, "split evaluated (`test`; DTU `val`)")
    settings: Mapping[str, Mapping[str, Any]] = setting(
        REQUIRED, "view setting name (`1v`, `2v`, `3v`, ...) -> how its source views are "
        "chosen, exactly one of: `views: [i, ...]` (same for every object: SRN 64 / 64 104; "
        "DTU 25 / 22 25 28 / ...), `view_list: FILE` (per object, lines `<category folder> "
        "<object> <view...>`: `src_dvr.txt`, `src_gen.txt`), `random: {count, seed}` (drawn "
        "per object from the views that are never targets, else from all, seeded by `seed`, "
        "the setting and the object id; recorded in each object's `done.json`)")
    seed: int = setting(
        REQUIRED, "seed of the renderer's random sample offsets; each object's generator is "
        "seeded by (seed, setting, object id), so renders do not depend on sharding or resuming")
    shards: int = setting(
        REQUIRED, "render/metrics jobs per view setting (overridden by the global `shards`)")
    targets: EvalTargets = setting(EvalTargets(), "which views may be targets")
    reuse_first_object_cameras: bool = setting(
        False, "`true` renders every object with the cameras of the split's first object, the "
        "published `eval.py` quirk that produced the published DTU numbers; `false`: each "
        "object's own cameras. The table says which was used")
    ray_batch: int = setting(
        50000, "rays rendered per renderer call (published `eval.py`'s `-R`)")
    min_coarse_samples: int | None = setting(
        64, "renders (table and approximate evaluation) use at least this many coarse samples "
        "per ray: a `renderer.n_coarse` below it is raised to it, as the published `eval.py` "
        "does (64); null: `renderer.n_coarse` as configured. The published experiments have 64 "
        "already; the demo trains with 32 and renders with 64 because its table follows the "
        "published protocol. The table's notes say which count was used")
    baselines: bool = setting(
        False, "add the rows `baseline:background` and `baseline:source_view` to the table")
    report_objects: int = setting(
        3, "objects shown as renders beside ground truth in the report's figure")
    report_views: int = setting(2, "target views per object in the report's figure")
    lpips_batch_size: int = setting(
        32, "images per LPIPS call (published `calc_metrics.py`: 32)")
    table_rows: Literal["category", "setting"] | None = setting(
        None, "what a table row is: `category` or `setting`; null: by format (ShapeNet: "
        "category, SRN/DTU/two chairs: setting)")
    approx: ApproxConfig | None = setting(None, "the approximate evaluation")
    outputs: EvalOutputs = setting(
        EvalOutputs(), "extra files per target view beside its render, all off by default. "
        "They are listed with their sizes under `extra_files` in each object's `done.json`; "
        "the metrics never read them and the main renders are byte-identical with or without "
        "them. Asking for any changes the render fingerprint, so the next run renders the "
        "objects again and writes them (all off leaves the fingerprint as before); a deleted "
        "one makes its object unfinished")
    scale: float = setting(
        1.0, "renders, metrics and the report figure at this factor of the image size "
        "(published `--scale`): images resized by area to `floor(scale × size)` of "
        "`dataset.image_size` (else of the split's first object), focal and principal point "
        "scaled with them. Another value changes the render fingerprint. Not for `multi_obj`, "
        "which does not resize; videos keep their own size")

    @property
    def setting_names(self) -> list[str]:
        return list(self.settings)

    @property
    def approx_setting(self) -> str:
        """The view setting of the approximate evaluation."""
        if self.approx is not None and self.approx.setting:
            return self.approx.setting
        return self.setting_names[0]

    def render_split(self, approx: bool) -> str:
        """The split the render step reads: the approximate protocol's, or ``split``."""
        if approx and self.approx is not None and self.approx.split:
            return self.approx.split
        return self.split

    @classmethod
    def of_experiment(cls, experiment: Mapping[str, Any]) -> EvalConfig:
        """The ``eval`` section of a schema-validated experiment config."""
        return build(cls, section(experiment, "eval"), "eval")


# The fields' defaults, for the callers outside the evaluation that take the same values
# (benchmarks, metrics); a dataclass keeps a field's plain default as a class attribute.
DEFAULT_RAY_BATCH: int = EvalConfig.ray_batch
DEFAULT_LPIPS_BATCH_SIZE: int = EvalConfig.lpips_batch_size
