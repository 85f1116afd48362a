"""The demo's table target run once for the workflow tests that need a finished plain run.

`demo_table` runs `results/tables/demo.csv` (the target of `make demo`) on the tiny demo in a
fresh workspace, once a test run (helpers/built_once.py). test_workflow_e2e continues in that
workspace (its next command is `--report`, the README's sequence) and never changes the table
(it checks that); its hostile-names test compares its own run with that table.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.built_once import built_once
from helpers.workflow import make_workspace, output_text, snakemake

TABLE = "results/tables/demo.csv"


@pytest.fixture(scope="session")
def demo_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workspace after the table target; its table, read before any test changes it."""

    def build(folder: Path) -> None:
        run = snakemake(make_workspace(folder / "ws"), TABLE)
        assert run.returncode == 0, output_text(run)[-4000:]

    return built_once(tmp_path_factory, "demo_table", build) / "ws"
