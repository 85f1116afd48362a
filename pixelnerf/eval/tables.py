"""The paper's tables: reduce per-object metrics, set them beside the published numbers.

Call chain: ``build_table -> reduce_rows, attach_paper``; then ``table_csv_text`` and
``table_markdown`` (and ``pixelnerf.report.plots.plot_table``) write the outputs.

Reduction: an object's numbers are already means over its target views
(pixelnerf.eval.object_scores); a row of the table (a category, or a view setting) is the mean
over its objects; ``total`` is the mean over all objects, never a mean of row means.
Baseline rows (category ``baseline:...``) are reduced the same way but kept apart and
never counted in ``total``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.metrics import METRICS
from pixelnerf.eval.object_scores import ObjectRow, csv_reader
from pixelnerf.io import atomic_write_text

PAPER_COLUMNS = ("setting", "category", "psnr", "ssim", "lpips", "n_objects", "status", "source")
PAPER_STATUSES = ("confirmed", "quoted", "unconfirmed")
TOTAL = "total"
GROUP_BY = ("category", "setting")

# Default row key per dataset format when the config has no ``eval.table_rows``: the
# ShapeNet tables are per category, the SRN, DTU and two-chair tables per view setting.
DEFAULT_GROUP_BY = {"dvr": "category", "dvr_gen": "category", "dvr_dtu": "setting",
                    "srn": "setting", "multi_obj": "setting"}

# Decimals: the table CSV keeps the precision of the published all_metrics.txt; the
# Markdown shows what the paper prints.
CSV_DECIMALS = 6
MD_DECIMALS = {"psnr": 2, "ssim": 3, "lpips": 3}
UNCONFIRMED_MARK = "†"


@dataclass(frozen=True)
class PaperRow:
    """One published number set (config/paper/<exp>.csv)."""

    setting: str
    category: str
    psnr: float | None
    ssim: float | None
    lpips: float | None
    n_objects: int | None
    status: str
    source: str

    def value(self, metric: str) -> float | None:
        return getattr(self, metric)


@dataclass
class TableRow:
    """One line of the table: our means over ``n_objects`` objects, the paper's beside them.

    ``kind`` is ``group`` (a category or view setting), ``total`` or ``baseline``. A metric
    is None where no object has it (LPIPS without weights) or where it is undefined.
    """

    label: str
    kind: str
    n_objects: int
    setting: str | None
    ours: dict[str, float | None]
    paper: PaperRow | None = None
    lpips_trunk: str = ""  # the trunk origins of the row's LPIPS values, '+'-joined

    def diff(self, metric: str) -> float | None:
        mine = self.ours.get(metric)
        theirs = self.paper.value(metric) if self.paper else None
        return None if mine is None or theirs is None else mine - theirs


@dataclass
class Table:
    """The reduced table plus what its notes must say."""

    experiment: str
    group_by: str
    rows: list[TableRow]
    cameras: str | None = None  # "own" | "first_object" for DTU, else None
    notes: list[str] = field(default_factory=list)
    unmatched_paper: list[PaperRow] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Reading the published numbers
# ---------------------------------------------------------------------------------------


def read_paper(path: str | os.PathLike) -> list[PaperRow]:
    """Read config/paper/<exp>.csv; every number must carry a status and a source."""
    path = Path(path)
    reader = csv_reader(path, PAPER_COLUMNS, "paper numbers")
    rows, seen = [], set()
    for record in reader:
        line = reader.line_num
        values: dict[str, float | None] = {}
        for metric in METRICS:
            cell = record[metric].strip()
            try:
                values[metric] = float(cell) if cell else None
            except ValueError:
                raise PipelineError(f"{path} line {line}: {metric} is not a number") from None
        n_cell = record["n_objects"].strip()
        if n_cell and not n_cell.isdigit():
            raise PipelineError(f"{path} line {line}: n_objects is not an integer")
        if record["status"] not in PAPER_STATUSES:
            raise PipelineError(f"{path} line {line}: status must be one of "
                                f"{', '.join(PAPER_STATUSES)}, not {record['status']!r}")
        if not record["source"].strip():
            raise PipelineError(f"{path} line {line}: every published number needs a source")
        key = (record["setting"], record["category"])
        if key in seen:
            raise PipelineError(f"{path} line {line}: {key[0]}/{key[1]} appears twice")
        seen.add(key)
        rows.append(PaperRow(record["setting"], record["category"], values["psnr"],
                             values["ssim"], values["lpips"], int(n_cell) if n_cell else None,
                             record["status"], record["source"].strip()))
    return rows


# ---------------------------------------------------------------------------------------
# Reduction
# ---------------------------------------------------------------------------------------


def natural_key(text: str) -> tuple:
    """Sort key putting ``2v`` before ``10v``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _mean(rows: Sequence[ObjectRow], metric: str) -> float | None:
    values = [getattr(row, metric) for row in rows]
    if not values or any(v is None for v in values):
        return None
    return math.fsum(values) / len(values)


