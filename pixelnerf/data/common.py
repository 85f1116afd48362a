"""What every reader shares: image and list reading, tensor conversion, bounding boxes, and
the lazily loading base dataset with a one-pass validator.

Call chain: ObjectDataset.__getitem__ -> open_object -> choose_views -> load_view (per view
drawn) -> assemble; with a cache: decode (every view, once) then build (choose_views ->
assemble, each access); ObjectDataset.problems -> the same calls, collecting every error
instead of stopping.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pixelnerf.errors import PipelineError

IMAGE_SUFFIXES = (".png", ".jpg")


@dataclass(frozen=True)
class ObjectEntry:
    """One object of a split: its folder, its id ('/'-separated, relative to the dataset
    root, or to the split folder for formats whose splits are folders) and its category."""

    path: Path
    object_id: str
    category: str


@dataclass
class ObjectContext:
    """What a reader learned from an object's own files before reading its views:
    ``views`` lists one opaque record per view; ``data`` holds object-level values."""

    views: list[Any]
    data: dict[str, Any] = field(default_factory=dict)


def read_image(path: Path) -> np.ndarray:
    """Read an image file as uint8 ``(H, W)`` or ``(H, W, C)``; any failure names the file."""
    import imageio.v3 as iio

    if not path.is_file():
        raise PipelineError(f"missing image {path}")
    try:
        # Pillow reads PNG and JPEG; naming it keeps a corrupt file from being offered to
        # every other plugin imageio has.
        image = np.asarray(iio.imread(path, plugin="pillow"))
    except Exception as exc:  # imageio raises many types for corrupt files
        raise PipelineError(f"cannot read image {path}: {type(exc).__name__}") from exc
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        raise PipelineError(f"image {path} is not an 8-bit image (dtype {image.dtype}, "
                            f"shape {image.shape})")
    return image


def read_rgb(path: Path) -> np.ndarray:
    """Read an RGB(A) image and keep its first three channels: uint8 ``(H, W, 3)``."""
    image = read_image(path)
    if image.ndim != 3 or image.shape[2] < 3:
        raise PipelineError(f"image {path} is not RGB (shape {image.shape})")
    return image[..., :3]


def read_mask(path: Path) -> np.ndarray:
    """Read a mask image and keep its first channel: uint8 ``(H, W, 1)``."""
    image = read_image(path)
    return image[..., None] if image.ndim == 2 else image[..., :1]


def read_list(path: Path) -> list[str]:
    """The object names of a split list file, one per line; blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"cannot read list file {path}: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read eagerly so a corrupt file fails here."""
    if not path.is_file():
        raise PipelineError(f"missing camera file {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise PipelineError(f"cannot read {path}: {exc}") from exc


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing or malformed file is one error line naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PipelineError(f"cannot read JSON file {path}: {exc}") from exc


def image_files(folder: Path) -> list[Path]:
    """Image files (``.png``/``.jpg``) of a folder in sorted order; none if it is absent."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in IMAGE_SUFFIXES)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> float ``(3, H, W)`` in [-1, 1], the published normalisation
    (``x / 255``, then ``(x - 0.5) / 0.5``, in float32, so values match bit for bit)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255)
    return (tensor - 0.5) / 0.5


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W)`` or ``(H, W, 1)`` -> float ``(1, H, W)`` in [0, 1]."""
    if mask.ndim == 2:
        mask = mask[..., None]
    return torch.from_numpy(np.ascontiguousarray(mask)).permute(2, 0, 1).float().div(255)


def nonzero_bbox(mask: np.ndarray) -> torch.Tensor | None:
    """Inclusive box ``(4,)`` = (cmin, rmin, cmax, rmax) of the pixels where any channel of
    ``mask`` ``(H, W[, C])`` is nonzero; None when there is none."""
    mask = mask if mask.ndim == 3 else mask[..., None]
    rows = np.flatnonzero(mask.any(axis=(1, 2)))
    cols = np.flatnonzero(mask.any(axis=(0, 2)))
    if rows.size == 0:
        return None
    return torch.tensor([cols[0], rows[0], cols[-1], rows[-1]], dtype=torch.float32)


def stack_images(entry: ObjectEntry, views: list[dict[str, Any]]) -> torch.Tensor:
    """Stack the views' ``image`` tensors ``(3, H, W)`` -> ``(NV, 3, H, W)``; images of
    different sizes within one object are an error naming the object."""
    shapes = sorted({tuple(v["image"].shape) for v in views})
    if len(shapes) != 1:
        raise PipelineError(f"object {entry.path} has images of different sizes {shapes}")
    return torch.stack([v["image"] for v in views])


def resize_area(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area resampling ``(N, C, H, W)`` -> ``(N, C, *size)``, as the published readers do."""
    return F.interpolate(tensor, size=size, mode="area")


def as_size(image_size: Sequence[int] | int | None) -> tuple[int, int] | None:
    """Normalise an ``image_size`` option to ``(H, W)`` or None."""
    if image_size is None:
        return None
    if isinstance(image_size, int):
        return (image_size, image_size)
    values = tuple(int(v) for v in image_size)
    if len(values) != 2 or min(values) <= 0:
        raise PipelineError(f"image_size must be null or [H, W] with positive sizes, "
                            f"not {image_size}")
    return values  # type: ignore[return-value]


@dataclass
class DecodedObject:
    """Every view of one object decoded (``load_view`` records), before a subset is drawn
    and assembled: what a cache keeps, so each access can draw its own subset."""

    index: int
    entry: ObjectEntry
    context: ObjectContext
    views: list[Any]

    def nbytes(self) -> int:
        """Bytes held by the tensors of the decoded views."""
        return sum(v.numel() * v.element_size() for view in self.views
                   if isinstance(view, dict) for v in view.values()
                   if isinstance(v, torch.Tensor))


class ObjectDataset(torch.utils.data.Dataset):
    """A split of a dataset: a list of objects, each read lazily as one item (a dict).

    Subclasses set ``entries``, ``z_near`` and ``z_far`` and implement
    ``open_object``, ``load_view`` and ``assemble``; one that reads a subset of the views
    overrides ``choose_views``, which is called at every access. Problems found while
    listing objects (e.g. a list naming a missing folder) are raised at once when
    ``strict``, else kept for :meth:`problems`, which also reads every view of every object.
    """

    z_near: float
    z_far: float

    def __init__(self, entries: list[ObjectEntry], list_problems: list[str], strict: bool,
                 cache: bool = False) -> None:
        super().__init__()
        if strict and list_problems:
            raise PipelineError(list_problems[0])
        self.entries = entries
        self.list_problems = list_problems
        # Objects kept decoded after their first read (small datasets read many times, e.g.
        # the demo trained on a CPU, where decoding the PNGs would dominate each step).
        self.cache: dict[int, DecodedObject] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.entries)

    def open_object(self, entry: ObjectEntry) -> ObjectContext:
        raise NotImplementedError

    def load_view(self, entry: ObjectEntry, context: ObjectContext, view: Any) -> Any:
        raise NotImplementedError

    def assemble(self, entry: ObjectEntry, context: ObjectContext, views: list[Any]) -> dict:
        raise NotImplementedError

    def view_count(self, index: int) -> int:
        """The number of views of object ``index``, from its listing (no image decoded)."""
        return len(self.open_object(self.entries[index]).views)

    def choose_views(self, n_views: int) -> list[int]:
        """Positions of the views an access reads among the object's ``n_views``: all."""
        return list(range(n_views))

    def decode(self, index: int) -> DecodedObject:
        """Every view of object ``index`` decoded (for a cache; see :meth:`build`)."""
        if not 0 <= index < len(self.entries):
            raise IndexError(index)
        entry = self.entries[index]
        context = self.open_object(entry)
        views = [self.load_view(entry, context, view) for view in context.views]
        return DecodedObject(index, entry, context, views)

    def build(self, decoded: DecodedObject) -> dict[str, Any]:
        """The item of a decoded object: its views drawn by :meth:`choose_views` (new at
        every call), assembled into new tensors, so the decoded views are never changed."""
        chosen = self.choose_views(len(decoded.views))
        return self._item(decoded.index, decoded.entry, decoded.context,
                          [decoded.views[i] for i in chosen])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.entries):
            raise IndexError(index)
        if self.cache is not None:
            if index not in self.cache:
                self.cache[index] = self.decode(index)
            return self.build(self.cache[index])
        # Uncached: draw first, then decode only the views drawn.
        entry = self.entries[index]
        context = self.open_object(entry)
        chosen = self.choose_views(len(context.views))
        views = [self.load_view(entry, context, context.views[i]) for i in chosen]
        return self._item(index, entry, context, views)

    def _item(self, index: int, entry: ObjectEntry, context: ObjectContext,
              views: list[Any]) -> dict[str, Any]:
        item = self.assemble(entry, context, views)
        item.update(
            path=str(entry.path),
            img_id=index,
            object_id=entry.object_id,
            category=entry.category,
            z_near=float(self.z_near),
            z_far=float(self.z_far),
        )
        return item

    def problems(self) -> list[str]:
        """Every problem of this split, one line each: listing problems, then per object
        its object-level file, each bad view, and whatever stops assembling it."""
        found = list(self.list_problems)
        for entry in self.entries:
            try:
                context = self.open_object(entry)
            except PipelineError as exc:
                found.append(str(exc))
                continue
            views, bad = [], False
            for view in context.views:
                try:
                    views.append(self.load_view(entry, context, view))
                except PipelineError as exc:
                    found.append(str(exc))
                    bad = True
            if not bad:
                try:
                    self.assemble(entry, context, views)
                except PipelineError as exc:
                    found.append(str(exc))
        return found
