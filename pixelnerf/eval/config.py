"""The experiment's ``eval`` section as a typed, frozen value.

The JSON schema (``pixelnerf/schemas/experiment.schema.yaml``) has already checked every
key, type and range when a config reaches here; :meth:`EvalConfig.of_experiment` only
fills in the defaults, once, at the edge (a command or the Snakefile), and the library
receives the result instead of re-reading the raw mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pixelnerf.errors import PipelineError

# Rays per renderer call when eval.ray_batch is not set: the published eval.py's -R.
DEFAULT_RAY_BATCH = 50000
# Images per LPIPS call of the published calc_metrics.py.
DEFAULT_LPIPS_BATCH_SIZE = 32
DEFAULT_REPORT_OBJECTS = 3
DEFAULT_REPORT_VIEWS = 2
# The published eval.py renders with at least 64 coarse samples (n_coarse < 64 becomes 64).
PUBLISHED_MIN_COARSE_SAMPLES = 64


# The published eval_approx.py: every object of the val split, one random target view each,
# seeded 1234.
PUBLISHED_APPROX_SPLIT = "val"
PUBLISHED_APPROX_VIEWS = 1
PUBLISHED_APPROX_SEED = 1234


@dataclass(frozen=True)
class ApproxConfig:
    """``eval.approx``: objects sampled (None: every object), target views per object, seed,
    the view setting (None: the first of ``eval.settings``), the protocol (``sampled`` or
    ``published``) and the split rendered (None: ``eval.split``)."""

    objects: int | None
    views: int
    seed: int
    setting: str | None = None
    protocol: str = "sampled"
    split: str | None = None

    @classmethod
    def of_section(cls, approx: Mapping[str, Any]) -> ApproxConfig:
        """A schema-checked ``eval.approx`` mapping; ``protocol: published`` fixes the rest."""
        if approx.get("protocol") == "published":
            return cls(None, PUBLISHED_APPROX_VIEWS, PUBLISHED_APPROX_SEED, approx.get("setting"),
                       "published", PUBLISHED_APPROX_SPLIT)
        return cls(int(approx["objects"]), int(approx["views"]), int(approx["seed"]),
                   approx.get("setting"))


@dataclass(frozen=True)
class EvalOutputs:
    """``eval.outputs``: the extra files written per target view beside its render (all off
    by default; :mod:`pixelnerf.eval.extra_outputs`)."""

    depth: bool = False
    coarse: bool = False
    include_src: bool = False
    compare: bool = False

    @property
    def any(self) -> bool:
        return self.depth or self.coarse or self.include_src or self.compare

    @classmethod
    def of_section(cls, outputs: Mapping[str, Any] | None) -> EvalOutputs:
        outputs = outputs or {}
        return cls(**{key: bool(outputs.get(key, False)) for key in
                      ("depth", "coarse", "include_src", "compare")})


@dataclass(frozen=True)
class EvalConfig:
    """``eval``: the split evaluated, view settings (name -> raw source-view rule, parsed by
    :class:`pixelnerf.eval.protocol.Protocol`), targets and how objects are rendered, scored
    and shown. ``ray_batch`` is None when unset (:attr:`rays_per_call` is what is used)."""

    split: str
    settings: Mapping[str, Mapping[str, Any]]
    seed: int
    shards: int
    target_view_list: str | None = None
    target_exclude: tuple[int, ...] = ()
    reuse_first_object_cameras: bool = False
    ray_batch: int | None = None
    baselines: bool = False
    report_objects: int = DEFAULT_REPORT_OBJECTS
    report_views: int = DEFAULT_REPORT_VIEWS
    lpips_batch_size: int = DEFAULT_LPIPS_BATCH_SIZE
    table_rows: str | None = None
    approx: ApproxConfig | None = None
    min_coarse_samples: int | None = PUBLISHED_MIN_COARSE_SAMPLES
    outputs: EvalOutputs = EvalOutputs()
    scale: float = 1.0

    @property
    def rays_per_call(self) -> int:
        return self.ray_batch or DEFAULT_RAY_BATCH

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
        section = experiment.get("eval")
        if not isinstance(section, Mapping):
            raise PipelineError("experiment config has no 'eval' section")
        targets = section.get("targets") or {}
        approx = section.get("approx")
        return cls(
            split=str(section["split"]),
            settings={str(k): dict(v) for k, v in section["settings"].items()},
            seed=int(section["seed"]),
            shards=int(section["shards"]),
            target_view_list=targets.get("view_list"),
            target_exclude=tuple(int(v) for v in targets.get("exclude") or ()),
            reuse_first_object_cameras=bool(section.get("reuse_first_object_cameras", False)),
            ray_batch=section.get("ray_batch"),
            baselines=bool(section.get("baselines", False)),
            report_objects=int(section.get("report_objects", DEFAULT_REPORT_OBJECTS)),
            report_views=int(section.get("report_views", DEFAULT_REPORT_VIEWS)),
            lpips_batch_size=int(section.get("lpips_batch_size", DEFAULT_LPIPS_BATCH_SIZE)),
            table_rows=section.get("table_rows"),
            approx=None if not approx else ApproxConfig.of_section(approx),
            min_coarse_samples=section.get("min_coarse_samples", PUBLISHED_MIN_COARSE_SAMPLES),
            outputs=EvalOutputs.of_section(section.get("outputs")),
            scale=float(section.get("scale", 1.0)),
        )
