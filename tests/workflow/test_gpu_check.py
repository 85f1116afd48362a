"""The prepared GPU check (tools/gpu_check.sh) in its CPU dry run: every section runs at
tiny sizes and the summary reports each one, so the script keeps working as code changes."""

from __future__ import annotations

import os
import subprocess
import sys

SECTIONS = ("env", "triton", "bench", "tests", "e2e")


def test_the_dry_run_runs_every_section(project_root):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(project_root / "tools/gpu_check.sh"), "--dry-run"],
                          env=env, capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    summary = out.split("=== summary", 1)[1].splitlines()[1:]
    status = {line.split()[0]: line.split()[1] for line in summary if line.strip()}
    assert all(status.get(name) == "ok" for name in SECTIONS), summary
    assert status["install"] == "skipped" and status["training"] in ("ok", "absent")
    assert "fp32+torch" in out and "e2e: projected sn64 evaluation" in out
    assert "relative L2" in out and "1 passed" in out
