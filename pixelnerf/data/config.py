"""The experiment's ``dataset`` section as a typed, frozen value.

Every key's default and meaning are written once, in its field here (``synth`` and ``split``
in :class:`pixelnerf.data.demo.SynthSettings` and :class:`pixelnerf.data.split.SplitSettings`);
the experiment schema has checked keys, types and ranges.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pixelnerf.config import REQUIRED, build, section, setting
from pixelnerf.data.demo import SynthSettings
from pixelnerf.data.split import SplitSettings
from pixelnerf.errors import PipelineError


@dataclass(frozen=True)
class DatasetConfig:
    """``dataset``: the reader, the folder and where it comes from."""

    format: Literal["dvr", "dvr_gen", "dvr_dtu", "srn", "multi_obj"] = setting(
        REQUIRED, "reader: `dvr` (NMR ShapeNet), `dvr_gen` (unseen categories), `dvr_dtu`, "
        "`srn`, `multi_obj` (spec section 3)")
    dir: str = setting(
        REQUIRED, "dataset folder under `data_root` (SRN: the prefix before `_train`/`_test`)")
    source: str = setting(
        REQUIRED, "key of `config/sources.yaml` that downloads it, or `synth-demo` (made by "
        "`pixelnerf synth-demo`)")
    list_prefix: str | None = setting(
        None, "split-list prefix (`softras_`, `gen_`, `new_`); null: the format's default")
    image_size: tuple[int, int] | None = setting(
        None, "null (the files' size) or `[H, W]` to resize")
    synth: SynthSettings | None = setting(
        None, "demo only: settings of `pixelnerf synth-demo`")
    split: SplitSettings | None = setting(
        None, "`dvr_gen` only: settings of `pixelnerf split` (spec section 6)")

    @classmethod
    def of_experiment(cls, experiment: Mapping[str, Any]) -> DatasetConfig:
        """The ``dataset`` section of a schema-validated experiment config."""
        return build(cls, section(experiment, "dataset"), "dataset")

    def split_settings(self) -> SplitSettings:
        """``split`` as :func:`pixelnerf.data.split.make_split` takes it: the lists it writes get
        the prefix this dataset's reader reads (``list_prefix`` for ``dvr_gen``)."""
        if self.split is None:
            raise PipelineError("experiment config has no 'dataset.split' section")
        settings = self.split
        if self.format == "dvr_gen" and self.list_prefix:
            settings = dataclasses.replace(settings, list_prefix=self.list_prefix)
        if settings.list_prefix == settings.source_prefix:
            raise PipelineError(f"dataset.list_prefix must not be {settings.source_prefix!r}: "
                                "the split would overwrite its own source lists")
        return settings

    def open(self, data_root: str | os.PathLike, split: str, **extra: Any) -> Any:
        """Split ``split`` of the dataset under ``data_root`` as a torch Dataset of object
        dicts (:func:`pixelnerf.data.open_dataset`); ``extra`` are reader options."""
        from pixelnerf.data import open_dataset

        options: dict[str, Any] = dict(extra)
        if self.list_prefix:
            options["list_prefix"] = self.list_prefix
        return open_dataset(self.format, Path(data_root) / self.dir, split,
                            image_size=self.image_size, **options)
