"""Two runs at once in one folder: the second stops with one line, the first finishes. A run
killed hard leaves Snakemake's lock behind: the same command run again unlocks and resumes;
a live Snakemake started by other means is never unlocked."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy  # tens of seconds in all: run first (tests/conftest.py)

# Two jobs, each sleeping, so a run can be caught mid-way; the second needs the first.
SNAKEFILE = """
rule all:
    input: "b.txt"

rule a:
    output: "a.txt"
    shell: "sleep {seconds}; echo a > {output}"

rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "sleep {seconds}; echo b > {output}"
"""


def start(folder: Path, *command: str, log: Path | None = None) -> subprocess.Popen:
    """``command`` in ``folder``, its own session; stderr piped, or written to ``log``."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log, "w") if log else contextlib.nullcontext(subprocess.PIPE) as stderr:
        return subprocess.Popen(list(command), cwd=folder, env=env, stdout=subprocess.PIPE,
                                stderr=stderr, text=True, start_new_session=True)


def pixelnerf_run(folder: Path, log: Path | None = None) -> subprocess.Popen:
    return start(folder, sys.executable, "-m", "pixelnerf.cli", "run", "--", "--cores", "1",
                 log=log)


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def locked(folder: Path) -> bool:
    locks = folder / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir())


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("pixelnerf: error:")]
    assert len(errors) == 1 and stderr.rstrip().endswith(errors[0]), stderr
    return errors[0]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "Snakefile").write_text(SNAKEFILE.replace("{seconds}", "3"))
    return tmp_path


def test_a_second_run_stops_with_one_line_and_the_first_finishes(folder: Path) -> None:
    first = pixelnerf_run(folder)
    wait_for(lambda: locked(folder))
    second = pixelnerf_run(folder)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    assert f"another run (pid {first.pid}) is working in {folder}" in one_error_line(err)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-2000:]
    assert (folder / "b.txt").read_text() == "b\n" and not locked(folder)


def test_a_run_killed_hard_is_resumed_by_the_same_command(folder: Path) -> None:
    log = folder / "killed-run.log"
    killed = pixelnerf_run(folder, log=log)
    # Killed once Snakemake has recorded job a as finished (a.txt alone exists a moment
    # earlier, and a kill then leaves it incomplete, which is rerun), while b runs.
    wait_for(lambda: re.search(r"Finished jobid: \d+ \(Rule: a\)", log.read_text())
             and locked(folder))
    os.killpg(killed.pid, signal.SIGKILL)  # the wrapper, snakemake and its job at once
    killed.wait()
    time.sleep(0.5)
    finished = (folder / "a.txt").stat().st_mtime_ns
    assert locked(folder)  # what plain snakemake stops at
    again = pixelnerf_run(folder)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err[-2000:]
    assert "left Snakemake's lock" in err
    assert (folder / "b.txt").read_text() == "b\n"
    assert (folder / "a.txt").stat().st_mtime_ns == finished  # resumed: the done job kept


def test_a_live_snakemake_started_without_the_wrapper_is_not_unlocked(folder: Path) -> None:
    plain = start(folder, sys.executable, "-m", "snakemake", "--cores", "1")
    try:
        wait_for(lambda: locked(folder))
        blocked = pixelnerf_run(folder)
        _, err = blocked.communicate(timeout=120)
        assert blocked.returncode == 2
        assert f"a snakemake process (pid {plain.pid})" in one_error_line(err)
    finally:
        _, err = plain.communicate(timeout=120)
    assert plain.returncode == 0, err[-2000:]  # unharmed
    assert (folder / "b.txt").exists()
