"""A few renders beside ground truth, for the Snakemake report.

Call chain: comparison_rows -> (records.read_done, metrics.read_png, dataset item);
save_figure.
One row per object (the first `eval.report_objects` objects of the shard manifests, sorted):
its source view(s), then for each of the first `eval.report_views` target views the render
and the ground truth side by side.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelnerf.eval.records import read_done, read_manifest
from pixelnerf.io import atomic_write_bytes

PANEL_INCHES = 1.6  # size of one image panel in the figure


@dataclass(frozen=True)
class ComparisonRow:
    """One object: source images ``(H, W, 3)`` floats in [0, 1], then (view, render, truth)."""

    object_id: str
    sources: list[tuple[int, np.ndarray]]
    targets: list[tuple[int, np.ndarray, np.ndarray]]


def comparison_rows(
    dataset_config: Mapping[str, Any],
    split: str,
    data_root: Path,
    renders_root: Path,
    setting: str,
    object_ids: Sequence[str],
    views_per_object: int,
    scale: float = 1.0,
) -> list[ComparisonRow]:
    """Renders from ``renders_root/<setting>/<object>/`` and ground truth from the dataset
    (at ``scale``, ``eval.scale``, like the renders)."""
    from pixelnerf.eval.inference import item_lookup, open_split
    from pixelnerf.eval.metrics import read_png

    if not object_ids:
        return []
    lookup = item_lookup(open_split(dataset_config, data_root, split, scale))
    rows = []
    for object_id in object_ids:
        done = read_done(renders_root, setting, object_id)
        images = lookup(object_id)["images"]  # (NV, 3, H, W) in [-1, 1]
        truth = (images[:, :3] * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        sources = [(v, truth[v]) for v in done.sources]
        targets = [(v, read_png(done.render_path(v)), truth[v])
                   for v in done.targets[:views_per_object]]
        rows.append(ComparisonRow(object_id, sources, targets))
    return rows


def manifest_objects(manifests: Sequence[str | Path]) -> list[str]:
    """The objects of the shard manifests of one setting, sorted."""
    return sorted(object_id for path in manifests for object_id in read_manifest(path)[1])


def save_figure(rows: Sequence[ComparisonRow], out: str | Path, title: str) -> None:
    """One row per object: sources | render, truth per shown target view; PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = max([len(r.sources) + 2 * len(r.targets) for r in rows], default=1)
    n_rows = max(len(rows), 1)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(PANEL_INCHES * n_cols, PANEL_INCHES * n_rows + 0.4),
        squeeze=False,
    )
    for ax in axes.ravel():
        ax.axis("off")
    if not rows:
        axes[0, 0].text(0.5, 0.5, "no rendered objects", ha="center", va="center")
    for r, row in enumerate(rows):
        panels = [(f"source {v}", img) for v, img in row.sources]
        for view, render, truth in row.targets:
            panels += [(f"render {view}", render), (f"truth {view}", truth)]
        for c, (label, image) in enumerate(panels):
            axes[r, c].imshow(np.clip(image, 0.0, 1.0))
            axes[r, c].set_title(label, fontsize=7)
        axes[r, 0].text(
            -0.08, 0.5, row.object_id.split("/")[-1][:12], transform=axes[r, 0].transAxes,
            rotation=90, ha="right", va="center", fontsize=6,
        )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())
