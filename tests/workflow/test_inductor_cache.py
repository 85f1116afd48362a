"""Render jobs share one Inductor cache beside the results (so that only the first job of a
run pays compilation and autotuning), unless the user has set TORCHINDUCTOR_CACHE_DIR."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers.workflow import make_workspace, output_text, snakemake

RESULTS = "my results's; $(echo)"  # quoted into the shell like every other path


def cache_dir_of(command: str, environment: dict[str, str]) -> str:
    """TORCHINDUCTOR_CACHE_DIR that ``command``'s environment prefix gives its program."""
    prefix = command[command.index("OMP_NUM_THREADS="):command.index("pixelnerf render")]
    done = subprocess.run(["bash", "-c", f"{prefix} printenv TORCHINDUCTOR_CACHE_DIR"],
                          env=environment, capture_output=True, text=True, check=True)
    return done.stdout.rstrip("\n")


def test_render_jobs_share_an_inductor_cache_under_results_root(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    plan = snakemake(ws, "-n", "-p", "--config", f"results_root={RESULTS}")
    text = output_text(plan)
    assert plan.returncode == 0, text[-3000:]
    commands = [line for line in text.splitlines() if "pixelnerf render" in line]
    assert len(commands) >= 2, text[-3000:]  # the shards, and the approximate evaluation
    unset = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    for command in commands:
        assert cache_dir_of(command, unset) == f"{RESULTS}/.cache/torchinductor"
        chosen = {**unset, "TORCHINDUCTOR_CACHE_DIR": "/scratch/inductor"}
        assert cache_dir_of(command, chosen) == "/scratch/inductor"
