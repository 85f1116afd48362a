"""The sensitivity table: its rows, CSV and Markdown.

Columns: ``choice, variant, setting, n_objects, n_views`` (views scored per object: ``all``
or the sample's count), ``psnr, ssim, lpips`` (the variant's means over objects),
``ref_psnr, ref_ssim, ref_lpips`` (the reference's on the same objects and views), per
metric ``d_<m>, d_<m>_lo, d_<m>_hi`` (mean paired difference variant - reference and its
bootstrap interval), ``sd_<m>`` (spread over source draws: the standard deviation of the
draws' means, on the draws' summary row only), ``resamples, seed, note``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pixelnerf.eval.compare import effect_cells, effect_markdown
from pixelnerf.eval.metrics import METRICS
from pixelnerf.eval.paired import PairedEffect
from pixelnerf.eval.tables import MD_DECIMALS, format_number
from pixelnerf.io import atomic_write_text

REFERENCE = "reference"
ALL_VIEWS = "all"


@dataclass(frozen=True)
class SensitivityRow:
    choice: str
    variant: str
    setting: str
    n_objects: int
    n_views: str
    values: Mapping[str, float | None]
    reference: Mapping[str, float | None]
    effects: Mapping[str, PairedEffect | None]
    spread: Mapping[str, float | None] = field(default_factory=dict)
    note: str = ""


@dataclass
class SensitivityTable:
    experiment: str
    rows: list[SensitivityRow]
    resamples: int
    seed: int
    confidence: float
    notes: list[str] = field(default_factory=list)


def columns() -> list[str]:
    out = ["choice", "variant", "setting", "n_objects", "n_views", *METRICS]
    out += [f"ref_{m}" for m in METRICS]
    for metric in METRICS:
        out += [f"d_{metric}", f"d_{metric}_lo", f"d_{metric}_hi"]
    out += [f"sd_{m}" for m in METRICS]
    return out + ["resamples", "seed", "note"]



def csv_text(table: SensitivityTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns())
    for row in table.rows:
        cells: list[object] = [row.choice, row.variant, row.setting, row.n_objects, row.n_views]
        cells += [format_number(row.values.get(m)) for m in METRICS]
        cells += [format_number(row.reference.get(m)) for m in METRICS]
        for metric in METRICS:
            effect = row.effects.get(metric)
            cells += effect_cells(effect)
        cells += [format_number(row.spread.get(m)) for m in METRICS]
        cells += [table.resamples, table.seed, row.note]
        writer.writerow(cells)
    return buffer.getvalue()


def _value(value: float | None, metric: str) -> str:
    return "—" if value is None else f"{value:.{MD_DECIMALS[metric]}f}"


def markdown(table: SensitivityTable) -> str:
    header = ["choice", "variant", "setting", "objects × views", "PSNR", "SSIM", "LPIPS",
              "Δ PSNR", "Δ SSIM", "Δ LPIPS", "note"]
    lines = [f"# {table.experiment}: sensitivity to the evaluation protocol", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        label = f"**{row.choice}**" if row.choice == REFERENCE else row.choice
        cells = [label, row.variant, row.setting, f"{row.n_objects} × {row.n_views}"]
        cells += [_value(row.values.get(m), m) for m in METRICS]
        cells += [effect_markdown(row.effects.get(m), m) for m in METRICS]
        cells.append(row.note.replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Each row changes one choice of the reference (the experiment's own "
              "protocol, whose values are its table's total). Δ = variant − reference: the "
              "mean over objects of each object's difference, on the same objects and views; "
              f"in brackets the {table.confidence:.0%} percentile interval of a paired "
              f"bootstrap over objects ({table.resamples} resamples, seed {table.seed}). "
              "Rows that render again are scored on a seeded sample of target views per "
              "object (objects × views), the reference on the same views."]
    lines += table.notes
    return "\n".join(lines) + "\n"


def write(table: SensitivityTable, out_csv: str | os.PathLike, out_md: str | os.PathLike) -> None:
    atomic_write_text(out_csv, csv_text(table))
    atomic_write_text(out_md, markdown(table))