def _trunks(rows: Sequence[ObjectRow]) -> str:
    """Where the LPIPS trunks of ``rows`` came from ('' where none has LPIPS)."""
    return "+".join(sorted({row.lpips_trunk for row in rows if row.lpips_trunk}))


def _means(rows: Sequence[ObjectRow]) -> dict[str, float | None]:
    return {metric: _mean(rows, metric) for metric in METRICS}


def check_unique(rows: Iterable[ObjectRow]) -> None:
    """An object may appear once per setting and category (shards must not overlap)."""
    seen = set()
    for row in rows:
        key = (row.setting, row.category if row.is_baseline else "", row.object_id)
        if key in seen:
            raise PipelineError(f"object {row.object_id} ({row.setting}, {row.category}) "
                                "appears in more than one metrics row")
        seen.add(key)


def reduce_rows(rows: Sequence[ObjectRow], group_by: str) -> list[TableRow]:
    """Object rows -> group rows (natural order), ``total``, then baseline rows.

    group_by: ``category`` (all objects must share one view setting) or ``setting``.
    Total: mean over every non-baseline object row; left empty when the rows pool several
    view settings, where a mean over objects would mix protocols.
    """
    if group_by not in GROUP_BY:
        raise PipelineError(f"eval.table_rows must be one of {', '.join(GROUP_BY)}, "
                            f"not {group_by!r}")
    check_unique(rows)
    ours = [row for row in rows if not row.is_baseline]
    baselines = [row for row in rows if row.is_baseline]
    if not ours:
        raise PipelineError("the metrics files hold no (non-baseline) object rows")
    settings = sorted({row.setting for row in ours}, key=natural_key)
    if group_by == "category" and len(settings) > 1:
        raise PipelineError(f"a per-category table needs one view setting, found "
                            f"{', '.join(settings)} (set eval.table_rows: setting)")
    single = len(settings) == 1

    groups: dict[str, list[ObjectRow]] = defaultdict(list)
    for row in ours:
        groups[getattr(row, group_by)].append(row)
    table = [
        TableRow(label, "group", len(members),
                 members[0].setting if group_by == "category" else label, _means(members),
                 lpips_trunk=_trunks(members))
        for label, members in sorted(groups.items(), key=lambda kv: natural_key(kv[0]))
    ]
    if single:
        table.append(TableRow(TOTAL, "total", len(ours), settings[0], _means(ours),
                              lpips_trunk=_trunks(ours)))
    else:
        distinct = len({row.object_id for row in ours})
        table.append(TableRow(TOTAL, "total", distinct, None, dict.fromkeys(METRICS)))

    base_groups: dict[tuple[str, str], list[ObjectRow]] = defaultdict(list)
    for row in baselines:
        base_groups[(row.category, row.setting)].append(row)
    base_settings = {setting for _, setting in base_groups}
    for (category, setting), members in sorted(
        base_groups.items(), key=lambda kv: (kv[0][0], natural_key(kv[0][1]))
    ):
        label = category if single and len(base_settings) == 1 else f"{category} ({setting})"
        table.append(TableRow(label, "baseline", len(members), setting, _means(members),
                              lpips_trunk=_trunks(members)))
    return table


