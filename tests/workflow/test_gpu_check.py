"""The prepared GPU check (tools/gpu_check.sh) in its CPU dry run: every section runs at
tiny sizes and the summary reports each one, so the script keeps working as code changes."""

from __future__ import annotations

import os
import subprocess
import sys

SECTIONS = ("env", "triton", "bench", "tests", "e2e", "autotune")


def _dry_run(project_root, **extra_env: str) -> tuple[str, dict[str, str]]:
    """The dry run's output and each section's status in its summary."""
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **extra_env}
    done = subprocess.run(["bash", str(project_root / "tools/gpu_check.sh"), "--dry-run"],
                          env=env, capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    summary = out.split("=== summary", 1)[1].splitlines()[1:]
    return out, {line.split()[0]: line.split(maxsplit=1)[1] for line in summary if line.strip()}


def test_only_the_selected_sections_run(project_root):
    out, status = _dry_run(project_root, GPU_CHECK_ONLY="none-of-them")
    assert status["env"].startswith("ok")
    assert all(status[name].startswith("not selected") for name in SECTIONS[1:]), status
    assert status["published"].startswith("not selected"), status
    assert "=== bench" not in out


def test_the_dry_run_runs_every_section(project_root):
    out, status = _dry_run(project_root)
    assert all(status.get(name, "").startswith("ok") for name in SECTIONS), status
    assert status["install"].startswith("skipped")
    assert status["training"].split()[0] in ("ok", "absent")
    # The published trainer beside ours: run where tools/gpu_check_prepare.sh put its code,
    # else (CI) a note that does not fail the dry run.
    if (project_root / ".gpu_check/published/train/train.py").is_file():
        assert status["published"].startswith("ok") and "vs published" in out
    else:
        assert status["published"].startswith("NOTE") and "published code not prepared" in out
    assert "fp32+torch" in out and "e2e: projected sn64 evaluation" in out
    assert "relative L2" in out and "1 passed" in out
    # The autotune section: its path compiled in each of its two processes, never when timed.
    autotuned = [line.split() for line in out.splitlines()
                 if line.startswith("fp32+torch+autotune ")]
    assert [row[-1] for row in autotuned] == ["1+0", "1+0"], out[-4000:]

