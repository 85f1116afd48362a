"""The ``real`` section of an experiment config (the model that renders real photos: srn_car),
every key optional; each key's default (the published preprocessing's, ``scripts/preproc.py``,
and ``eval/eval_real.py``'s) and meaning are written once, in its field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pixelnerf.config import build, optional_section, setting
from pixelnerf.errors import PipelineError


@dataclass(frozen=True)
class RealSettings:
    """``real``: real car photos through this experiment's model."""

    size: int = setting(128, "side of the normalised square input image, in pixels")
    minor_scale: float = setting(
        4.37, "the crop's side is the larger of the minor axis times `minor_scale` and the "
        "major axis times `major_scale` of the ellipse fitted to the car's mask, centred on "
        "the ellipse (the published normalisation); this fixes the car's size in the frame")
    major_scale: float = setting(0.8, "see `minor_scale`")
    focal: float = setting(
        131.25, "focal length in pixels at `size` of the assumed camera of the photo (SRN cars)")
    radius: float = setting(
        1.3, "distance of the assumed camera from the origin, which it looks at")
    z_near: float = setting(0.8, "near bound of the rays")
    z_far: float = setting(1.8, "far bound of the rays")
    elevation: float = setting(
        0.0, "turntable elevation in degrees (negative above), starting at the photo's "
        "viewpoint")
    frames: int = setting(24, "frames of the turntable video")
    fps: float = setting(15.0, "frames per second of the turntable video")
    quality: float = setting(8.0, "imageio-ffmpeg quality of the turntable video, 0-10")
    stills: int = setting(
        4, "turntable frames, evenly spaced, also written as PNG images (at most `frames`)")
    score_threshold: float = setting(0.5, "Mask R-CNN detection score a car needs")
    mask_threshold: float = setting(0.5, "Mask R-CNN mask probability a car pixel needs")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> RealSettings:
        """A schema-checked ``real`` mapping (None: the defaults)."""
        return build(cls, cfg, "real")

    @classmethod
    def of_experiment(cls, experiment: Mapping[str, Any]) -> RealSettings:
        """The ``real`` section of an experiment config (absent: the defaults)."""
        return cls.from_mapping(optional_section(experiment, "real"))

    def check(self, origin: str = "real") -> None:
        """What the schema cannot say: one field against another."""
        if self.stills > self.frames:
            raise PipelineError(f"{origin}.stills must be an integer in [0, {origin}.frames], "
                                f"not {self.stills!r}")
        if not 0 < self.z_near < self.z_far:
            raise PipelineError(f"{origin}: want 0 < z_near < z_far, not {self.z_near}, "
                                f"{self.z_far}")
