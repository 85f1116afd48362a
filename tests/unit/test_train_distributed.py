"""Data-parallel training on the CPU: two gloo ranks under torchrun train as one process.

One job (a module fixture, to launch torchrun only twice): rank 1 is SIGKILLed after the
first checkpoint, the job is run again, and then resumed by one process; two tasks started
as srun starts them train as one process too. The global batch
(4 objects x 33 rays: an odd count, so the ranks' shares differ) is drawn alike on every
rank and its rays split; a one-process run of as many steps is the reference. Tolerances:
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
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import PROJECT_ROOT
from helpers.training import make_experiment

from pixelnerf.config import load_experiment
from pixelnerf.train.loop import RunPaths, train
from pixelnerf.train.monitor import read_losses

pytestmark = pytest.mark.heavy  # tens of seconds in all: run first (tests/conftest.py)

LOSS_RTOL = 1e-5
PARAM_ATOL = 1e-6
MOMENT_RTOL = 1e-4
# The ranks wait up to DIST_TIMEOUT_S on a collective, so a job that ends within
# ENDED_LIMIT_S of the kill was ended by noticing the lost rank, not by the timeout.
DIST_TIMEOUT_S = 600
ENDED_LIMIT_S = 120
RUN_LIMIT_S = 900  # a whole job on a busy machine
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


def torchrun(experiment: tuple[Path, Path], out: Path, steps: int, log: str,
             through_gpus_option: bool = False) -> subprocess.Popen:
    """Two gloo ranks of ``pixelnerf train`` under torchrun, output to ``out/<log>``;
    ``through_gpus_option``: started as ``pixelnerf train --gpus 2`` (which runs torchrun)."""
    data, config = experiment
    out.mkdir(parents=True, exist_ok=True)
    launcher = (["--gpus", "2"] if through_gpus_option else [])
    torchrun = ([] if through_gpus_option else
                ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])
    command = [sys.executable, *torchrun, "-m", "pixelnerf.cli", "train", "--config",
               str(config), "--data-root", str(data), "--checkpoints", str(out / "ck"),
               "--out", str(out / "out"), "--device", "cpu", "--steps", str(steps),
               "--dist-timeout", str(DIST_TIMEOUT_S), *launcher]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(PROJECT_ROOT))
    handle = open(out / log, "w")  # noqa: SIM115 (the child writes it until it ends)
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                            cwd=PROJECT_ROOT, start_new_session=True)


def finish(process: subprocess.Popen, out: Path, log: str, limit_s: float = RUN_LIMIT_S) -> str:
    """Wait for a torchrun job (at most ``limit_s``, then end it and all its ranks); its
    output."""
    try:
        process.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"the job did not end within {limit_s} s")
    return (out / log).read_text()


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


@pytest.fixture(scope="module")
def killed_and_rerun(experiment, tmp_path_factory) -> dict:
    """A two-rank job (torchrun) whose rank 1 is SIGKILLed after the first checkpoint, then
    run again (``pixelnerf train --gpus 2``, 4 steps past the checkpoint), beside a
    one-process run of as many steps."""
    work = tmp_path_factory.mktemp("killed")
    run = work / "ddp"
    job = torchrun(experiment, run, steps=1000, log="killed.log")
    try:
        wait_for(lambda: (run / "ck/train_state.pt").exists(), RUN_LIMIT_S, "a checkpoint")
        os.kill(wait_for(lambda: rank_pid(job.pid, 1), 5, "finding rank 1"), signal.SIGKILL)
    finally:
        killed = time.monotonic()
        killed_log = finish(job, run, "killed.log", limit_s=ENDED_LIMIT_S)
    ended_s = time.monotonic() - killed
    step = torch.load(run / "ck/train_state.pt", weights_only=True)["step"]
    rerun = torchrun(experiment, run, steps=step + 4, log="rerun.log", through_gpus_option=True)
    one_process(experiment, work / "ref", steps=step + 4)
    rerun_log = finish(rerun, run, "rerun.log")
    return {"experiment": experiment, "run": run, "ref": work / "ref", "step": step,
            "killed_code": job.returncode, "killed_log": killed_log, "ended_s": ended_s,
            "rerun_code": rerun.returncode, "rerun_log": rerun_log}


def test_killed_rank_ends_the_job_with_one_line(killed_and_rerun):
    job = killed_and_rerun
    assert job["killed_code"] != 0
    assert job["ended_s"] < ENDED_LIMIT_S
    errors = [line for line in job["killed_log"].splitlines()
              if line.startswith("pixelnerf: error:")]
    assert len(errors) == 1, job["killed_log"]
    assert "rank 0 of 2: " in errors[0] and "resume from the last checkpoint" in errors[0]
    assert job["step"] > 0 and job["step"] % TRAIN_KEYS["checkpoint_every"] == 0


def test_rerun_resumes_and_two_ranks_train_as_one_process(killed_and_rerun):
    job = killed_and_rerun
    run, ref, step = job["run"], job["ref"], job["step"]
    assert job["rerun_code"] == 0, job["rerun_log"]
    assert f"resuming from {run / 'ck' / 'pixel_nerf_latest'} at step {step}" in job["rerun_log"]
    # Every step's losses (before the kill and after the resume) and the final weights.
    assert_losses_match(read_losses(run / "out/losses.csv"), read_losses(ref / "out/losses.csv"))
    assert_same_training(run / "ck", ref / "ck")
    # Rank 0 alone reports: one summary line; one TensorBoard file per launch; its pictures.
    summaries = [line for line in job["rerun_log"].splitlines() if line.startswith('{"steps"')]
    assert len(summaries) == 1, job["rerun_log"]
    assert len(list((run / "out/tb").glob("events.*"))) == 2
    assert list((run / "out/vis").glob("step-*.png"))


def test_two_rank_checkpoint_resumes_in_one_process(killed_and_rerun):
    job = killed_and_rerun
    run, ref, step = job["run"], job["ref"], job["step"]
    one_process(job["experiment"], run, steps=step + 8)
    one_process(job["experiment"], ref, steps=step + 8)
    assert_losses_match(read_losses(run / "out/losses.csv"), read_losses(ref / "out/losses.csv"))
    assert_same_training(run / "ck", ref / "ck")




def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_srun_tasks_train_as_one_process(experiment, killed_and_rerun, tmp_path):
    """Two tasks as `srun -n 2` starts them (SLURM_* variables, no torchrun)."""
    data, config = experiment
    port = free_port()
    tasks = []
    for rank in range(2):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(PROJECT_ROOT),
                   SLURM_JOB_ID="42", SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank),
                   SLURM_STEP_NUM_TASKS="2", SLURM_STEP_NODELIST="localhost",
                   MASTER_PORT=str(port))
        tasks.append(subprocess.Popen(
            [sys.executable, "-m", "pixelnerf.cli", "train", "--config", str(config),
             "--data-root", str(data), "--checkpoints", str(tmp_path / "ck"), "--out",
             str(tmp_path / "out"), "--device", "cpu", "--steps", "2"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [task.communicate(timeout=RUN_LIMIT_S)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs
    assert outputs[0].count('{"steps": 2') == 1 and '{"steps"' not in outputs[1]
    reference = read_losses(killed_and_rerun["ref"] / "out/losses.csv")[:2]
    assert_losses_match(read_losses(tmp_path / "out/losses.csv"), reference)
