"""Snakemake, one run per folder, stale locks cleared (``pixelnerf run -- <arguments>``).

A run holds an exclusive ``flock`` on ``<workdir>/.snakemake/pixelnerf.lock`` for as long as
its Snakemake process lives (the descriptor is passed to it), so a second run in the same
folder stops at once with one line naming the first. When the flock is free but
``.snakemake/locks/`` holds files and no Snakemake process works in the folder, those locks
are what a run killed hard left behind: they are released with ``snakemake --unlock`` and the
run goes on, resuming where the killed one stopped. A Snakemake started without this
command still stops the run (it is found by its working directory under ``/proc``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from pixelnerf.errors import PipelineError

LOCK_NAME = "pixelnerf.lock"


def workdir_of(args: Sequence[str]) -> Path:
    """The folder Snakemake works in: ``--directory``/``-d`` when given, else this one."""
    for index, arg in enumerate(args):
        if arg in ("-d", "--directory") and index + 1 < len(args):
            return Path(args[index + 1]).resolve()
        if arg.startswith("--directory="):
            return Path(arg.split("=", 1)[1]).resolve()
    return Path.cwd().resolve()


def snakemake_processes_in(folder: Path) -> list[int]:
    """Pids of live Snakemake processes (other than this one) working in ``folder``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone, or another user's
            continue
        if cwd == folder and any(b"snakemake" in Path(os.fsdecode(a)).name.encode()
                                 for a in argv[:3] if a):
            pids.append(int(entry.name))
    return pids


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[int]:
    """Hold the run's flock on ``folder``; one error line when another run holds it."""
    path = folder / ".snakemake" / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise PipelineError(f"another run (pid {holder}) is working in {folder}; wait for "
                                f"it to finish, or stop it first") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield fd
    finally:
        os.close(fd)


def stale_locks(folder: Path) -> list[Path]:
    """Snakemake's lock files in ``folder`` (call with the run's flock held)."""
    locks = folder / ".snakemake" / "locks"
    return sorted(locks.iterdir()) if locks.is_dir() else []


def run_snakemake(snakemake_args: Sequence[str]) -> int:
    """Snakemake with ``snakemake_args`` under the folder's flock; its exit status."""
    folder = workdir_of(snakemake_args)
    command = [sys.executable, "-m", "snakemake", *snakemake_args]
    with folder_lock(folder) as fd:
        if stale_locks(folder):
            live = snakemake_processes_in(folder)
            if live:
                raise PipelineError(f"a snakemake process (pid {live[0]}) started without "
                                    f"'pixelnerf run' is working in {folder}; wait for it")
            print(f"pixelnerf: a killed run left Snakemake's lock in {folder}; unlocking",
                  file=sys.stderr, flush=True)
            unlock = subprocess.run([*command, "--unlock"], capture_output=True, text=True)
            if unlock.returncode != 0:
                last = (unlock.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise PipelineError(f"snakemake --unlock failed in {folder}: {last}")
        return subprocess.run(command, pass_fds=(fd,)).returncode
