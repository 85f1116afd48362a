"""Checkpoints: atomic save with backup, exact resume, corrupt files, and a killed CLI run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelnerf.cli import main
from pixelnerf.errors import PipelineError
from pixelnerf.model import PixelNeRF, load_checkpoint
from pixelnerf.train.checkpoint import BACKUP, LATEST, STATE, STATE_BACKUP, Checkpointer
from pixelnerf.train.monitor import read_losses

pytestmark = pytest.mark.heavy  # tens of seconds in all: run first (tests/conftest.py)

TINY_MODEL = {
    "use_encoder": True, "use_xyz": True, "use_code": True, "use_viewdirs": True,
    "code": {"num_freqs": 2, "freq_factor": 1.5, "include_input": True},
    "encoder": {"backbone": "resnet18", "pretrained": False, "num_layers": 2,
                "use_first_pool": False},
    "mlp_coarse": {"type": "resnet", "n_blocks": 2, "d_hidden": 16, "combine_layer": 1,
                   "combine_type": "average"},
    "mlp_fine": {"type": "resnet", "n_blocks": 2, "d_hidden": 16, "combine_layer": 1,
                 "combine_type": "average"},
}


def small_run(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, optimizer


def take_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, n: int) -> None:
    for _ in range(n):
        optimizer.zero_grad()
        model(torch.randn(5, 4)).pow(2).mean().backward()
        optimizer.step()


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_save_resume_restores_weights_optimizer_step_and_rng(tmp_path):
    model, optimizer = small_run()
    take_steps(model, optimizer, 3)
    saver = Checkpointer(tmp_path)
    saver.save(model, optimizer, step=3, seconds=1.5)
    expected = (torch.rand(3), np.random.rand(), random.random())
    take_steps(model, optimizer, 2)  # diverge before resuming

    fresh, fresh_opt = small_run(seed=1)
    resumed = Checkpointer(tmp_path).resume(fresh, fresh_opt)
    assert resumed.step == 3 and resumed.seconds == 1.5
    assert (torch.rand(3), np.random.rand(), random.random())[1:] == expected[1:]
    # Same weights and optimizer state as at the save: the next steps agree exactly.
    reference, reference_opt = small_run()
    take_steps(reference, reference_opt, 3)
    for a, b in zip(fresh.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert fresh_opt.state_dict()["state"][0]["step"] == 3


def test_save_keeps_the_previous_checkpoint_as_backup(tmp_path):
    model, optimizer = small_run()
    saver = Checkpointer(tmp_path)
    saver.save(model, optimizer, 1, 0.0)
    first = files(tmp_path)
    take_steps(model, optimizer, 1)
    saver.save(model, optimizer, 2, 0.0)
    second = files(tmp_path)
    assert second[BACKUP] == first[LATEST] and second[STATE_BACKUP] == first[STATE]
    assert second[LATEST] != first[LATEST]
    assert not [n for n in second if n.endswith(".tmp")]


def test_truncated_latest_falls_back_to_backup_with_one_warning(tmp_path, capsys):
    model, optimizer = small_run()
    saver = Checkpointer(tmp_path)
    saver.save(model, optimizer, 10, 0.0)
    take_steps(model, optimizer, 1)
    saver.save(model, optimizer, 20, 0.0)
    data = (tmp_path / LATEST).read_bytes()
    (tmp_path / LATEST).write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    resumed = Checkpointer(tmp_path).resume(*small_run(seed=2))
    assert resumed.step == 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pixelnerf: warning:") and LATEST in err[0]


def test_a_corrupt_latest_never_overwrites_a_good_backup(tmp_path):
    model, optimizer = small_run()
    saver = Checkpointer(tmp_path)
    saver.save(model, optimizer, 10, 0.0)
    saver.save(model, optimizer, 20, 0.0)
    (tmp_path / LATEST).write_bytes(b"garbage")
    good_backup = (tmp_path / BACKUP).read_bytes()
    again = Checkpointer(tmp_path, warn_fn=lambda _: None)
    again.resume(model, optimizer)
    again.save(model, optimizer, 30, 0.0)
    assert (tmp_path / BACKUP).read_bytes() == good_backup


def test_both_corrupt_is_one_error_line_and_nothing_is_deleted(tmp_path):
    model, optimizer = small_run()
    saver = Checkpointer(tmp_path)
    saver.save(model, optimizer, 10, 0.0)
    saver.save(model, optimizer, 20, 0.0)
    for name in (LATEST, BACKUP):
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 3])
    before = files(tmp_path)
    with pytest.raises(PipelineError) as info:
        Checkpointer(tmp_path).resume(*small_run())
    assert "\n" not in str(info.value) and LATEST in str(info.value) and BACKUP in str(info.value)
    assert files(tmp_path) == before


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    assert Checkpointer(tmp_path / "none").resume(*small_run()) is None


def test_model_file_is_a_plain_state_dict_with_the_model_keys(tmp_path):
    model = PixelNeRF.from_config(TINY_MODEL)
    optimizer = torch.optim.Adam(model.parameters())
    Checkpointer(tmp_path).save(model, optimizer, 1, 0.0)
    state = torch.load(tmp_path / LATEST, weights_only=True)
    assert isinstance(state, dict) and set(state) == set(model.state_dict())
    other = PixelNeRF.from_config(TINY_MODEL)
    load_checkpoint(tmp_path / LATEST, other)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)


# --- the command line, killed and rerun -----------------------------------------------------


def run_cli(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "pixelnerf.cli", "train", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


@pytest.fixture(scope="module")
def demo_experiment(tmp_path_factory, project_root):
    """A tiny demo dataset and an experiment config training a tiny model on it."""
    from helpers.training import make_experiment

    return make_experiment(tmp_path_factory.mktemp("train_cli"), project_root)


def test_killed_training_resumes_from_its_last_checkpoint(demo_experiment, monkeypatch, capsys):
    work, config = demo_experiment
    steps, every = 40, 8

    def run_args(name: str) -> list[str]:
        return ["--config", str(config), "--data-root", "data", "--checkpoints", f"ckpt/{name}",
                "--out", f"out/{name}", "--device", "cpu", "--steps", str(steps)]

    args = run_args("a")
    proc = run_cli(args, work)
    state = work / "ckpt/a" / STATE
    deadline = time.time() + 240
    # Kill (SIGKILL, no clean-up) once the second checkpoint exists, mid-interval.
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and torch.load(state, weights_only=True)["step"] >= 2 * every:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(state, weights_only=True)["step"]
    assert killed_at % every == 0 and killed_at < steps
    before = read_losses(work / "out/a/losses.csv")
    assert [r["step"] for r in before][:killed_at] == list(range(killed_at))

    out, err = run_cli(args, work).communicate(timeout=300)
    assert f"at step {killed_at}" in out, err[-2000:]
    done = json.loads((work / "out/a/done.json").read_text())
    assert done["steps"] == steps
    after = read_losses(work / "out/a/losses.csv")
    assert [r["step"] for r in after] == list(range(steps))  # no step lost, none repeated

    # An unbroken run of the same config gives the same loss sequence: the resume restored
    # the optimizer state and every random stream exactly. (In this process, on one thread
    # as the command's: a fresh process would only add seconds of imports.)
    monkeypatch.chdir(work)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", *run_args("b")]) == 0
    finally:
        torch.set_num_threads(threads)
    reference = read_losses(work / "out/b/losses.csv")
    assert len(reference) == steps
    np.testing.assert_allclose([r["loss"] for r in after], [r["loss"] for r in reference],
                               rtol=1e-5)

    # A rerun after done does nothing and succeeds.
    mtime = (work / "out/a/done.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["train", *args]) == 0
    assert "already done" in capsys.readouterr().out
    assert (work / "out/a/done.json").stat().st_mtime_ns == mtime


def test_cli_with_both_checkpoints_corrupt_prints_one_error_line(demo_experiment):
    work, config = demo_experiment
    ckpt = work / "ckpt/corrupt"
    ckpt.mkdir(parents=True)
    for name in (LATEST, BACKUP, STATE, STATE_BACKUP):
        (ckpt / name).write_bytes(b"\x00" * 10)
    proc = run_cli(["--config", str(config), "--data-root", "data", "--checkpoints",
                    str(ckpt), "--out", "out/corrupt", "--device", "cpu", "--steps", "4"], work)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("pixelnerf: error:"), err
    assert sorted(p.name for p in ckpt.iterdir()) == sorted((LATEST, BACKUP, STATE, STATE_BACKUP))
    assert not (work / "out/corrupt/done.json").exists()


def test_training_ignores_the_evaluation_settings_of_the_renderer(demo_experiment):
    """renderer.precision and renderer.compile are for evaluation: training (and its
    validation) keeps fp32 or train.bf16, on eager modules."""
    import yaml

    from pixelnerf.train.loop import build_run

    work, config = demo_experiment
    experiment = yaml.safe_load(config.read_text())
    experiment["renderer"].update(precision="bf16", compile=True)
    run = build_run(experiment, work / "data", torch.device("cpu"), steps=1)
    assert run.renderer.config.precision == "fp32"
    assert run.renderer.config.compile is False
