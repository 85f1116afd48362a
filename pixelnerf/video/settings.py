"""The ``video`` section of an experiment config, every key optional with the published default.

Keys (``config/README.md`` documents them for users):
- ``path``: ``auto`` (``dtu_spline`` for the ``dvr_dtu`` format, else ``loop``), ``loop`` or
  ``dtu_spline``.
- ``frames`` (40), ``fps`` (30), ``quality`` (8, imageio-ffmpeg's 0-10 scale): the published
  gen_video defaults.
- ``elevation`` (-10 degrees, negative above) and ``radius`` (null: the mean of the dataset's
  z_near and z_far): the loop.
- ``spline_distance`` (2.0): the camera distance on the DTU spline.
- ``sources``: null (the views of the first setting of ``eval.settings``), a setting name, or a
  list of view indices.
- ``split``: null (``eval.split``) or train | val | test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VideoSettings:
    path: str = "auto"
    frames: int = 40
    fps: float = 30.0
    quality: float = 8.0
    elevation: float = -10.0
    radius: float | None = None
    spline_distance: float = 2.0
    sources: str | tuple[int, ...] | None = None
    split: str | None = None

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> VideoSettings:
        """Read a schema-checked ``video`` mapping (None: the defaults)."""
        cfg = dict(cfg or {})
        if isinstance(cfg.get("sources"), list):
            cfg["sources"] = tuple(cfg["sources"])
        return cls(**cfg)

    @classmethod
    def of_experiment(cls, experiment: Mapping[str, Any]) -> VideoSettings:
        return cls.from_mapping(experiment.get("video"))

    def path_kind(self, dataset_format: str) -> str:
        """``loop`` or ``dtu_spline`` for an experiment whose dataset has ``dataset_format``."""
        if self.path != "auto":
            return self.path
        return "dtu_spline" if dataset_format == "dvr_dtu" else "loop"
