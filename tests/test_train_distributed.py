"""Data-parallel training on the CPU: two gloo ranks under torchrun train as one process.

The global batch (4 objects x 33 rays: an odd count, so the ranks' shares differ) is drawn
alike on every rank and its rays split; the one-process run is the reference. Tolerances:
losses relative 1e-5 (fp32 sums in another order); parameters 1e-6 absolute, about 16 ulp
of the O(1) weights and a thousandth of what one step at lr 1e-3 moves a weight (measured
2.4e-7 after 8 steps); Adam's first moment (the running mean of the gradients) within 1e-4
of its norm, which a gradient off by the world size (a factor 2) would miss by 0.5.
Adam's update is nearly blind to the gradient's scale, hence that check beside the
parameters'.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_helpers import make_experiment

from pixelnerf.config import load_experiment
from pixelnerf.train.loop import RunPaths, train
from pixelnerf.train.monitor import read_losses

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOSS_RTOL = 1e-5
PARAM_ATOL = 1e-6
MOMENT_RTOL = 1e-4
HANG_LIMIT_S = 60  # a job that lost a rank must be over well within this
TRAIN_KEYS = {"steps": 8, "batch_objects": 4, "rays_per_object": 33, "checkpoint_every": 4,
              "val_every": 4, "vis_every": 8, "val_objects": 1}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> tuple[Path, Path]:
    """``(data root, experiment config)`` of the tiny model on the tiny demo data."""
    work, config = make_experiment(tmp_path_factory.mktemp("ddp"), PROJECT_ROOT,
                                   train=TRAIN_KEYS)
    return work / "data", config


def one_process(experiment: tuple[Path, Path], out: Path, steps: int) -> None:
    """Train in this process (one thread, as each torchrun rank) to ``steps``."""
    data, config = experiment
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(load_experiment(config), data, RunPaths(out / "ck", out / "out"),
              torch.device("cpu"), steps=steps)
    finally:
        torch.set_num_threads(threads)


def torchrun(experiment: tuple[Path, Path], out: Path, steps: int) -> subprocess.Popen:
    """Two gloo ranks of ``pixelnerf train`` under torchrun, output to ``out/log``."""
    data, config = experiment
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "pixelnerf.cli", "train", "--config",
               str(config), "--data-root", str(data), "--checkpoints", str(out / "ck"),
               "--out", str(out / "out"), "--device", "cpu", "--steps", str(steps)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(PROJECT_ROOT))
    log = open(out / "log", "w")  # noqa: SIM115 (closed by the child's exit)
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                            cwd=PROJECT_ROOT)


def finish(process: subprocess.Popen, out: Path) -> str:
    """Wait for a torchrun job (at most ``HANG_LIMIT_S``); its output."""
    try:
        process.wait(timeout=HANG_LIMIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the job did not end within {HANG_LIMIT_S} s")
    return (out / "log").read_text()


def assert_losses_match(rows: list[dict[str, float]], reference: list[dict[str, float]]) -> None:
    assert [r["step"] for r in rows] == [r["step"] for r in reference]
    for row, ref in zip(rows, reference, strict=True):
        for key in ("loss", "loss_coarse", "loss_fine"):
            assert row[key] == pytest.approx(ref[key], rel=LOSS_RTOL), (row["step"], key)


def assert_same_training(ours: Path, reference: Path) -> None:
    """Parameters and Adam moments of two checkpoint folders agree to rounding."""
    weights = torch.load(ours / "pixel_nerf_latest", weights_only=True)
    expected = torch.load(reference / "pixel_nerf_latest", weights_only=True)
    assert weights.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(weights[name], value, rtol=0.0, atol=PARAM_ATOL,
                                   msg=lambda m, name=name: f"{name}: {m}")
    state = torch.load(ours / "train_state.pt", weights_only=True)["optimizer"]["state"]
    ref_state = torch.load(reference / "train_state.pt", weights_only=True)["optimizer"]["state"]
    assert state.keys() == ref_state.keys()
    for index, moments in ref_state.items():
        first, ref_first = state[index]["exp_avg"], moments["exp_avg"]
        assert (first - ref_first).norm() <= MOMENT_RTOL * ref_first.norm(), index


def test_two_ranks_train_as_one_process_and_resume_with_one(experiment, tmp_path):
    job = torchrun(experiment, tmp_path / "ddp", steps=8)
    one_process(experiment, tmp_path / "ref", steps=8)
    log = finish(job, tmp_path / "ddp")
    assert job.returncode == 0, log
    ddp, ref = tmp_path / "ddp", tmp_path / "ref"
    assert_losses_match(read_losses(ddp / "out/losses.csv"), read_losses(ref / "out/losses.csv"))
    assert_same_training(ddp / "ck", ref / "ck")
    # Rank 0 alone reports: one summary line, one TensorBoard file, one picture.
    assert sum(line.startswith('{"steps": 8') for line in log.splitlines()) == 1, log
    assert len(list((ddp / "out/tb").glob("events.*"))) == 1
    assert [p.name for p in (ddp / "out/vis").iterdir()] == ["step-0000008.png"]
    # The world-size-2 checkpoint resumes in one process exactly where one process goes on.
    one_process(experiment, ddp, steps=12)
    one_process(experiment, ref, steps=12)
    assert_losses_match(read_losses(ddp / "out/losses.csv"), read_losses(ref / "out/losses.csv"))
    assert_same_training(ddp / "ck", ref / "ck")


def rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of torchrun worker ``rank`` (a child of ``launcher`` with ``RANK=rank``)."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children")
    for pid in children.read_text().split():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    return None


def wait_for(condition, limit_s: float, what: str):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {limit_s} s")


def test_killed_rank_ends_the_job_with_one_line_and_the_rerun_resumes(experiment, tmp_path):
    run = tmp_path / "ddp"
    job = torchrun(experiment, run, steps=1000)
    wait_for(lambda: (run / "ck/train_state.pt").exists(), HANG_LIMIT_S, "a checkpoint")
    victim = wait_for(lambda: rank_pid(job.pid, 1), 5, "finding rank 1")
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    log = finish(job, run)
    assert job.returncode != 0
    assert time.monotonic() - killed < HANG_LIMIT_S
    errors = [line for line in log.splitlines() if line.startswith("pixelnerf: error:")]
    assert len(errors) == 1, log
    assert "rank 0 of 2: " in errors[0] and "resume from the last checkpoint" in errors[0]

    step = torch.load(run / "ck/train_state.pt", weights_only=True)["step"]
    assert step % TRAIN_KEYS["checkpoint_every"] == 0 and step > 0
    rerun = torchrun(experiment, run, steps=step + 4)
    log = finish(rerun, run)
    assert rerun.returncode == 0, log
    assert f"at step {step}" in log
    one_process(experiment, tmp_path / "ref", steps=step + 4)
    assert_losses_match(read_losses(run / "out/losses.csv"),
                        read_losses(tmp_path / "ref/out/losses.csv"))
