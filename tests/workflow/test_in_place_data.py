"""Data and weights a user already has (`in_place`): validated where they lie, never
downloaded, never written into; a broken one stops the run with the check's one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml
from helpers.training import TINY_ENCODER, TINY_MLP
from helpers.workflow import make_workspace, output_text, snakemake

from pixelnerf.io import atomic_torch_save
from pixelnerf.model import PixelNeRF


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_dataset_and_weights_in_place(tmp_path: Path, reference_root: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    shared = tmp_path / "shared"
    shutil.copytree(reference_root / "datasets" / "nmr", shared / "data" / "NMR_Dataset")
    # an experiment on the shared NMR copy with the published weights (a tiny model)
    config = yaml.safe_load((ws / "config" / "experiments" / "sn64.yaml").read_text())
    config["name"] = "mine"
    config["model"].update(mlp_coarse=TINY_MLP, mlp_fine=TINY_MLP, encoder=TINY_ENCODER)
    config["train"]["published_name"] = "mine"
    (ws / "config" / "experiments" / "mine.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(ws / "config" / "paper" / "demo.csv", ws / "config" / "paper" / "mine.csv")
    model = PixelNeRF.from_config(config["model"], pretrained_encoder=False)
    weights = shared / "weights" / "mine" / "pixel_nerf_latest"
    atomic_torch_save(model.state_dict(), weights)
    options = ["--config", f"data_root={shared / 'data'}",
               f"checkpoints_root={shared / 'weights'}", "in_place=[nmr, pretrained]"]
    before = snapshot(shared)

    plan = snakemake(ws, "-n", "results/tables/mine.csv", *options)
    text = output_text(plan)
    assert plan.returncode == 0, text[-3000:]
    planned = set(re.findall(r"^(?:local)?rule (\w+):", text, re.M))
    assert {"validate_data", "check_weights", "render"} <= planned
    assert "download" not in planned and "train" not in planned

    checked = snakemake(ws, "results/mine/validate-data.txt", "results/mine/weights-check.json",
                        *options)
    assert checked.returncode == 0, output_text(checked)[-3000:]
    assert "is valid" in (ws / "results" / "mine" / "validate-data.txt").read_text()
    assert snapshot(shared) == before, "something was written into the data in place"

    # broken data and broken weights: each check stops with its one line
    image = next((shared / "data" / "NMR_Dataset").rglob("image/*.png"))
    image.write_bytes(b"not a png")
    state = model.state_dict()
    state.pop(next(iter(state)))
    atomic_torch_save(state, weights)
    shutil.rmtree(ws / "results" / "mine")
    broken = snakemake(ws, "--keep-going", "results/mine/validate-data.txt",
                       "results/mine/weights-check.json", *options)
    assert broken.returncode != 0
    assert str(image) in broken.stderr, broken.stderr[-2000:]
    assert "does not fit the model" in broken.stderr, broken.stderr[-2000:]

    unknown = snakemake(ws, "-n", "results/mine/validate-data.txt", "--config",
                        "in_place=[nmrr]")
    assert unknown.returncode != 0 and "in_place: nmrr" in output_text(unknown)
