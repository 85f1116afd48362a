"""The experiment's table as a bar plot (``results/plots/<exp>.png``).

Call chain: plot_table -> table_figure.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pixelnerf.eval.metrics import METRICS
from pixelnerf.eval.tables import Table
from pixelnerf.io import atomic_open

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Baselines are drawn across the bars, one line style each, so the model's margin shows.
BASELINE_LINE_STYLES = ("--", ":", "-.")


def table_figure(table: Table) -> Figure:
    """The table as a matplotlib Figure: per-row bars, ours beside the paper's (where any
    row has a published value), baseline rows as horizontal lines; one subplot per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [row for row in table.rows if row.kind != "baseline"
            and (row.kind != "total" or row.ours["psnr"] is not None)]
    baselines = [row for row in table.rows if row.kind == "baseline"]
    with_paper = any(row.paper is not None for row in rows)
    labels = [row.label for row in rows]
    x = np.arange(len(rows))
    width = 0.4 if with_paper else 0.6
    fig, axes = plt.subplots(len(METRICS), 1, squeeze=False,
                             figsize=(max(6.0, 2.0 + 0.6 * len(rows)), 3.0 * len(METRICS)))
    for ax, metric in zip(axes[:, 0], METRICS, strict=True):
        ours = [np.nan if r.ours[metric] is None else r.ours[metric] for r in rows]
        ax.bar(x - width / 2 if with_paper else x, ours, width, label="ours")
        if with_paper:
            theirs = [np.nan if r.paper is None or r.paper.value(metric) is None
                      else r.paper.value(metric) for r in rows]
            bars = ax.bar(x + width / 2, theirs, width, label="paper")
            for bar, row in zip(bars, rows, strict=True):
                if row.paper is not None and row.paper.status == "unconfirmed":
                    bar.set_hatch("//")
        for index, row in enumerate(baselines):
            if row.ours[metric] is not None:
                ax.axhline(row.ours[metric], color="black",
                           linestyle=BASELINE_LINE_STYLES[index % len(BASELINE_LINE_STYLES)],
                           label=f"{row.label} (total)")
        ax.set_title(metric.upper() + (" (lower is better)" if metric == "lpips" else ""))
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=30, ha="right")
        ax.set_xlim(-0.5, len(rows) - 0.5)
        if all(np.isnan(v) for v in ours):
            ax.text(0.5, 0.9, "ours: not computed", ha="center", va="top",
                    transform=ax.transAxes)
    axes[0][0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    title = table.experiment
    if table.cameras is not None:
        title += f" (cameras: {table.cameras})"
    if any(r.paper is not None and r.paper.status == "unconfirmed" for r in rows):
        title += "\n(hatched: unconfirmed published value)"
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_table(table: Table, path: str | os.PathLike) -> None:
    """Write :func:`table_figure` as a PNG, atomically."""
    import matplotlib.pyplot as plt

    fig = table_figure(table)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


