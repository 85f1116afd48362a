"""The ``video`` section of an experiment config (``pixelnerf video``), every key optional;
each key's default (the published gen_video's where it has one) and meaning are written once,
in its field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pixelnerf.config import build, optional_section, setting


@dataclass(frozen=True)
class VideoSettings:
    """``video``: videos along the published camera paths."""

    path: Literal["auto", "loop", "dtu_spline"] = setting(
        "auto", "`loop` (360-degree loop at a fixed elevation), `dtu_spline` (closed spline "
        "through the five published DTU key orientations), `auto` = `dtu_spline` for "
        "`dvr_dtu`, else `loop`")
    frames: int = setting(40, "frames of the video (published gen_video)")
    fps: float = setting(30.0, "frames per second")
    quality: float = setting(8.0, "imageio-ffmpeg quality, 0-10")
    elevation: float = setting(
        -10.0, "loop elevation in degrees; negative is above, as published")
    radius: float | None = setting(
        None, "loop radius; null = the mean of the dataset's near and far")
    spline_distance: float = setting(2.0, "camera distance on the DTU spline")
    sources: str | tuple[int, ...] | None = setting(
        None, "source views: null = those of the first `eval.settings` entry, a setting "
        "name, or a list of view indices")
    split: Literal["train", "val", "test"] | None = setting(
        None, "split the object comes from; null = `eval.split`")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> VideoSettings:
        """A schema-checked ``video`` mapping (None: the defaults)."""
        return build(cls, cfg, "video")

    @classmethod
    def of_experiment(cls, experiment: Mapping[str, Any]) -> VideoSettings:
        """The ``video`` section of an experiment config (absent: the defaults)."""
        return cls.from_mapping(optional_section(experiment, "video"))

    def path_kind(self, dataset_format: str) -> str:
        """``loop`` or ``dtu_spline`` for an experiment whose dataset has ``dataset_format``."""
        if self.path != "auto":
            return self.path
        return "dtu_spline" if dataset_format == "dvr_dtu" else "loop"
