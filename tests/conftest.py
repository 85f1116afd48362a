"""Shared fixtures (where the reference vectors live, the project root) and the markers.

Each test folder holds one kind of test, and its tests carry that kind's marker (registered
in pyproject.toml): `unit`, `parity`, `workflow` (the real Snakemake CLI), `cluster` (a
real SLURM cluster) and `gpu` (a CUDA device). `make test-fast` runs `-m "not workflow and
not cluster"`. The `gpu` tests (tests/gpu, and the CUDA cases of other tests, marked `gpu`
where they are parametrized) run only where `-m` names the marker: `make test-gpu` runs
`-m gpu`, which stops at once, in one line, where there is no CUDA device.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import PROJECT_ROOT

TESTS = Path(__file__).resolve().parent
KINDS = ("unit", "parity", "workflow", "cluster", "gpu")
GPU = "gpu"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-slurm",
        action="store_true",
        help="skip tests/cluster's cluster run (a real one-node SLURM cluster: root, minutes)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """One compute thread per pytest-xdist worker (`pytest -n N`, as the make targets run).

    The workers already keep the cores busy; OpenMP threads of one worker spinning on cores
    the others hold cost more than they give (the fast suite, 2 workers on 2 cores: 3 min 52 s
    with 2 threads per worker, 2 min 52 s with one). Commands the tests start inherit it.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with the kind of its folder (tests/<kind>/...) and order them longest
    first: the workflow tests (minutes each), then the `heavy` modules, then the rest in file
    order. The make targets' workers take modules in this order, so none is left running a
    long module alone at the end."""
    kinds = {}
    for item in items:
        relative = Path(str(item.path)).resolve().relative_to(TESTS)
        kind = relative.parts[0] if len(relative.parts) > 1 else None
        if kind not in KINDS:
            raise pytest.UsageError(f"{relative}: a test file belongs in one of tests/{KINDS}")
        item.add_marker(getattr(pytest.mark, kind))
        kinds[item.nodeid] = kind
    items.sort(key=lambda item: (kinds[item.nodeid] != "workflow",  # stable: files keep order
                                 item.get_closest_marker("heavy") is None))
    if GPU not in (config.option.markexpr or ""):
        kept = [item for item in items if item.get_closest_marker(GPU) is None]
        if len(kept) < len(items):
            config.hook.pytest_deselected(items=[i for i in items if i not in kept])
            items[:] = kept


def pytest_collection_finish(session: pytest.Session) -> None:
    """A run with GPU tests and no CUDA device stops before running anything."""
    if session.config.option.collectonly:
        return
    if any(item.get_closest_marker(GPU) for item in session.items):
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError(
                "no CUDA device is present: the gpu tests (make test-gpu) need one")


@pytest.fixture(scope="session")
def reference_root() -> Path:
    from helpers.reference import REFERENCE_DIR_VARIABLE, reference_dir

    root = reference_dir()
    if not root.is_dir():
        pytest.fail(f"reference directory {root} is missing (check {REFERENCE_DIR_VARIABLE})")
    return root


@pytest.fixture(scope="session")
def vectors(reference_root):
    """The arrays of the reference set's model_forward.npz."""
    from helpers.reference import load_vectors

    return load_vectors(reference_root)


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory):
    """A tiny model trained on tiny demo data for a few hundred seeded steps (CPU, ~10 s),
    once per test run (helpers/built_once.py).

    Returns ``(experiment, paths, summary)``; shared by the learning and precision tests.
    """
    import json

    import torch
    from helpers.built_once import built_once
    from helpers.training import LEARN_STEPS, make_experiment

    from pixelnerf.config import load_experiment
    from pixelnerf.train.loop import RunPaths, train

    RETURNED = "train-returned.json"

    def run_paths(work: Path) -> RunPaths:
        return RunPaths(checkpoints=work / "ckpt", out=work / "out")

    def build(work: Path) -> None:
        _, config = make_experiment(
            work, PROJECT_ROOT,
            # Uniform rays from the start (no bbox phase): the background is part of the
            # target, so the start loss is that of an untrained network on whole images.
            train={"steps": LEARN_STEPS, "no_bbox_step": 0, "rays_per_object": 128, "lr": 2e-3,
                   "checkpoint_every": 100, "val_every": 50, "vis_every": 100},
        )
        summary = train(load_experiment(config), work / "data", run_paths(work),
                        torch.device("cpu"))
        (work / RETURNED).write_text(json.dumps(summary))  # what train returned, as it was

    work = built_once(tmp_path_factory, "trained_demo", build)
    summary = json.loads((work / RETURNED).read_text())
    return load_experiment(work / "experiment.yaml"), run_paths(work), summary


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(autouse=True)
def full_fp32():
    """Plain fp32 everywhere (cuDNN would otherwise use TF32 convolutions on CUDA)."""
    from pixelnerf.render.precision import tf32_allowed

    with tf32_allowed(False):
        yield
