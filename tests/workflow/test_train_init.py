"""Fine-tuning (``train.init``): a run without a checkpoint starts from given weights,
loaded strictly; another run's files are moved aside, a rerun of the same one resumes;
the workflow switches weights and the step budget from the command line."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
import yaml
from helpers.workflow import make_workspace, output_text, snakemake

from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_torch_save
from pixelnerf.model import PixelNeRF
from pixelnerf.model.checkpoint import read_state_dict
from pixelnerf.train.init import INIT_RECORD
from pixelnerf.train.loop import RunPaths, train

CPU = torch.device("cpu")


@pytest.fixture()
def tiny(tmp_path, project_root):
    from helpers.training import make_experiment

    work, config = make_experiment(tmp_path, project_root, train={
        "val_objects": 0, "checkpoint_every": 2, "lr_warmup": 0, "lr": 1e-12,
        "lr_schedule": "constant", "lr_final": 0.0})
    experiment = yaml.safe_load(config.read_text())
    torch.manual_seed(123)
    weights = tmp_path / "elsewhere" / "pixel_nerf_latest"
    model = PixelNeRF.from_config(experiment["model"], pretrained_encoder=False)
    state = model.state_dict()
    atomic_torch_save(state, weights)
    paths = RunPaths(checkpoints=tmp_path / "ck" / "demo", out=tmp_path / "results" / "train")
    return {"work": work, "experiment": experiment, "weights": weights, "state": state,
            "parameters": [k for k, _ in model.named_parameters()], "paths": paths}


def test_finetune_moves_the_old_run_aside_starts_from_the_weights_and_resumes(tiny) -> None:
    paths, experiment = tiny["paths"], tiny["experiment"]
    train(experiment, tiny["work"] / "data", paths, CPU, steps=2)  # a run from scratch
    old = read_state_dict(paths.checkpoints / "pixel_nerf_latest")

    train(experiment, tiny["work"] / "data", paths, CPU, steps=2, init=str(tiny["weights"]))
    aside = sorted(p.name for p in paths.checkpoints.parent.iterdir() if p != paths.checkpoints)
    assert len(aside) == 1 and re.fullmatch(r"demo\.\d{8}T\d{6}Z", aside[0])
    kept = read_state_dict(paths.checkpoints.parent / aside[0] / "pixel_nerf_latest")
    assert all(torch.equal(kept[k], old[k]) for k in old)  # never deleted, never changed
    assert any(p.name.startswith("train.") for p in paths.out.parent.iterdir())
    assert (paths.checkpoints / INIT_RECORD).is_file()
    tuned = read_state_dict(paths.checkpoints / "pixel_nerf_latest")
    parameters = tiny["parameters"]  # lr 1e-12: two steps leave the start weights
    for key in parameters:
        torch.testing.assert_close(tuned[key], tiny["state"][key], rtol=0, atol=1e-6)
    assert not all(torch.equal(tuned[k], old[k]) for k in parameters)

    # a larger budget with the same init resumes the fine-tune: nothing moved again
    summary = train(experiment, tiny["work"] / "data", paths, CPU, steps=4,
                    init=str(tiny["weights"]))
    assert summary["steps"] == 4
    assert len([p for p in paths.checkpoints.parent.iterdir()]) == 2
    assert len(paths.losses.read_text().strip().splitlines()) == 1 + 4


def test_init_is_a_strict_load_and_never_the_runs_own_folder(tiny, tmp_path) -> None:
    paths, experiment = tiny["paths"], tiny["experiment"]
    partial = dict(tiny["state"])
    partial.pop(next(iter(partial)))
    broken = tmp_path / "broken.pt"
    atomic_torch_save(partial, broken)
    with pytest.raises(PipelineError, match="does not fit the model"):
        train(experiment, tiny["work"] / "data", paths, CPU, steps=2, init=str(broken))
    inside = paths.checkpoints / "published.pt"
    atomic_torch_save(tiny["state"], inside)
    with pytest.raises(PipelineError, match="own checkpoint folder"):
        train(experiment, tiny["work"] / "data", paths, CPU, steps=2, init=str(inside))
    config = copy.deepcopy(experiment)
    config["train"]["init"] = "published"
    with pytest.raises(PipelineError, match="--init"):
        train(config, tiny["work"] / "data", paths, CPU, steps=2)
    with pytest.raises(PipelineError, match="does not exist"):
        train(experiment, tiny["work"] / "data", paths, CPU, steps=2,
              init=str(tmp_path / "missing"))


def test_command_line_switches_weights_steps_and_init(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    plan = snakemake(ws, "-n", "-p", "results/tables/sn64.csv", "--config", "weights=train",
                     "steps=1234")
    text = output_text(plan)
    assert plan.returncode == 0, text[-3000:]
    assert re.search(r"^rule train:", text, re.M) and "--steps 1234" in text
    assert "--weights train" in text
    published = snakemake(ws, "-n", "results/tables/sn64.csv")
    assert published.returncode == 0 and not re.search(r"^rule train:", output_text(published),
                                                        re.M)
    sn64 = ws / "config" / "experiments" / "sn64.yaml"
    config = yaml.safe_load(sn64.read_text())
    config["name"] = "sn64_tuned"
    config["train"].update(weights="train", init="published")
    (ws / "config" / "experiments" / "sn64_tuned.yaml").write_text(yaml.safe_dump(config))
    tuned = snakemake(ws, "-n", "-p", "results/sn64_tuned/train/done.json")
    text = output_text(tuned)
    assert tuned.returncode == 0, text[-3000:]
    assert "--init checkpoints/sn64/pixel_nerf_latest" in text
    assert re.search(r"^(local)?rule download:", text, re.M)
