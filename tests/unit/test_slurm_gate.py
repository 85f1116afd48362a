"""When the SLURM test runs: skipped with a one-line reason where SLURM's programs are absent,
failed where they are absent under CI=true (the CI script installs them)."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from helpers import PROJECT_ROOT

CLUSTER = PROJECT_ROOT / "tests" / "cluster" / "slurm" / "cluster.py"


@pytest.fixture
def cluster_module(monkeypatch):
    spec = importlib.util.spec_from_file_location("slurm_cluster", CLUSTER)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("environ", [{}, {"CI": "true"}])
def test_installed_programs_run_the_test(cluster_module, environ) -> None:
    assert cluster_module.absence_verdict([], environ) is None


@pytest.mark.parametrize(("environ", "fails"), [
    ({}, False), ({"CI": "false"}, False), ({"CI": ""}, False),
    ({"CI": "true"}, True), ({"CI": "TRUE"}, True),
])
def test_absent_programs_skip_it_except_under_ci(cluster_module, environ, fails) -> None:
    verdict = cluster_module.absence_verdict(["slurmd", "sbatch"], environ)
    assert verdict is not None
    assert verdict[0] is fails
    reason = verdict[1]
    assert "\n" not in reason and "2 programs" in reason and "slurmd" in reason
    assert "tests/cluster/slurm/install.sh" in reason and "pytest tests/cluster" in reason


def test_every_required_program_is_checked(cluster_module, monkeypatch) -> None:
    """Where none is found, every required program is named missing."""
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(cluster_module, "SBIN_DIRS", ())
    assert cluster_module.missing_programs() == list(cluster_module.REQUIRED_PROGRAMS)
