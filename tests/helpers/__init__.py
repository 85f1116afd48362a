"""Helpers shared by every test folder (tests/ is on pytest's path, see pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
