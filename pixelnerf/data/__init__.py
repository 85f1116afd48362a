"""Dataset readers, one per published format, behind one entry point.

``open_dataset(fmt, root, split, image_size=None, **options)`` returns a
``torch.utils.data.Dataset`` whose items are dicts with ``images (NV,3,H,W)`` in [-1, 1],
``poses (NV,4,4)`` (camera-to-world, renderer axes), ``focal`` (scalar tensor, or ``(2,)`` =
(fx, fy) for DTU), ``masks (NV,1,H,W)`` and ``bbox (NV,4)`` where the format has them,
``c (2,)`` where it has a principal point, and ``path``, ``img_id``, ``object_id``,
``category``, ``z_near``, ``z_far``. Readers never render.
"""

from __future__ import annotations

import os
from typing import Any

from pixelnerf.data.common import ObjectDataset
from pixelnerf.errors import PipelineError

FORMATS = ("dvr", "dvr_gen", "dvr_dtu", "srn", "multi_obj")
# List-file prefix per DVR-layout format (the published defaults).
LIST_PREFIX = {"dvr": "softras_", "dvr_gen": "gen_", "dvr_dtu": "new_"}
# Splits a format may have; validation visits those that exist.
SPLITS = ("train", "val", "test")


def open_dataset(
    fmt: str,
    root: str | os.PathLike,
    split: str,
    image_size: tuple[int, int] | list[int] | None = None,
    **options: Any,
) -> ObjectDataset:
    """Open split ``split`` of the dataset at ``root`` in format ``fmt``.

    ``image_size`` = (H, W) resizes by area (focal, principal point and bbox scaled by the
    height ratio); None keeps the files' size. Options per format (all optional):
    dvr/dvr_gen: list_prefix, z_near, z_far, max_views, seed, strict;
    dvr_dtu: the same plus category (default "scan");
    srn: world_scale, z_near, z_far, category (default "chair"/"car" from the root's name), strict;
    multi_obj: z_near, z_far, category (default "chair"), strict.
    Every format also takes ``strict`` (False keeps listing problems for ``problems()``
    instead of raising) and ``cache`` (True keeps items in memory after their first read;
    not with max_views).
    """
    if split not in SPLITS:
        raise PipelineError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if fmt in ("dvr", "dvr_gen"):
        from pixelnerf.data.dvr import DVRDataset

        options.setdefault("list_prefix", LIST_PREFIX[fmt])
        return DVRDataset(root, split, image_size=image_size, **_checked(fmt, options, DVRDataset))
    if fmt == "dvr_dtu":
        from pixelnerf.data.dtu import DTUDataset

        options.setdefault("list_prefix", LIST_PREFIX[fmt])
        return DTUDataset(root, split, image_size=image_size, **_checked(fmt, options, DTUDataset))
    if fmt == "srn":
        from pixelnerf.data.srn import SRNDataset

        return SRNDataset(root, split, image_size=image_size, **_checked(fmt, options, SRNDataset))
    if fmt == "multi_obj":
        from pixelnerf.data.multi_obj import MultiObjectDataset

        if image_size is not None:
            raise PipelineError("format multi_obj does not resize images; set image_size: null")
        return MultiObjectDataset(root, split, **_checked(fmt, options, MultiObjectDataset))
    raise PipelineError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _checked(fmt: str, options: dict[str, Any], reader: type) -> dict[str, Any]:
    """Reject options the reader does not take, naming them (a typo in a config)."""
    import inspect

    accepted = set(inspect.signature(reader.__init__).parameters) - {"self", "root", "split"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise PipelineError(f"format {fmt} has no option(s) {', '.join(unknown)}; "
                            f"accepted: {', '.join(sorted(accepted - {'image_size'}))}")
    return options


__all__ = ["FORMATS", "LIST_PREFIX", "SPLITS", "ObjectDataset", "open_dataset"]
