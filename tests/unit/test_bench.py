"""`pixelnerf bench`: path names, the default list, the measured peak, and one tiny run
through the command line."""

from __future__ import annotations

import pytest
import torch

from pixelnerf.cli import main
from pixelnerf.commands.bench import experiment_file
from pixelnerf.errors import PipelineError
from pixelnerf.eval.bench import (
    PUBLISHED_RAY_BATCH,
    default_paths,
    matmul_peaks,
    path_settings,
)
from pixelnerf.model.plan import InferencePlan


def test_reference_path_is_the_published_loop():
    overrides, ray_batch = path_settings("reference", 1000)
    assert overrides == {"precision": "fp32", "fold_latent": False, "compile": False,
                         "mlp_kernel": "published", "chunk_points": PUBLISHED_RAY_BATCH}
    assert ray_batch == PUBLISHED_RAY_BATCH


def test_path_fields_change_only_what_they_name():
    assert path_settings("default", 1000) == ({}, 1000)
    assert path_settings("precision=bf16", 1000) == ({"precision": "bf16"}, 1000)
    overrides, _ = path_settings("precision=tf32+fold_latent=false+compile=false", 1000)
    assert overrides == {"precision": "tf32", "fold_latent": False, "compile": False}
    assert path_settings("compile=true", 7)[0]["compile"] is True
    assert path_settings("kernel=torch+compile=max-autotune+chunk_points=4096", 7)[0] == {
        "mlp_kernel": "torch", "compile": "max-autotune", "chunk_points": 4096}


@pytest.mark.parametrize("path", ["fp16", "bf16+fold", "kernel", "speed=fast",
                                  "compile=true+compile=false", ""])
def test_an_unknown_path_is_one_error_naming_it(path):
    with pytest.raises(PipelineError, match="bench path"):
        path_settings(path, 1000)


def test_the_default_list_changes_one_plan_field_a_line():
    cpu = torch.device("cpu")
    plan = InferencePlan(kernel="torch", compile="eager", fold_latent=True, precision="fp32")
    paths = default_paths(plan, cpu)
    assert paths[:2] == ["reference", "default"]
    assert paths[2:5] == ["kernel=published", "compile=true", "fold_latent=false"]
    assert all(path.count("=") == 1 for path in paths[2:])
    compiled = InferencePlan(kernel="published", compile="dynamic", precision="bf16")
    assert default_paths(compiled, cpu)[2:] == ["kernel=torch", "compile=false",
                                                "fold_latent=true", "precision=fp32"]


def test_the_peak_is_measured_on_the_device_for_each_precision():
    peaks = matmul_peaks(torch.device("cpu"), 64)
    assert set(peaks) == {"fp32", "bf16"}
    assert all(value > 0 for value in peaks.values())


def test_config_takes_an_experiment_name_or_a_path(project_root, tmp_path):
    named = experiment_file("demo")
    assert named.samefile(project_root / "config/experiments/demo.yaml")
    copy = tmp_path / "mine.yaml"
    copy.write_text(named.read_text())
    assert experiment_file(str(copy)) == copy
    with pytest.raises(PipelineError, match="neither a file nor an experiment.*demo"):
        experiment_file("no_such_experiment")


def test_a_tiny_bench_prints_one_row_per_path(capsys):
    torch._dynamo.reset()  # graphs compiled by earlier tests would serve the autotune path
    paths = ["reference", "compile=false+fold_latent=false",
             "kernel=torch+compile=max-autotune"]
    code = main(["bench", "--config", "demo", "--device", "cpu", "--objects", "2",
                 "--views", "1", "--image-size", "8", "--paths", ",".join(paths)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[1].startswith("default inference plan: kernel torch")
    assert out[2].startswith("matmul peak measured here") and "bf16" in out[2]
    assert out[3].split()[-4:] == ["ref", "warm-up", "s", "compiles"]
    rows = [line.split() for line in out if line.split()[:1] in [[path] for path in paths]]
    assert [row[0] for row in rows] == paths
    assert all(float(row[1].replace(",", "")) > 0 for row in rows)  # rays/s
    assert all(row[4].endswith("%") for row in rows)  # of peak, on the CPU too
    assert rows[0][-3] == "1.00x"
    # Eager paths compile nothing; the padded autotune path compiles its one MLP once, in
    # the warm-up (which its time shows), and nothing for the timed objects.
    assert [row[-1] for row in rows] == ["0+0", "0+0", "1+0"]
    warmup = [float(row[-2]) for row in rows]
    assert min(warmup) >= 0 and warmup[2] > warmup[1]