def attach_paper(rows: list[TableRow], paper: Sequence[PaperRow], group_by: str) -> list[PaperRow]:
    """Put each published row beside ours; returns the published rows that have no match.

    Per category: the paper's (setting, category) goes beside our category row of that
    setting (``total`` beside ``total``). Per setting: the paper's (setting, ``total``)
    goes beside our row of that setting.
    """
    unmatched = []
    for published in paper:
        target = None
        for row in rows:
            if row.kind == "baseline":
                continue
            if group_by == "category":
                hit = row.label == published.category and row.setting == published.setting
            else:
                hit = (row.kind == "group" and published.category == TOTAL
                       and row.label == published.setting)
            if hit:
                target = row
                break
        if target is None:
            unmatched.append(published)
        else:
            target.paper = published
    return unmatched


def table_group_by(dataset_format: str, eval_config: EvalConfig) -> str:
    """``eval.table_rows`` when set, else the default of the dataset format."""
    if eval_config.table_rows is not None:
        return eval_config.table_rows
    if dataset_format not in DEFAULT_GROUP_BY:
        raise PipelineError(f"dataset.format {dataset_format!r} has no default table layout; "
                            "set eval.table_rows")
    return DEFAULT_GROUP_BY[dataset_format]


def table_cameras(dataset_format: str, eval_config: EvalConfig) -> str | None:
    """Whose cameras rendered each object: ``own`` or ``first_object``.

    Said by DTU tables always (the published DTU numbers used the first scan's cameras),
    by others only when the quirk is switched on; None means the table keeps quiet.
    """
    reused = eval_config.reuse_first_object_cameras
    if dataset_format != "dvr_dtu" and not reused:
        return None
    return "first_object" if reused else "own"


def build_table(experiment: str, dataset_format: str, eval_config: EvalConfig,
                rows: Sequence[ObjectRow], paper: Sequence[PaperRow]) -> Table:
    """Reduce ``rows`` as the experiment's config says and put the paper beside them."""
    group_by = table_group_by(dataset_format, eval_config)
    reduced = reduce_rows(rows, group_by)
    unmatched = attach_paper(reduced, paper, group_by)
    table = Table(experiment, group_by, reduced, table_cameras(dataset_format, eval_config),
                  unmatched_paper=unmatched)
    if all(row.ours["lpips"] is None for row in reduced):
        table.notes.append("LPIPS: not computed (VGG16 weights absent), column left empty.")
    elif any(row.ours["lpips"] is None for row in reduced if row.kind != "total"):
        table.notes.append("LPIPS: empty where some objects of the row were scored "
                           "without LPIPS weights.")
    trunks = sorted({t for row in reduced for t in row.lpips_trunk.split("+") if t})
    if trunks:
        table.notes.append(f"LPIPS trunk weights: {', '.join(trunks)} (column lpips_trunk; "
                           "docs/lpips.md says what each means).")
    if any(row.kind == "total" and row.ours["psnr"] is None for row in reduced):
        table.notes.append("total: left empty because the rows pool several view settings.")
    return table


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def csv_columns(table: Table) -> list[str]:
    columns = ["category", "n_objects", *METRICS, "lpips_trunk"]
    for metric in METRICS:
        columns += [f"paper_{metric}", f"diff_{metric}"]
    columns += ["paper_n_objects", "paper_status", "paper_source"]
    if table.cameras is not None:
        columns.append("cameras")
    return columns


def format_number(value: float | None, decimals: int = CSV_DECIMALS) -> str:
    """A table cell: ``decimals`` places, empty for a missing value. Every CSV this package
    writes uses it, so that a value shared by two files (the table's total and the
    sensitivity's reference row) is the same text in both."""
    return "" if value is None else f"{value:.{decimals}f}"


