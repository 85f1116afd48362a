"""A full disk (ENOSPC, injected through the ``pixelnerf.io`` test hook) while a render, a
metrics CSV, a table or a checkpoint is written: the command prints one error line, leaves no
temporary or half-written file, and once the fault is gone the same command completes with
the same output as a run that never failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import PROJECT_ROOT
from helpers.untrained import metrics_args, render_args, untrained_work

from pixelnerf.cli import main
from pixelnerf.errors import PipelineError
from pixelnerf.io import FAULT_ENOSPC_ENV, atomic_save_png, atomic_torch_save, atomic_write_text

pytestmark = pytest.mark.heavy  # tens of seconds in all: run first (tests/conftest.py)

SYNTH = {"categories": ["chair", "car"], "train_objects": 2, "val_objects": 0,
         "test_objects": 1, "views": 4, "image_size": 16}


def cli(args: list[str], cwd: Path, fault: str) -> subprocess.CompletedProcess:
    """The command in a fresh process with the fault hook set."""
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENOSPC_ENV}
    env["OMP_NUM_THREADS"] = "1"
    env[FAULT_ENOSPC_ENV] = fault
    return subprocess.run([sys.executable, "-m", "pixelnerf.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_one_disk_full_line(result: subprocess.CompletedProcess, name: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("pixelnerf: error:")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]), result.stderr
    assert "disk full while writing" in errors[0] and name in errors[0]


def in_process(args: list[str], cwd: Path, monkeypatch) -> int:
    """The command in this process, without the fault hook (faster than a fresh process)."""
    monkeypatch.chdir(cwd)
    monkeypatch.delenv(FAULT_ENOSPC_ENV, raising=False)
    return main(args)


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (temporary files included) -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return untrained_work(tmp_path_factory.mktemp("disk"), SYNTH, steps=8, checkpoint_every=4,
                          val_every=0, vis_every=0)


def table_args(metrics: str, out: str) -> list[str]:
    return ["table", "--config", "demo.yaml", "--metrics", metrics, "--paper",
            str(PROJECT_ROOT / "config" / "paper" / "demo.csv"), "--out-csv", f"{out}/t.csv",
            "--out-md", f"{out}/t.md", "--out-plot", f"{out}/t.png"]


def renders(folder: Path) -> dict[str, bytes]:
    """The PNGs and each done.json without its timing."""
    out = {}
    for name, data in files(folder).items():
        if name.endswith("done.json"):
            data = b"".join(ln for ln in data.splitlines(True) if b'"seconds"' not in ln)
        out[name] = data
    return out


def test_render_metrics_and_table_survive_a_full_disk(work: Path, monkeypatch) -> None:
    # The reference: the three steps with room to spare.
    for args in (render_args("ref"), metrics_args("ref", "ref.csv"), table_args("ref.csv", "tref")):
        assert in_process(args, work, monkeypatch) == 0

    # Render: the second view of an object fails; that object has no done.json (it is
    # rendered again next time), the rerun writes the reference's bytes.
    failed = cli(render_args("r"), work, fault="000002.png")
    assert_one_disk_full_line(failed, "000002.png")
    assert no_temporaries(work / "r") and not list((work / "r").rglob("done.json"))
    assert in_process(render_args("r"), work, monkeypatch) == 0
    assert renders(work / "r") == renders(work / "ref")

    failed = cli(metrics_args("ref", "m/scores.csv"), work, fault="scores.csv")
    assert_one_disk_full_line(failed, "scores.csv")
    assert files(work / "m") == {}
    assert in_process(metrics_args("ref", "m/scores.csv"), work, monkeypatch) == 0
    assert (work / "m" / "scores.csv").read_bytes() == (work / "ref.csv").read_bytes()

    failed = cli(table_args("ref.csv", "t"), work, fault="t.csv")
    assert_one_disk_full_line(failed, "t.csv")
    assert files(work / "t") == {}
    assert in_process(table_args("ref.csv", "t"), work, monkeypatch) == 0
    assert files(work / "t").keys() == files(work / "tref").keys()
    for name in ("t.csv", "t.md"):
        assert (work / "t" / name).read_bytes() == (work / "tref" / name).read_bytes()


def test_training_survives_a_full_disk_at_its_first_checkpoint(work: Path, monkeypatch) -> None:
    def train(name: str) -> list[str]:
        return ["train", "--config", "demo.yaml", "--data-root", "data", "--checkpoints",
                f"ckpt/{name}", "--out", f"train/{name}", "--device", "cpu"]

    assert in_process(train("ref"), work, monkeypatch) == 0
    failed = cli(train("full"), work, fault="train_state.pt")
    assert_one_disk_full_line(failed, "train_state.pt")
    # The model file written just before has no state: removed, so the rerun starts afresh
    # instead of stopping at an unusable checkpoint.
    assert files(work / "ckpt" / "full") == {}
    assert no_temporaries(work / "train" / "full")
    assert in_process(train("full"), work, monkeypatch) == 0
    assert files(work / "ckpt" / "full")["pixel_nerf_latest"] == \
        files(work / "ckpt" / "ref")["pixel_nerf_latest"]
    assert (work / "train" / "full" / "losses.csv").read_bytes() == \
        (work / "train" / "ref" / "losses.csv").read_bytes()


@pytest.mark.parametrize("write", [
    lambda p: atomic_write_text(p, "x" * 10000),
    lambda p: atomic_save_png(p, torch.zeros(4, 4, 3, dtype=torch.uint8).numpy()),
    lambda p: atomic_torch_save({"a": torch.ones(3)}, p),
], ids=["text", "png", "torch"])
def test_the_hook_matches_names_and_leaves_the_old_file(tmp_path, monkeypatch, write) -> None:
    target = tmp_path / "sub" / "out.bin"
    target.parent.mkdir()
    target.write_bytes(b"old")
    monkeypatch.setenv(FAULT_ENOSPC_ENV, "*.bin")
    with pytest.raises(PipelineError, match=r"disk full while writing .*out\.bin"):
        write(target)
    assert files(tmp_path) == {"sub/out.bin": b"old"}
    monkeypatch.setenv(FAULT_ENOSPC_ENV, "other*")
    write(target)
    assert target.read_bytes() != b"old"
