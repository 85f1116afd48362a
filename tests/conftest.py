"""Shared fixtures: where the reference vectors live, and the project root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def reference_dir() -> Path:
    """The reference set: $PIXELNERF_REFERENCE_DIR, default ../shared/reference."""
    configured = os.environ.get("PIXELNERF_REFERENCE_DIR")
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_root() -> Path:
    root = reference_dir()
    if not root.is_dir():
        pytest.fail(f"reference directory {root} is missing (set PIXELNERF_REFERENCE_DIR)")
    return root


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT
