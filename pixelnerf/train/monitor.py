"""What a training run reports: per-step loss CSV, TensorBoard scalars and a progress bar.

``losses.csv`` (columns ``step, loss, loss_coarse, loss_fine, psnr``) is appended before
each checkpoint and, on resume, cut back to the steps before the checkpoint's step, so it
always holds each step exactly once, as TensorBoard does (``purge_step``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from pixelnerf.io import atomic_write_text

LOSS_COLUMNS = ("step", "loss", "loss_coarse", "loss_fine", "psnr")
# Seconds between progress-bar refreshes: often on a terminal, rarely in a log file.
REFRESH_TTY_S = 0.5
REFRESH_LOG_S = 30.0


class LossLog:
    """Per-step training losses in a CSV file; rows are buffered until :meth:`flush`."""

    def __init__(self, path: str | os.PathLike, start_step: int):
        self.path = Path(path)
        self.pending: list[str] = []
        self._truncate(start_step)

    def _truncate(self, start_step: int) -> None:
        """Keep complete rows with ``step < start_step`` (a kill may leave later ones)."""
        header = ",".join(LOSS_COLUMNS) + "\n"
        kept = [header]
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True)[1:]:
                fields = line.rstrip("\n").split(",")
                if not line.endswith("\n") or len(fields) != len(LOSS_COLUMNS):
                    break
                if int(fields[0]) >= start_step:
                    break
                kept.append(line)
        atomic_write_text(self.path, "".join(kept))

    def add(self, step: int, values: Mapping[str, float]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(
            [step] + [repr(float(values[k])) for k in LOSS_COLUMNS[1:]]
        )
        self.pending.append(buffer.getvalue())

    def flush(self) -> None:
        """Append the buffered rows and fsync (call before writing a checkpoint)."""
        if not self.pending:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(self.pending))
            handle.flush()
            os.fsync(handle.fileno())
        self.pending.clear()


def read_losses(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a ``losses.csv`` as dicts of floats (``step`` as int)."""
    with open(path, encoding="utf-8") as handle:
        return [
            {k: (int(v) if k == "step" else float(v)) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]


class Progress:
    """tqdm bar to the step budget with loss, PSNR and rays per second."""

    def __init__(self, start: int, total: int):
        from tqdm import tqdm

        interactive = sys.stderr.isatty()
        self.bar = tqdm(
            total=total, initial=start, unit="step", dynamic_ncols=True,
            mininterval=REFRESH_TTY_S if interactive else REFRESH_LOG_S,
        )
        self.last_time = time.perf_counter()
        self.rays = 0

    def update(self, values: Mapping[str, float], n_rays: int) -> None:
        self.rays += n_rays
        self.bar.update(1)
        now = time.perf_counter()
        interval = self.bar.mininterval
        if now - self.last_time >= interval:
            rate = self.rays / (now - self.last_time)
            self.bar.set_postfix(loss=f"{values['loss']:.4f}", psnr=f"{values['psnr']:.2f}",
                                 rays_s=f"{rate:.0f}", refresh=False)
            self.last_time, self.rays = now, 0

    def close(self) -> None:
        self.bar.close()


class Scalars:
    """TensorBoard scalars under ``<out>/tb``; events after ``start_step`` are purged."""

    def __init__(self, directory: str | os.PathLike, start_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(directory), purge_step=start_step or None)

    def add(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        for name, value in values.items():
            if math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{name}", value, global_step=step)

    def close(self) -> None:
        self.writer.close()
