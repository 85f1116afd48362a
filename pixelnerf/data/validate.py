"""``pixelnerf validate-data FMT ROOT``: list every bad file of a dataset in one pass.

Every split the dataset has is opened without stopping at the first problem; each object
is read view by view, and each problem (missing or unreadable image, a cameras.npz without
a view's matrix, a list naming a missing object, an empty mask, ...) is printed on its own
line. Exit status 0 when clean, 1 when any problem was found.
Call chain: find_problems -> open_dataset(..., strict=False).problems().
"""

from __future__ import annotations

import os
from pathlib import Path

from pixelnerf.data import FORMATS, SPLITS, open_dataset
from pixelnerf.errors import PipelineError


def _split_exists(fmt: str, root: Path, split: str, list_prefix: str | None) -> bool:
    """Whether ``split`` exists on disk for this format (so absent splits are not errors)."""
    if fmt == "srn":
        from pixelnerf.data.srn import split_folder

        return split_folder(root, split).is_dir()
    if fmt == "multi_obj":
        return (root / split).is_dir()
    from pixelnerf.data import LIST_PREFIX

    prefix = list_prefix if list_prefix is not None else LIST_PREFIX[fmt]
    return any((d / f"{prefix}{split}.lst").is_file() for d in root.iterdir() if d.is_dir())


def find_problems(fmt: str, root: str | os.PathLike, list_prefix: str | None = None
                  ) -> tuple[list[str], int]:
    """Problems of every existing split of the dataset, each reported once, and the number
    of splits checked. A dataset with no split at all is itself a problem."""
    root = Path(root)
    if fmt not in FORMATS:
        raise PipelineError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt != "srn" and not root.is_dir():
        raise PipelineError(f"dataset folder {root} does not exist")
    options = {"strict": False}
    if list_prefix is not None and fmt in ("dvr", "dvr_gen", "dvr_dtu"):
        options["list_prefix"] = list_prefix
    problems: list[str] = []
    checked = 0
    for split in SPLITS:
        if not _split_exists(fmt, root, split, list_prefix):
            continue
        checked += 1
        dataset = open_dataset(fmt, root, split, **options)
        for problem in dataset.problems():
            if problem not in problems:  # an object listed in val and test is reported once
                problems.append(problem)
    if checked == 0:
        problems.append(f"dataset {root} has no split ({', '.join(SPLITS)}) in format {fmt}")
    return problems, checked
