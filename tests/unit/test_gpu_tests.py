"""The GPU tests on a machine without one: every file of tests/gpu imports and collects
under `-m gpu`; a run that does not name the marker leaves them out; a `-m gpu` run without
CUDA stops with one line instead of passing."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import PROJECT_ROOT

GPU_TESTS = PROJECT_ROOT / "tests" / "gpu"


def pytest_run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=PROJECT_ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


def collected(output: str) -> list[str]:
    return [line for line in output.splitlines() if "::" in line]


def test_every_gpu_test_file_collects_under_the_marker() -> None:
    run = pytest_run("--collect-only", "-q", "-m", "gpu", "tests/gpu")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    files = {line.split("::")[0] for line in collected(run.stdout)}
    expected = {f"tests/gpu/{p.name}" for p in GPU_TESTS.glob("test_*.py")}
    assert expected and files == expected, (files, expected)


def test_a_run_without_the_marker_leaves_them_out() -> None:
    run = pytest_run("--collect-only", "-q", "-m", "not workflow", "tests/gpu")
    assert not collected(run.stdout), run.stdout[-3000:]
    assert "deselected" in run.stdout


def test_without_cuda_a_gpu_run_fails_in_one_line() -> None:
    run = pytest_run("-q", "-m", "gpu", "tests/gpu", CUDA_VISIBLE_DEVICES="")
    assert run.returncode != 0
    errors = [line for line in (run.stdout + run.stderr).splitlines()
              if line.startswith("ERROR")]
    assert errors == ["ERROR: no CUDA device is present: the gpu tests (make test-gpu) need one"]
    assert "passed" not in run.stdout
