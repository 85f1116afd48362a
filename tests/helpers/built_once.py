"""A costly session fixture's folder, built once per test run even when pytest-xdist spreads
the run over several worker processes (each has its own session)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

BUILT = ".built"


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name`` of this run, filled by ``build(folder)`` in whichever process asks
    first; the others wait on a lock and reuse it. A build that failed is retried by the next
    process that asks, so each reports the failure itself."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, which holds one folder per worker
    folder = base / name
    with FileLock(str(base / f"{name}.lock")):
        if not (folder / BUILT).exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / BUILT).touch()
    return folder
