"""The sensitivity table as a plot: per metric, each variant's paired difference to the
reference with its interval (``results/plots/<exp>_sensitivity.png``)."""

from __future__ import annotations

import os

from pixelnerf.eval.metrics import METRICS
from pixelnerf.eval.sensitivity.table import REFERENCE, SensitivityTable
from pixelnerf.io import atomic_open


def plot_sensitivity(table: SensitivityTable, path: str | os.PathLike) -> None:
    """One panel per metric, one horizontal interval per variant row; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [row for row in table.rows if row.choice != REFERENCE]
    labels = [f"{row.choice}: {row.variant} ({row.setting})" for row in rows]
    y = np.arange(len(rows))
    fig, axes = plt.subplots(1, len(METRICS), squeeze=False, sharey=True,
                             figsize=(5.0 * len(METRICS), 1.2 + 0.4 * max(len(rows), 1)))
    for ax, metric in zip(axes[0], METRICS, strict=True):
        effects = [row.effects.get(metric) for row in rows]
        for index, effect in enumerate(effects):
            if effect is None:
                continue
            ax.errorbar([effect.mean], [index],
                        xerr=[[effect.mean - effect.low], [effect.high - effect.mean]],
                        fmt="o", color="C0", capsize=3)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(f"Δ {metric.upper()} (variant − reference)")
        if all(effect is None for effect in effects):
            ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes)
    axes[0][0].set_yticks(y)
    axes[0][0].set_yticklabels(labels)
    axes[0][0].invert_yaxis()
    fig.suptitle(f"{table.experiment}: sensitivity to the evaluation protocol "
                 f"({table.confidence:.0%} paired bootstrap intervals)")
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)
