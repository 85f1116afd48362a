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
    assert path_settings("bf16+torch+autotune", 7)[0] == {
        "precision": "bf16", "chunk_points": None, "mlp_kernel": "torch",
        "compile": "max-autotune"}


@pytest.mark.parametrize("path", ["fp16", "bf16+fast", "bf16+fold+fold", "bf16+fold+nofold",
                                  "bf16+compile+autotune", ""])
def test_an_unknown_path_is_one_error_naming_it(path):
    with pytest.raises(PipelineError, match="bench path"):
        path_settings(path, 1000)


def test_a_tiny_bench_prints_one_row_per_path(capsys, project_root):
    import torch

    torch._dynamo.reset()  # graphs compiled by earlier tests would serve the autotune path
    config = project_root / "config/experiments/demo.yaml"
    paths = ["reference", "fp32+nofold+eager", "fp32+torch+autotune"]
    code = main(["bench", "--config", str(config), "--device", "cpu", "--objects", "2",
                 "--views", "1", "--image-size", "8", "--paths", ",".join(paths)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[1].split()[-4:] == ["ref", "warm-up", "s", "compiles"]
    rows = [line.split() for line in out if line.split()[:1] in [[path] for path in paths]]
    assert [row[0] for row in rows] == paths
    assert all(float(row[1].replace(",", "")) > 0 for row in rows)  # rays/s
    assert rows[0][-3] == "1.00x"
    # Eager paths compile nothing; the padded autotune path compiles its one MLP once, in
    # the warm-up (which its time shows), and nothing for the timed objects.
    assert [row[-1] for row in rows] == ["0+0", "0+0", "1+0"]
    warmup = [float(row[-2]) for row in rows]
    assert min(warmup) >= 0 and warmup[2] > warmup[1]
