"""Paired comparison of two runs: per category and in total, the mean difference B - A of
each metric over the objects both scored, with a seeded paired bootstrap interval.

Call chain: ``load_run -> metrics_files, render_targets``; ``compare_runs -> pair_runs,
pixelnerf.eval.paired.paired_summary``; ``comparison_csv_text``, ``comparison_markdown``.

A run is an experiment's metrics folder ``<results>/<exp>/metrics`` (or any folder laid out
the same, ``<setting>/shard-k-of-K.csv``) or an explicit list of metrics CSVs. Objects are
paired by (view setting, category, object id); two objects pair only when they were scored
on the same views: the same number of target views, and the same target list where both
runs' render records (``done.json`` in the ``render`` folder beside ``metrics``) are there.
Baseline rows never count. Where the two runs' sets differ, the comparison stops with one
line naming how many objects are in common, unless asked for the common part.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pixelnerf.errors import PipelineError
from pixelnerf.eval.metrics import METRICS
from pixelnerf.eval.object_scores import ObjectRow, read_rows
from pixelnerf.eval.paired import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    PairedEffect,
    paired_summary,
)
from pixelnerf.eval.records import DONE_FILE
from pixelnerf.eval.tables import MD_DECIMALS, TOTAL, check_unique, format_number, natural_key
from pixelnerf.io import atomic_write_text

EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9_]+")
SHARD_FILE = re.compile(r"shard-(\d+)-of-(\d+)\.csv")
METRICS_FOLDER = "metrics"
RENDER_FOLDER = "render"

# (setting, category, object id)
ObjectKey = tuple[str, str, str]


@dataclass
class Run:
    """One side of a comparison: its label, object rows by key and, where the render
    records are found, each object's target views."""

    label: str
    rows: dict[ObjectKey, ObjectRow]
    targets: dict[ObjectKey, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ComparisonRow:
    """One group (a category of a setting, or a setting's total): its objects' mean of
    A and of B per metric, and the paired effect of B - A (None where a metric is absent)."""

    setting: str
    label: str
    n_objects: int
    mean_a: dict[str, float | None]
    mean_b: dict[str, float | None]
    effects: dict[str, PairedEffect | None]


@dataclass
class Comparison:
    label_a: str
    label_b: str
    rows: list[ComparisonRow]
    resamples: int
    seed: int
    confidence: float
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Reading a run
# ---------------------------------------------------------------------------------------


def metrics_files(folder: Path) -> list[Path]:
    """The shard CSVs ``<folder>/<setting>/shard-k-of-K.csv``, one shard count per setting."""
    files = []
    for setting in sorted(p for p in folder.iterdir() if p.is_dir()):
        shards = sorted(p for p in setting.iterdir() if SHARD_FILE.fullmatch(p.name))
        counts = {SHARD_FILE.fullmatch(p.name).group(2) for p in shards}  # type: ignore[union-attr]
        if len(counts) > 1:
            raise PipelineError(f"{setting} holds shards of several shard counts "
                                f"({', '.join(sorted(counts, key=int))}); remove the stale ones")
        files += shards
    if not files:
        raise PipelineError(f"{folder} holds no metrics files (<setting>/shard-k-of-K.csv)")
    return files


def resolve_run(spec: str, results_root: str | os.PathLike) -> Path:
    """A metrics folder: ``spec`` itself when it is a folder, else the metrics folder of the
    experiment named ``spec`` under ``results_root``."""
    path = Path(spec)
    if path.is_dir():
        return path
    if not EXPERIMENT_NAME.fullmatch(spec):
        raise PipelineError(f"{spec} is neither a metrics folder nor an experiment name")
    folder = Path(results_root) / spec / METRICS_FOLDER
    if not folder.is_dir():
        raise PipelineError(f"experiment {spec} has no metrics folder {folder} "
                            f"(build results/tables/{spec}.csv first)")
    return folder


def render_targets(render_root: Path,
                   rows: Sequence[ObjectRow]) -> dict[ObjectKey, tuple[int, ...]]:
    """Target views of each row's object from its render record, where one is readable."""
    found = {}
    for row in rows:
        path = render_root / row.setting / row.object_id / DONE_FILE
        try:
            targets = json.loads(path.read_text(encoding="utf-8")).get("targets")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(targets, list) and all(isinstance(v, int) for v in targets):
            found[(row.setting, row.category, row.object_id)] = tuple(targets)
    return found


def load_run(label: str, files: Sequence[str | os.PathLike],
             render_root: Path | None = None) -> Run:
    """The object rows of ``files`` (baselines left out), keyed; target views from the
    render records under ``render_root`` when given."""
    rows = [row for path in files for row in read_rows(path) if not row.is_baseline]
    check_unique(rows)
    if not rows:
        raise PipelineError(f"run {label} has no object rows")
    keyed = {(row.setting, row.category, row.object_id): row for row in rows}
    targets = render_targets(render_root, rows) if render_root is not None else {}
    return Run(label, keyed, targets)


def load_run_spec(spec: str, results_root: str | os.PathLike,
                  files: Sequence[str | os.PathLike] | None = None) -> Run:
    """A run named on the command line: an experiment or a metrics folder, or (``files``)
    exactly those metrics CSVs under the label ``spec``."""
    if files:
        # <run>/metrics/<setting>/shard-k-of-K.csv: the render records sit in <run>/render
        folder = Path(files[0]).parent.parent
    else:
        folder = resolve_run(spec, results_root)
        files = metrics_files(folder)
    render_root = None
    if folder is not None and folder.name == METRICS_FOLDER:
        render_root = folder.parent / RENDER_FOLDER
    return load_run(spec, files, render_root)


# ---------------------------------------------------------------------------------------
# Pairing
# ---------------------------------------------------------------------------------------


def _same_views(a: Run, b: Run, key: ObjectKey) -> bool:
    if a.rows[key].n_views != b.rows[key].n_views:
        return False
    if key in a.targets and key in b.targets:
        return a.targets[key] == b.targets[key]
    return True


def pair_runs(a: Run, b: Run, common: bool) -> list[ObjectKey]:
    """Keys of the objects both runs scored on the same views, in natural order. Unless
    ``common``, the runs must hold exactly the same objects and views."""
    shared = [key for key in a.rows if key in b.rows and _same_views(a, b, key)]
    everything = len(a.rows) == len(b.rows) == len(shared)
    if not shared:
        raise PipelineError(f"{a.label} and {b.label} have no object scored on the same views "
                            "in common")
    if not everything and not common:
        raise PipelineError(
            f"{a.label} and {b.label} differ: {len(a.rows)} and {len(b.rows)} objects, "
            f"{len(shared)} in common with the same views (--common compares those)")
    return sorted(shared, key=lambda k: (natural_key(k[0]), natural_key(k[1]), k[2]))


def _means(rows: Sequence[ObjectRow]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for metric in METRICS:
        values = [getattr(row, metric) for row in rows]
        out[metric] = (None if any(v is None for v in values)
                       else math.fsum(values) / len(values))
    return out


def compare_runs(
    a: Run,
    b: Run,
    common: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Comparison:
    """Per (setting, category) and per setting in total: the paired effect of B - A."""
    keys = pair_runs(a, b, common)
    groups: dict[tuple[str, str], list[ObjectKey]] = defaultdict(list)
    for key in keys:
        groups[(key[0], key[1])].append(key)
        groups[(key[0], TOTAL)].append(key)
    settings = sorted({key[0] for key in keys}, key=natural_key)
    rows = []
    for setting in settings:
        labels = sorted((label for s, label in groups if s == setting and label != TOTAL),
                        key=natural_key) + [TOTAL]
        for label in labels:
            members = groups[(setting, label)]
            rows_a = [a.rows[k] for k in members]
            rows_b = [b.rows[k] for k in members]
            effects = paired_summary([_scores(r) for r in rows_a], [_scores(r) for r in rows_b],
                                     resamples, seed, confidence)
            rows.append(ComparisonRow(setting, label, len(members), _means(rows_a),
                                      _means(rows_b), effects))
    comparison = Comparison(a.label, b.label, rows, resamples, seed, confidence)
    if len(keys) < max(len(a.rows), len(b.rows)):
        comparison.notes.append(
            f"Only the {len(keys)} objects both runs scored on the same views are compared "
            f"({a.label}: {len(a.rows)}, {b.label}: {len(b.rows)}).")
    if any(row.effects["lpips"] is None for row in rows):
        comparison.notes.append("LPIPS: empty where an object of the group has no LPIPS "
                                "score in either run.")
    return comparison


def _scores(row: ObjectRow) -> dict[str, float | None]:
    return {metric: getattr(row, metric) for metric in METRICS}


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def comparison_columns() -> list[str]:
    columns = ["setting", "category", "n_objects"]
    for metric in METRICS:
        columns += [f"a_{metric}", f"b_{metric}", f"d_{metric}", f"d_{metric}_lo",
                    f"d_{metric}_hi"]
    return columns + ["resamples", "seed", "confidence"]



def effect_cells(effect: PairedEffect | None) -> list[str]:
    """The CSV cells ``d_<metric>, d_<metric>_lo, d_<metric>_hi`` of a paired difference."""
    if effect is None:
        return ["", "", ""]
    return [format_number(effect.mean), format_number(effect.low), format_number(effect.high)]


def comparison_csv_text(comparison: Comparison) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(comparison_columns())
    for row in comparison.rows:
        cells: list[object] = [row.setting, row.label, row.n_objects]
        for metric in METRICS:
            effect = row.effects[metric]
            cells += [format_number(row.mean_a[metric]), format_number(row.mean_b[metric])]
            cells += effect_cells(effect)
        cells += [comparison.resamples, comparison.seed, comparison.confidence]
        writer.writerow(cells)
    return buffer.getvalue()


def effect_markdown(effect: PairedEffect | None, metric: str) -> str:
    """``+0.12 [-0.03, +0.27]`` at the table's decimals (one more), or a dash."""
    if effect is None:
        return "—"
    d = MD_DECIMALS[metric] + 1
    return f"{effect.mean:+.{d}f} [{effect.low:+.{d}f}, {effect.high:+.{d}f}]"


def comparison_markdown(comparison: Comparison) -> str:
    header = ["setting", "category", "objects", "Δ PSNR", "Δ SSIM", "Δ LPIPS"]
    lines = [f"# {comparison.label_b} − {comparison.label_a}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in comparison.rows:
        label = f"**{row.label}**" if row.label == TOTAL else row.label
        cells = [row.setting, label, str(row.n_objects)]
        cells += [effect_markdown(row.effects[m], m) for m in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Δ = {comparison.label_b} − {comparison.label_a}: the mean over objects "
              "of each object's difference (its mean over its target views); in brackets the "
              f"{comparison.confidence:.0%} percentile interval of a paired bootstrap over "
              f"objects, {comparison.resamples} resamples, seed {comparison.seed}."]
    lines += comparison.notes
    return "\n".join(lines) + "\n"


def write_comparison(comparison: Comparison, out_csv: str | os.PathLike,
                     out_md: str | os.PathLike) -> None:
    atomic_write_text(out_csv, comparison_csv_text(comparison))
    atomic_write_text(out_md, comparison_markdown(comparison))
