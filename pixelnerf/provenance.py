"""`pixelnerf provenance`: what produced a table, written beside it as JSON.

Call chain: run -> build_record -> (git_state, package_versions, host_device, stage_times,
render_devices). Records the git commit (and whether the tree had uncommitted changes), the
experiment config and the workflow config, package versions, the devices that rendered and the
wall time of every stage from Snakemake's benchmark files.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from pixelnerf.config import PROJECT_ROOT, load_experiment
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text

PACKAGES = (
    "pixelnerf", "torch", "torchvision", "numpy", "scikit-image", "lpips", "imageio",
    "snakemake", "snakemake-executor-plugin-slurm", "pandas", "matplotlib",
)
GIT_TIMEOUT_S = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config/experiments/<exp>.yaml")
    parser.add_argument("--experiment", required=True, help="the experiment's name")
    parser.add_argument("--benchmarks", required=True, help="Snakemake benchmark folder")
    parser.add_argument("--table", required=True, help="results/tables/<exp>.csv")
    parser.add_argument("--renders", default=None,
                        help="results/<exp>/render (devices from done.json); default beside table")
    parser.add_argument("--workflow-config", default="{}", help="global config as JSON")
    parser.add_argument("--device", default="auto", help="the configured device")
    parser.add_argument("--out", required=True, help="results/tables/<exp>.provenance.json")


def run(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.config)
    try:
        workflow_config = json.loads(args.workflow_config)
    except ValueError as exc:
        raise PipelineError(f"--workflow-config is not JSON: {exc}") from exc
    table = Path(args.table)
    default_renders = table.parent.parent / args.experiment / "render"
    renders = Path(args.renders) if args.renders else default_renders
    record = build_record(
        experiment, args.experiment, Path(args.benchmarks), table, renders,
        workflow_config, args.device,
    )
    atomic_write_text(args.out, json.dumps(record, indent=1, sort_keys=False) + "\n")
    print(f"provenance: wrote {args.out}")
    return 0


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


def render_devices(renders: Path) -> list[str]:
    """Distinct devices recorded in the objects' done.json files under ``renders``."""
    found: set[str] = set()
    if renders.is_dir():
        for done in renders.rglob("done.json"):
            try:
                device = json.loads(done.read_text(encoding="utf-8")).get("device")
            except (OSError, ValueError):
                continue
            if device:
                found.add(str(device))
    return sorted(found)


def build_record(
    experiment: Mapping[str, Any],
    name: str,
    bench_dir: Path,
    table: Path,
    renders: Path,
    workflow_config: Mapping[str, Any],
    configured_device: str,
) -> dict[str, Any]:
    """The provenance record of one experiment's table."""
    train = experiment.get("train", {})
    sources = [experiment.get("dataset", {}).get("source", "")]
    if train.get("weights") == "published":
        sources.append(train.get("published_source", "pretrained"))
    return {
        "experiment": name,
        "table": str(table),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": git_state(),
        "weights": train.get("weights"),
        "experiment_config": dict(experiment),
        "workflow_config": dict(workflow_config),
        "packages": package_versions(),
        "device": {**host_device(configured_device), "render_devices": render_devices(renders)},
        "stages": stage_times(bench_dir, name, sources),
    }
