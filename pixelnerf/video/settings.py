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

from pixelnerf.errors import PipelineError

PATHS = ("auto", "loop", "dtu_spline")
SPLITS = ("train", "val", "test")


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
        """Check and read a ``video`` mapping; a bad key or value is one error line."""
        cfg = dict(cfg or {})
        sources = cfg.get("sources")
        if isinstance(sources, (list, tuple)):
            if not sources or not all(isinstance(v, int) and v >= 0 for v in sources):
                raise PipelineError(f"video.sources: want a setting name or a list of view "
                                    f"indices, not {sources!r}")
            cfg["sources"] = tuple(sources)
        elif sources is not None and not isinstance(sources, str):
            raise PipelineError(f"video.sources: want a setting name or a list of view indices, "
                                f"not {sources!r}")
        settings = cls(**cfg)
        settings.check()
        return settings

    @classmethod
    def of_experiment(cls, experiment: Mapping[str, Any]) -> VideoSettings:
        return cls.from_mapping(experiment.get("video"))

    def check(self) -> None:
        if self.path not in PATHS:
            raise PipelineError(f"video.path must be one of {', '.join(PATHS)}, not {self.path!r}")
        if not isinstance(self.frames, int) or self.frames < 1:
            raise PipelineError(f"video.frames must be a positive integer, not {self.frames!r}")
        for key in ("fps", "spline_distance"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or value <= 0:
                raise PipelineError(f"video.{key} must be a positive number, not {value!r}")
        if self.radius is not None and (not isinstance(self.radius, (int, float))
                                        or self.radius <= 0):
            raise PipelineError(f"video.radius must be null or positive, not {self.radius!r}")
        if not isinstance(self.quality, (int, float)) or not 0 <= self.quality <= 10:
            raise PipelineError(f"video.quality must be in [0, 10], not {self.quality!r}")
        if not isinstance(self.elevation, (int, float)) or not -90 < self.elevation < 90:
            raise PipelineError(f"video.elevation must be in (-90, 90) degrees, "
                                f"not {self.elevation!r}")
        if self.split is not None and self.split not in SPLITS:
            raise PipelineError(f"video.split must be null or one of {', '.join(SPLITS)}, "
                                f"not {self.split!r}")

    def path_kind(self, dataset_format: str) -> str:
        """``loop`` or ``dtu_spline`` for an experiment whose dataset has ``dataset_format``."""
        if self.path != "auto":
            return self.path
        return "dtu_spline" if dataset_format == "dvr_dtu" else "loop"
