"""What the Snakefile's glue relies on: a PipelineError as one line and SystemExit (which
Snakemake does not wrap into a traceback), signatures kept for Snakemake's input functions;
and the folder of real photographs (pixelnerf.workflow.photos)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pixelnerf.errors import PipelineError
from pixelnerf.workflow.glue import by_exp, one_line
from pixelnerf.workflow.photos import (
    mask_files,
    photo_names,
    photo_path,
    real_photos,
    write_index,
)


def test_a_pipeline_error_ends_the_run_with_one_line(capsys: pytest.CaptureFixture) -> None:
    def params(wildcards, output):  # the signature Snakemake reads
        raise PipelineError("unknown experiment 'x':\n  nope.yaml does not exist")

    wrapped = one_line(params)
    # Snakemake passes an input function only the arguments its signature names
    assert list(inspect.signature(wrapped).parameters) == ["wildcards", "output"]
    with pytest.raises(SystemExit) as info:
        wrapped(SimpleNamespace(exp="x"), output=None)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err == "pixelnerf workflow: error: unknown experiment 'x': nope.yaml does not exist\n"


def test_other_errors_and_results_pass_through() -> None:
    assert by_exp(lambda exp: f"results/{exp}.csv")(SimpleNamespace(exp="demo")) == (
        "results/demo.csv"
    )

    def broken(exp: str) -> str:
        raise KeyError(exp)  # a bug, not bad input: Snakemake shows its traceback

    with pytest.raises(KeyError):
        by_exp(broken)(SimpleNamespace(exp="demo"))
    assert list(inspect.signature(by_exp(broken)).parameters) == ["wildcards"]


def test_photos_of_a_folder(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.png", "a_mask.png", "c_normalize.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert real_photos(tmp_path) == {"a": str(tmp_path / "a.png"), "b": str(tmp_path / "b.JPG")}
    assert photo_names(tmp_path) == ["a", "b"]
    assert photo_path(tmp_path, "b") == str(tmp_path / "b.JPG")
    assert mask_files(tmp_path, "a") == [str(tmp_path / "a_mask.png")]
    assert mask_files(tmp_path, "b") == []
    with pytest.raises(PipelineError, match=r"no photo named c in .* \(found: a, b\)"):
        photo_path(tmp_path, "c")


def test_no_photos_is_one_line(tmp_path: Path) -> None:
    assert real_photos(tmp_path / "absent") == {}
    with pytest.raises(PipelineError, match="no photos in .*empty/ "):
        photo_names(tmp_path / "empty")


def test_the_index_names_each_photo_s_folder(tmp_path: Path) -> None:
    index, log = tmp_path / "index.json", tmp_path / "index.log"
    write_index(["a", "b"], ["r/a/done.json", "r/b/done.json"], str(index), str(log))
    assert json.loads(index.read_text()) == {"a": "r/a", "b": "r/b"}
    assert log.read_text() == f"2 photos indexed in {index}\n"
