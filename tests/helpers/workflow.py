"""Running the real Snakemake workflow in a scratch copy of the repository, with a tiny demo.

`make_workspace` copies what a fresh clone holds (Snakefile, workflow/, envs/, config/) into a
temporary folder and writes the demo experiment with the test suite's tiny demo
(helpers/demo.py) merged in, so the whole workflow runs in about a minute on 2 CPU cores.
`snakemake` runs the CLI there in a subprocess.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from helpers import PROJECT_ROOT
from helpers.demo import TINY_DEMO, merged

VENV_BIN = Path(sys.executable).parent
SNAKEMAKE_TIMEOUT_S = 600


def make_workspace(
    root: Path, demo_override: Mapping[str, Any] = TINY_DEMO, raw_demo: str | None = None
) -> Path:
    """A fresh-clone-like copy of the workflow in ``root`` with the demo experiment overridden
    (or replaced by the text ``raw_demo``). Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PROJECT_ROOT / "Snakefile", root / "Snakefile")
    for folder in ("workflow", "envs"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder)
    shutil.copytree(PROJECT_ROOT / "config", root / "config")
    demo_file = root / "config" / "experiments" / "demo.yaml"
    if raw_demo is not None:
        demo_file.write_text(raw_demo, encoding="utf-8")
    else:
        demo = yaml.safe_load(demo_file.read_text(encoding="utf-8"))
        demo_file.write_text(yaml.safe_dump(merged(demo, demo_override), sort_keys=False))
    return root


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PIXELNERF_REFERENCE_DIR", None)
    return env


def snakemake_command(args: Sequence[str]) -> list[str]:
    return [str(VENV_BIN / "snakemake"), "--cores", "2", *args]


def snakemake(
    workspace: Path, *args: str, timeout: float = SNAKEMAKE_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workspace``; output captured as text."""
    return subprocess.run(
        snakemake_command(args), cwd=workspace, env=_env(), capture_output=True, text=True,
        timeout=timeout, check=False,
    )


def start_snakemake(workspace: Path, *args: str, log: Path) -> subprocess.Popen:
    """Start Snakemake in its own session (so that it and its jobs can be killed together)."""
    handle = open(log, "w")  # noqa: SIM115 - closed by the caller through the process
    return subprocess.Popen(
        snakemake_command(args), cwd=workspace, env=_env(), stdout=handle,
        stderr=subprocess.STDOUT, start_new_session=True,
    )


def session_pids(session_id: int) -> list[int]:
    """Processes whose session id is ``session_id`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces) start after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == session_id:
            pids.append(int(entry.name))
    return pids


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL ``process`` (a session leader we started) and every process of its session."""
    for pid in session_pids(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)


def read_table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def output_text(result: subprocess.CompletedProcess) -> str:
    return f"{result.stdout}\n{result.stderr}"
