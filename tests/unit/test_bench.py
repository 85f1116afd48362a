"""`pixelnerf bench`: path names, and one tiny run through the command line."""

from __future__ import annotations

import pytest

from pixelnerf.bench import PUBLISHED_RAY_BATCH, path_settings
from pixelnerf.cli import main
from pixelnerf.errors import PipelineError


def test_reference_path_is_the_published_loop():
    overrides, ray_batch = path_settings("reference", 1000)
    assert overrides == {"precision": "fp32", "fold_latent": False, "compile": False,
                         "mlp_kernel": "published",
                         "chunk_points": PUBLISHED_RAY_BATCH}
    assert ray_batch == PUBLISHED_RAY_BATCH


def test_path_options_change_only_what_they_name():
    assert path_settings("bf16", 1000) == ({"precision": "bf16", "chunk_points": None}, 1000)
    overrides, _ = path_settings("tf32+nofold+eager", 1000)
    assert overrides == {"precision": "tf32", "chunk_points": None, "fold_latent": False,
                         "compile": False}
    assert path_settings("fp32+fold+compile", 7)[0]["compile"] is True


@pytest.mark.parametrize("path", ["fp16", "bf16+fast", "bf16+fold+fold", ""])
def test_an_unknown_path_is_one_error_naming_it(path):
    with pytest.raises(PipelineError, match="bench path"):
        path_settings(path, 1000)


def test_a_tiny_bench_prints_one_row_per_path(capsys, project_root):
    config = project_root / "config/experiments/demo.yaml"
    code = main(["bench", "--config", str(config), "--device", "cpu", "--objects", "1",
                 "--views", "1", "--image-size", "8", "--paths", "reference,fp32+nofold"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    rows = [line.split() for line in out if line.split()[:1] in (["reference"], ["fp32+nofold"])]
    assert [row[0] for row in rows] == ["reference", "fp32+nofold"]
    assert all(float(row[1].replace(",", "")) > 0 for row in rows)  # rays/s
    assert rows[0][-1] == "1.00x"
