"""`pixelnerf figure`: a few renders beside ground truth, for the Snakemake report.

Call chain: run -> comparison_rows -> (read done.json, read PNGs, dataset item) -> save_figure.
One row per object (the first `eval.report_objects` objects of the shard manifests, sorted):
its source view(s), then for each of the first `eval.report_views` target views the render
and the ground truth side by side.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelnerf.config import load_experiment, section
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_bytes

DEFAULT_OBJECTS = 3
DEFAULT_VIEWS = 2
PANEL_INCHES = 1.6  # size of one image panel in the figure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--data-root", required=True, help="folder holding the dataset dir")
    parser.add_argument("--renders", required=True, help="results/<exp>/render")
    parser.add_argument("--setting", required=True, help="view setting, e.g. 1v")
    parser.add_argument("--manifests", required=True, nargs="+", help="shard manifests")
    parser.add_argument("--out", required=True, help="PNG to write")


def run(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.config)
    eval_cfg = section(experiment, "eval")
    objects = sorted(
        object_id for path in args.manifests for object_id in _manifest_objects(Path(path))
    )
    count = int(eval_cfg.get("report_objects", DEFAULT_OBJECTS))
    views = int(eval_cfg.get("report_views", DEFAULT_VIEWS))
    rows = comparison_rows(
        experiment, Path(args.data_root), Path(args.renders) / args.setting, objects[:count], views
    )
    save_figure(rows, args.out, title=f"{experiment.get('name', '')} {args.setting}")
    print(f"figure: wrote {args.out} ({len(rows)} objects)")
    return 0


@dataclass(frozen=True)
class ComparisonRow:
    """One object: source images ``(H, W, 3)`` floats in [0, 1], then (view, render, truth)."""

    object_id: str
    sources: list[tuple[int, np.ndarray]]
    targets: list[tuple[int, np.ndarray, np.ndarray]]


def _manifest_objects(path: Path) -> list[str]:
    try:
        return [str(o) for o in json.loads(path.read_text(encoding="utf-8"))["objects"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PipelineError(f"shard manifest {path} is unreadable or has no 'objects'") from exc


def _read_png(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        image = iio.imread(path)
    except (OSError, ValueError) as exc:
        raise PipelineError(f"cannot read render {path}: {exc}") from exc
    return image[..., :3].astype(np.float32) / 255.0


def comparison_rows(
    experiment: Mapping[str, Any],
    data_root: Path,
    setting_dir: Path,
    object_ids: Sequence[str],
    views_per_object: int,
) -> list[ComparisonRow]:
    """Renders from ``setting_dir/<object>/`` and ground truth from the dataset."""
    from pixelnerf.render_objects import object_ids_of, open_split

    if not object_ids:
        return []
    dataset = open_split(experiment, data_root)
    index_of = {object_id: i for i, object_id in enumerate(object_ids_of(dataset))}
    rows = []
    for object_id in object_ids:
        done_path = setting_dir / object_id / "done.json"
        try:
            done = json.loads(done_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PipelineError(f"{done_path} is missing or unreadable") from exc
        if object_id not in index_of:
            raise PipelineError(f"object {object_id} of {done_path} is not in the dataset split")
        images = dataset[index_of[object_id]]["images"]  # (NV, 3, H, W) in [-1, 1]
        truth = (images[:, :3] * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        sources = [(int(v), truth[int(v)]) for v in done["sources"]]
        targets = [
            (int(v), _read_png(setting_dir / object_id / f"{int(v):06d}.png"), truth[int(v)])
            for v in done["targets"][:views_per_object]
        ]
        rows.append(ComparisonRow(object_id, sources, targets))
    return rows


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