def table_csv_text(table: Table) -> str:
    """The table as CSV: first column ``category`` (a view setting in per-setting tables)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(csv_columns(table))
    for row in table.rows:
        cells = [row.label, row.n_objects]
        cells += [format_number(row.ours[m], CSV_DECIMALS) for m in METRICS]
        cells.append(row.lpips_trunk)
        for metric in METRICS:
            cells += [format_number(row.paper.value(metric) if row.paper else None, CSV_DECIMALS),
                      format_number(row.diff(metric), CSV_DECIMALS)]
        paper = row.paper
        cells += ["" if paper is None or paper.n_objects is None else paper.n_objects,
                  paper.status if paper else "", paper.source if paper else ""]
        if table.cameras is not None:
            cells.append(table.cameras)
        writer.writerow(cells)
    return buffer.getvalue()


def _md_value(value: float | None, metric: str, mark: str = "") -> str:
    return "—" if value is None else f"{value:.{MD_DECIMALS[metric]}f}{mark}"


def _md_diff(value: float | None, metric: str) -> str:
    return "—" if value is None else f"{value:+.{MD_DECIMALS[metric]}f}"


def table_markdown(table: Table) -> str:
    """The table as Markdown, ours | paper | difference per metric, with notes and sources."""
    first = "view setting" if table.group_by == "setting" else "category"
    header = [first, "objects"]
    for name in ("PSNR", "SSIM", "LPIPS"):
        header += [name, f"{name} paper", "Δ"]
    header.append("paper status")
    lines = [f"# {table.experiment}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    sources: list[str] = []
    for row in table.rows:
        paper = row.paper
        mark = UNCONFIRMED_MARK if paper is not None and paper.status == "unconfirmed" else ""
        count = str(row.n_objects)
        if paper is not None and paper.n_objects is not None:
            count += f" (paper {paper.n_objects})"
        cells = [f"**{row.label}**" if row.kind == "total" else row.label, count]
        for metric in METRICS:
            cells += [_md_value(row.ours[metric], metric),
                      _md_value(paper.value(metric) if paper else None, metric, mark),
                      _md_diff(row.diff(metric), metric)]
        cells.append(paper.status if paper else "")
        lines.append("| " + " | ".join(cells) + " |")
        if paper is not None:
            sources.append(f"- {row.label}: {paper.status}; {paper.source}")
    lines += ["", "Each object's value is the mean over its target views; a row is the mean "
              "over its objects; `total` is the mean over all objects (baselines excluded). "
              "Δ = ours − paper."]
    if any(row.paper is not None and row.paper.status == "unconfirmed" for row in table.rows):
        lines.append(f"{UNCONFIRMED_MARK} unconfirmed: attributed to the paper but not "
                     "verifiable; see the source.")
    if table.cameras is not None:
        lines.append("Cameras: " + (
            "every scan rendered with the first val scan's cameras "
            "(eval.reuse_first_object_cameras: true, the published eval.py quirk)."
            if table.cameras == "first_object"
            else "every scan rendered with its own cameras "
                 "(eval.reuse_first_object_cameras: false)."))
    lines += table.notes
    if sources:
        lines += ["", "Sources of the published numbers:", *sources]
    if table.unmatched_paper:
        lines += ["", "Published rows without a row of ours:"]
        lines += [f"- {p.setting} {p.category}: {p.status}; {p.source}"
                  for p in table.unmatched_paper]
    return "\n".join(lines) + "\n"


def write_table(table: Table, out_csv: str | os.PathLike, out_md: str | os.PathLike) -> None:
    """Write the CSV and the Markdown, each atomically (the plot: pixelnerf.report.plots)."""
    atomic_write_text(out_csv, table_csv_text(table))
    atomic_write_text(out_md, table_markdown(table))
