"""The ``real`` section of an experiment config (the model that renders real photos: srn_car).

Every key is optional; the defaults are those of the published preprocessing
(``scripts/preproc.py``) and ``eval/eval_real.py``:
- ``size`` (128): side of the normalised square input image, in pixels.
- ``minor_scale`` (4.37), ``major_scale`` (0.8): the crop's side is the larger of the minor
  axis times ``minor_scale`` and the major axis times ``major_scale`` of the ellipse fitted to
  the car's mask, centred on the ellipse; this fixes the car's size relative to the frame.
- ``focal`` (131.25 px at ``size``), ``radius`` (1.3), ``z_near`` (0.8), ``z_far`` (1.8): the
  assumed camera of the photo (looking at the origin from ``radius``) and the ray bounds.
- ``elevation`` (0 degrees, negative above), ``frames`` (24), ``fps`` (15), ``quality`` (8):
  the turntable video, starting at the photo's viewpoint.
- ``stills`` (4): turntable frames, evenly spaced, also written as PNG images.
- ``score_threshold`` (0.5), ``mask_threshold`` (0.5): Mask R-CNN detection score and mask
  probability a car pixel needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pixelnerf.errors import PipelineError


@dataclass(frozen=True)
class RealSettings:
    size: int = 128
    minor_scale: float = 4.37
    major_scale: float = 0.8
    focal: float = 131.25
    radius: float = 1.3
    z_near: float = 0.8
    z_far: float = 1.8
    elevation: float = 0.0
    frames: int = 24
    fps: float = 15.0
    quality: float = 8.0
    stills: int = 4
    score_threshold: float = 0.5
    mask_threshold: float = 0.5

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> RealSettings:
        """Read a schema-checked ``real`` mapping (None: the defaults); only what the schema
        cannot say is checked here."""
        settings = cls(**dict(cfg or {}))
        settings.check()
        return settings

    @classmethod
    def of_experiment(cls, experiment: Mapping[str, Any]) -> RealSettings:
        return cls.from_mapping(experiment.get("real"))

    def check(self) -> None:
        if self.stills > self.frames:
            raise PipelineError(f"real.stills must be an integer in [0, real.frames], "
                                f"not {self.stills!r}")
        if not 0 < self.z_near < self.z_far:
            raise PipelineError(f"real: want 0 < z_near < z_far, not {self.z_near}, {self.z_far}")
