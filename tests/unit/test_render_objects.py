"""`pixelnerf render`: 8-bit truncation, files per the contract, independence from sharding,
resume that skips finished objects, stale renders redone, and the DTU camera quirk."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import yaml
from helpers.demo import merged
from helpers.untrained import demo_experiment, save_untrained_model

from pixelnerf.cli import main
from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.eval.inference import Cameras, to_uint8
from pixelnerf.eval.render import RenderJob, render_shard
from pixelnerf.io import atomic_torch_save
from pixelnerf.model import PixelNeRF

CPU = torch.device("cpu")
SYNTH = {"categories": ["chair", "car"], "train_objects": 1, "val_objects": 0,
         "test_objects": 2, "views": 5, "image_size": 16}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("render")
    experiment = demo_experiment(SYNTH)
    experiment["eval"]["ray_batch"] = 100  # several renderer calls per object
    synthesize(SynthSettings.from_mapping(SYNTH), root / "data" / "demo")
    config = root / "demo.yaml"
    config.write_text(yaml.safe_dump(experiment))
    checkpoint = save_untrained_model(experiment, root / "pixel_nerf_latest")
    return {"root": root, "experiment": experiment, "config": config, "checkpoint": checkpoint}


def _render(setup: dict, out: Path, shard: int = 0, shards: int = 1, experiment=None) -> Path:
    job = RenderJob.of_experiment(experiment or setup["experiment"], setup["root"] / "data",
                                  setup["checkpoint"], out)
    return render_shard(job, "1v", shard, shards, CPU, progress=False)


def _pngs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_truncation_to_8_bits() -> None:
    values = torch.tensor([[-0.2, 0.0, 0.5], [0.999, 1.0, 1.7], [1 / 255, 2.9999 / 255, 0.75]])
    assert to_uint8(values).tolist() == [[0, 0, 127], [254, 255, 255], [1, 2, 191]]


def test_cli_writes_pngs_done_json_last_and_manifest(setup: dict) -> None:
    out = setup["root"] / "cli"
    code = main(["render", "--config", str(setup["config"]), "--data-root",
                 str(setup["root"] / "data"), "--checkpoint", str(setup["checkpoint"]),
                 "--setting", "1v", "--shard", "1", "--shards", "2", "--out", str(out),
                 "--device", "cpu", "--no-progress"])
    assert code == 0
    manifest = json.loads((out / "1v" / "shard-1-of-2.json").read_text())
    assert manifest["setting"] == "1v" and len(manifest["objects"]) == 2
    for object_id in manifest["objects"]:
        folder = out / "1v" / object_id
        done = json.loads((folder / "done.json").read_text())
        assert done["object_id"] == object_id and done["category"] in ("chair", "car")
        assert len(done["sources"]) == 1 and done["seconds"] >= 0
        assert done["targets"] == [v for v in range(5) if v not in done["sources"]]
        assert (folder / "done.json").stat().st_mtime_ns >= max(
            p.stat().st_mtime_ns for p in folder.glob("*.png"))
        for view in done["targets"]:
            image = np.asarray(iio.imread(folder / f"{view:06d}.png"))
            assert image.shape == (16, 16, 3) and image.dtype == np.uint8


def test_results_do_not_depend_on_sharding_and_resume_skips_done(setup: dict) -> None:
    whole, split = setup["root"] / "whole", setup["root"] / "split"
    _render(setup, whole)
    for shard in range(3):
        _render(setup, split, shard, 3)
    assert _pngs(whole / "1v") == _pngs(split / "1v")

    # Drop one object's done.json (as a kill mid-object would leave it): only it is redone.
    dones = sorted((whole / "1v").rglob("done.json"))
    before = {p: p.stat().st_mtime_ns for p in dones}
    images = _pngs(whole / "1v")
    dones[0].unlink()
    _render(setup, whole)
    for path in dones[1:]:
        assert path.stat().st_mtime_ns == before[path]
    assert dones[0].exists()
    assert _pngs(whole / "1v") == images  # seeded per object: the same pixels again


def test_other_checkpoint_makes_renders_stale(setup: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _render(setup, out)
    first = _pngs(out / "1v")
    torch.manual_seed(1)
    other = PixelNeRF.from_config(setup["experiment"]["model"], pretrained_encoder=False)
    atomic_torch_save(other.state_dict(), setup["checkpoint"].with_name("other"))
    other_checkpoint = setup["checkpoint"].with_name("other")
    job = RenderJob.of_experiment(setup["experiment"], setup["root"] / "data",
                                  other_checkpoint, out)
    render_shard(job, "1v", 0, 1, CPU, progress=False)
    assert _pngs(out / "1v") != first


def test_reuse_first_object_cameras(setup: dict, tmp_path: Path, monkeypatch) -> None:
    """With the quirk on, every object is rendered with the first object's cameras."""
    import pixelnerf.eval.render as ro

    experiment = setup["experiment"]
    dataset = ro.open_split(experiment["dataset"], setup["root"] / "data",
                            experiment["eval"]["split"])
    first = dataset[0]

    class Shifted:
        """The demo split with every object but the first moved by a pose offset."""

        entries = dataset.entries

        def __len__(self) -> int:
            return len(dataset)

        def __getitem__(self, index: int) -> dict:
            item = dict(dataset[index])
            if index > 0:
                item["poses"] = item["poses"].clone()
                item["poses"][:, :3, 3] += 0.3
            return item

    monkeypatch.setattr(ro, "open_split",
                        lambda dataset_config, data_root, split, scale=1.0: Shifted())
    quirk = merged(setup["experiment"], {"eval": {"reuse_first_object_cameras": True}})
    _render(setup, tmp_path / "own")
    _render(setup, tmp_path / "quirk", experiment=quirk)
    own, reused = _pngs(tmp_path / "own" / "1v"), _pngs(tmp_path / "quirk" / "1v")
    first_id = dataset.entries[0].object_id
    assert {k: v for k, v in own.items() if k.startswith(first_id)} == {
        k: v for k, v in reused.items() if k.startswith(first_id)}
    assert own != reused
    assert Cameras.of_item(first).poses.shape == (5, 4, 4)
