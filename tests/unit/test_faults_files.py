"""Files changed behind the pipeline's back: a render deleted or truncated after its object was
marked finished is named (object and file) by the metrics step and rendered again, alone, by
the next run; a truncated dataset image or camera file is one line naming it from every step
that reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.untrained import metrics_args, render_args, untrained_work

from pixelnerf.cli import main

SYNTH = {"categories": ["chair", "car"], "train_objects": 1, "val_objects": 0,
         "test_objects": 1, "views": 4, "image_size": 16}


@pytest.fixture()
def work(tmp_path) -> Path:
    return untrained_work(tmp_path, SYNTH, steps=2, checkpoint_every=2, val_every=0,
                          vis_every=0)


def render(work: Path, monkeypatch) -> int:
    monkeypatch.chdir(work)
    return main(render_args("r"))


def metrics(work: Path, monkeypatch) -> int:
    monkeypatch.chdir(work)
    return main(metrics_args("r", "m.csv"))


def train(work: Path, monkeypatch) -> int:
    monkeypatch.chdir(work)
    return main(["train", "--config", "demo.yaml", "--data-root", "data", "--checkpoints",
                 "ckpt", "--out", "t", "--device", "cpu"])


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("pixelnerf: error:")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    return errors[0]


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*.png")}


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_damaged_render_is_named_and_only_its_object_rendered_again(
        work: Path, monkeypatch, capsys, damage: str) -> None:
    assert render(work, monkeypatch) == 0
    objects = sorted(p.parent for p in (work / "r" / "1v").rglob("done.json"))
    assert len(objects) == 2
    victim = sorted(objects[0].glob("*.png"))[1]
    good = {p: p.read_bytes() for p in (work / "r" / "1v").rglob("*.png")}
    before = mtimes(work / "r")
    if damage == "deleted":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:40])
    capsys.readouterr()

    assert metrics(work, monkeypatch) == 2
    line = error_line(capsys)
    object_id = str(objects[0].relative_to(work / "r" / "1v"))
    assert f"render r/1v/{object_id}/{victim.name} " in line
    assert f"its object {object_id} is marked rendered" in line
    assert not (work / "m.csv").exists()
    # Un-marked: the render job's output is gone (the workflow reruns it) and the object is
    # unfinished; the other object is untouched.
    assert not (work / "r" / "1v" / "shard-0-of-1.json").exists()
    assert not (objects[0] / "done.json").exists() and (objects[1] / "done.json").exists()

    assert render(work, monkeypatch) == 0
    assert "1 objects rendered, 1 already done" in capsys.readouterr().out
    after = mtimes(work / "r")
    assert {k for k in after if after[k] != before.get(k)} <= {
        str(p.relative_to(work / "r")) for p in objects[0].glob("*.png")}
    assert {p: p.read_bytes() for p in (work / "r" / "1v").rglob("*.png")} == good
    assert metrics(work, monkeypatch) == 0


def test_the_render_step_itself_redoes_an_object_whose_file_is_gone(
        work: Path, monkeypatch, capsys) -> None:
    assert render(work, monkeypatch) == 0
    victim = sorted((work / "r" / "1v").rglob("*.png"))[-1]
    victim.write_bytes(b"")
    capsys.readouterr()
    assert render(work, monkeypatch) == 0
    assert "1 objects rendered, 1 already done" in capsys.readouterr().out
    assert victim.stat().st_size > 0


def _truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.mark.parametrize("step", ["train", "render", "metrics"])
@pytest.mark.parametrize("kind", ["image", "cameras"])
def test_a_truncated_dataset_file_is_one_line_naming_it(
        work: Path, monkeypatch, capsys, step: str, kind: str) -> None:
    if step == "metrics":
        assert render(work, monkeypatch) == 0
    split = "train" if step == "train" else "test"
    listed = (work / "data" / "demo").rglob(f"*{split}.lst")
    obj = next(p.parent / name for p in sorted(listed) for name in p.read_text().split())
    target = sorted((obj / "image").iterdir())[-1] if kind == "image" else obj / "cameras.npz"
    _truncate(target)
    capsys.readouterr()
    assert {"train": train, "render": render, "metrics": metrics}[step](work, monkeypatch) == 2
    assert f"data/demo/{target.relative_to(work / 'data' / 'demo')}" in error_line(capsys)
