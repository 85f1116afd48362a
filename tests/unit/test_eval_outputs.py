"""`eval.outputs` (depth, coarse, include_src, compare) on the untrained tiny demo: each file
appears only when asked, has its format, holds the renderer's passes, and leaves the main
renders, their metrics and their fingerprint as without it; and the published approximate
protocol (`eval.approx.protocol: published`)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import yaml
from helpers.untrained import demo_experiment, save_untrained_model

import pixelnerf.render as R
from pixelnerf.cli import main
from pixelnerf.config import validate
from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.extra_outputs import DEPTH_LEVELS
from pixelnerf.eval.inference import Cameras, load_inference, open_split, to_uint8
from pixelnerf.eval.records import is_done
from pixelnerf.eval.render import RenderJob, render_shard
from pixelnerf.report.figures import comparison_rows

CPU = torch.device("cpu")
SIZE = 16
SYNTH = {"categories": ["chair", "car"], "train_objects": 1, "val_objects": 3,
         "test_objects": 2, "views": 4, "image_size": SIZE}
ALL_ON = {"depth": True, "coarse": True, "include_src": True, "compare": True}
EXTRA_DIRS = ("depth", "coarse", "with_src", "compare")
SCHEMA = "experiment.schema.yaml"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("outputs")
    experiment = demo_experiment(SYNTH)
    synthesize(SynthSettings.from_mapping(SYNTH), root / "data" / "demo")
    checkpoint = save_untrained_model(experiment, root / "model.pt")
    plain, extras = root / "plain", root / "extras"
    _render(root, experiment, checkpoint, plain)
    _render(root, _with_outputs(experiment, ALL_ON), checkpoint, extras)
    return {"root": root, "experiment": experiment, "checkpoint": checkpoint, "plain": plain,
            "extras": extras}


def _with_outputs(experiment: dict, outputs: dict) -> dict:
    changed = copy.deepcopy(experiment)
    changed["eval"]["outputs"] = outputs
    return changed


def _render(root: Path, experiment: dict, checkpoint: Path, out: Path,
            approx: bool = False) -> Path:
    validate(experiment, SCHEMA, "test")
    job = RenderJob.of_experiment(experiment, root / "data", checkpoint, out)
    return render_shard(job, "1v", 0, 1, CPU, progress=False, approx=approx)


def _main_pngs(folder: Path) -> dict[str, bytes]:
    """The main renders (``<object>/{view}.png``) under a setting's folder."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.glob("*/*.png"))}


def _done(out: Path, object_id: str) -> dict:
    return json.loads((out / "1v" / object_id / "done.json").read_text())


def _objects(out: Path) -> list[str]:
    return json.loads((out / "1v" / "shard-0-of-1.json").read_text())["objects"]


def test_no_extra_files_unless_asked(setup: dict) -> None:
    for object_id in _objects(setup["plain"]):
        folder = setup["plain"] / "1v" / object_id
        assert not any((folder / name).exists() for name in EXTRA_DIRS)
        assert "extra_files" not in _done(setup["plain"], object_id)
        assert "depth_scale" not in _done(setup["plain"], object_id)


def test_each_output_alone_writes_only_its_folder(setup: dict, tmp_path: Path) -> None:
    for key, folder_name in zip(ALL_ON, EXTRA_DIRS, strict=True):
        out = tmp_path / key
        _render(setup["root"], _with_outputs(setup["experiment"], {key: True}),
                setup["checkpoint"], out)
        for object_id in _objects(out):
            folder = out / "1v" / object_id
            present = {name for name in EXTRA_DIRS if (folder / name).is_dir()}
            assert present == {folder_name}
            done = _done(out, object_id)
            assert sorted(done["extra_files"]) == [
                f"{folder_name}/{view:06d}.png" for view in done["targets"]]
            assert ("depth_scale" in done) == (key == "depth")


def test_main_renders_and_metrics_identical_with_extras(setup: dict) -> None:
    plain, extras = setup["plain"], setup["extras"]
    assert _main_pngs(plain / "1v") == _main_pngs(extras / "1v")
    csvs = []
    for renders in (plain, extras):
        out = renders / "metrics.csv"
        config = renders / "demo.yaml"
        config.write_text(yaml.safe_dump(setup["experiment"]))
        assert main(["metrics", "--config", str(config), "--data-root",
                     str(setup["root"] / "data"), "--manifest",
                     str(renders / "1v" / "shard-0-of-1.json"), "--renders", str(renders),
                     "--out", str(out), "--device", "cpu", "--lpips-weights", "none.pth",
                     "--no-progress"]) == 0
        csvs.append(out.read_bytes())
    assert csvs[0] == csvs[1]
    for object_id in _objects(plain):
        a, b = _done(plain, object_id), _done(extras, object_id)
        assert a["files"] == b["files"] and a["targets"] == b["targets"]


def _passes(setup: dict, object_id: str) -> tuple[dict, np.ndarray, Cameras]:
    """The renderer run by hand on the object's recorded views and seed: its output passes
    (one call: the demo's ray_batch covers all the target rays), images, cameras."""
    experiment = setup["experiment"]
    job = RenderJob.of_experiment(experiment, setup["root"] / "data", setup["checkpoint"],
                                  setup["extras"])
    dataset = open_split(job.dataset, job.data_root, "test")
    item = next(dataset[i] for i in range(len(dataset)) if dataset[i]["object_id"] == object_id)
    done = _done(setup["extras"], object_id)
    sources, targets = done["sources"], done["targets"]
    images = torch.as_tensor(item["images"])
    cameras = Cameras.of_item(item)
    assert len(targets) * SIZE * SIZE <= job.eval.ray_batch
    network = load_inference(job.model, job.renderer, job.checkpoint, CPU)
    model, renderer = network.model, network.renderer
    focal = cameras.focal.reshape(1) if cameras.focal.numel() == 1 else cameras.focal.reshape(1, 2)
    with torch.no_grad():
        model.encode(images[sources].unsqueeze(0), cameras.poses[sources].unsqueeze(0), focal,
                     c=None if cameras.c is None else torch.as_tensor(cameras.c).reshape(1, 2))
        rays = R.image_rays(cameras.poses[targets], SIZE, SIZE, cameras.focal, cameras.z_near,
                            cameras.z_far, c=cameras.c).reshape(1, -1, 8)
        generator = torch.Generator(device=CPU)
        generator.manual_seed(done["seed"])
        out = renderer(model, rays, generator=generator)
    return out, images, cameras


def test_depth_and_coarse_are_the_renderer_passes(setup: dict) -> None:
    object_id = _objects(setup["extras"])[0]
    done = _done(setup["extras"], object_id)
    out, _, cameras = _passes(setup, object_id)
    n = len(done["targets"])
    depth = out["fine"]["depth"][0].reshape(n, SIZE, SIZE)
    coarse = to_uint8(out["coarse"]["rgb"][0].reshape(n, SIZE, SIZE, 3))
    fine = to_uint8(out["fine"]["rgb"][0].reshape(n, SIZE, SIZE, 3))
    scale = done["depth_scale"]
    assert scale == pytest.approx(cameras.z_far / DEPTH_LEVELS)
    folder = setup["extras"] / "1v" / object_id
    for index, view in enumerate(done["targets"]):
        assert np.array_equal(iio.imread(folder / f"{view:06d}.png"), fine[index])
        stored = np.asarray(iio.imread(folder / "depth" / f"{view:06d}.png"))
        assert stored.dtype == np.uint16 and stored.shape == (SIZE, SIZE)
        # the 16-bit map is the depth rounded to its scale
        expected = np.rint(np.clip(depth[index].numpy() / cameras.z_far, 0, 1) * DEPTH_LEVELS)
        assert np.array_equal(stored, expected.astype(np.uint16))
        assert np.abs(stored * scale - depth[index].numpy()).max() <= scale / 2 + 1e-5
        image = np.asarray(iio.imread(folder / "coarse" / f"{view:06d}.png"))
        assert image.dtype == np.uint8 and np.array_equal(image, coarse[index])
    assert not np.array_equal(coarse, fine)  # the coarse file is not the fine render again


def test_source_and_compare_strips(setup: dict) -> None:
    object_id = _objects(setup["extras"])[0]
    done = _done(setup["extras"], object_id)
    _, images, _ = _passes(setup, object_id)
    photos = to_uint8((images.permute(0, 2, 3, 1) + 1) / 2)
    folder = setup["extras"] / "1v" / object_id
    n_src = len(done["sources"])
    for view in done["targets"]:
        render = np.asarray(iio.imread(folder / f"{view:06d}.png"))
        strip = np.asarray(iio.imread(folder / "with_src" / f"{view:06d}.png"))
        compare = np.asarray(iio.imread(folder / "compare" / f"{view:06d}.png"))
        assert strip.shape == (SIZE, SIZE * (n_src + 1), 3) and strip.dtype == np.uint8
        assert compare.shape == (SIZE, SIZE * (n_src + 2), 3)
        parts = [photos[s] for s in done["sources"]]
        assert np.array_equal(strip, np.concatenate([*parts, render], axis=1))
        assert np.array_equal(compare, np.concatenate([*parts, render, photos[view]], axis=1))


def test_outputs_join_the_fingerprint_only_when_asked(setup: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _render(setup["root"], setup["experiment"], setup["checkpoint"], out)
    object_id = _objects(out)[0]
    plain_fingerprint = _done(out, object_id)["fingerprint"]
    # an explicit all-off section is the default: the renders stay done
    _render(setup["root"], _with_outputs(setup["experiment"], {"depth": False}),
            setup["checkpoint"], out)
    assert _done(out, object_id)["fingerprint"] == plain_fingerprint
    # asking for an output makes the renders stale, so a rerun writes it
    _render(setup["root"], _with_outputs(setup["experiment"], {"depth": True}),
            setup["checkpoint"], out)
    done = _done(out, object_id)
    assert done["fingerprint"] != plain_fingerprint
    folder = out / "1v" / object_id
    assert (folder / "depth" / f"{done['targets'][0]:06d}.png").exists()
    # a deleted extra file makes the object unfinished for the render step
    assert is_done(folder, done["fingerprint"])
    (folder / "depth" / f"{done['targets'][0]:06d}.png").unlink()
    assert not is_done(folder, done["fingerprint"])


def _approx_experiment(experiment: dict, approx: dict) -> dict:
    changed = copy.deepcopy(experiment)
    changed["eval"]["approx"] = approx
    return changed


def test_published_approx_config() -> None:
    experiment = _approx_experiment(demo_experiment(SYNTH), {"protocol": "published"})
    validate(experiment, SCHEMA, "test")
    approx = EvalConfig.of_experiment(experiment).approx
    assert (approx.objects, approx.views, approx.seed, approx.split) == (None, 1, 1234, "val")
    assert EvalConfig.of_experiment(experiment).render_split(approx=True) == "val"
    assert EvalConfig.of_experiment(experiment).render_split(approx=False) == "test"
    with pytest.raises(PipelineError, match="approx"):
        validate(_approx_experiment(experiment, {"protocol": "published", "objects": 2}),
                 SCHEMA, "test")
    with pytest.raises(PipelineError, match="approx"):
        validate(_approx_experiment(experiment, {"protocol": "sampled"}), SCHEMA, "test")
    sampled = _approx_experiment(experiment, {"objects": 2, "views": 1, "seed": 0})
    validate(sampled, SCHEMA, "test")
    assert EvalConfig.of_experiment(sampled).approx.protocol == "sampled"


def test_published_approx_renders_every_val_object_one_view(setup: dict,
                                                            tmp_path: Path) -> None:
    experiment = _approx_experiment(setup["experiment"], {"protocol": "published"})
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        manifest = json.loads(_render(setup["root"], experiment, setup["checkpoint"], out,
                                      approx=True).read_text())
        val = open_split(experiment["dataset"], setup["root"] / "data", "val")
        val_ids = sorted(str(val[i]["object_id"]) for i in range(len(val)))
        assert manifest["split"] == "val" and sorted(manifest["objects"]) == val_ids
        picks = {}
        for object_id in manifest["objects"]:
            done = _done(out, object_id)
            assert len(done["targets"]) == 1 and done["targets"][0] not in done["sources"]
            picks[object_id] = done["targets"][0]
        runs.append((picks, _main_pngs(out / "1v")))
    assert runs[0] == runs[1]
    # the metrics step scores them against the val split the manifest names
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(experiment))
    csv = tmp_path / "approx.csv"
    assert main(["metrics", "--config", str(config), "--data-root", str(setup["root"] / "data"),
                 "--manifest", str(tmp_path / "a" / "1v" / "shard-0-of-1.json"), "--renders",
                 str(tmp_path / "a"), "--out", str(csv), "--device", "cpu", "--lpips-weights",
                 "none.pth", "--no-progress"]) == 0
    text = csv.read_text()
    assert all(object_id in text for object_id in runs[0][0])


def test_scale_renders_and_scores_at_the_scaled_size(setup: dict, tmp_path: Path) -> None:
    experiment = copy.deepcopy(setup["experiment"])
    experiment["eval"]["scale"] = 0.5
    native = open_split(experiment["dataset"], setup["root"] / "data", "test")[0]
    small = open_split(experiment["dataset"], setup["root"] / "data", "test", 0.5)[0]
    assert tuple(small["images"].shape[-2:]) == (SIZE // 2, SIZE // 2)
    assert float(small["focal"]) == pytest.approx(0.5 * float(native["focal"]))
    out = tmp_path / "half"
    _render(setup["root"], experiment, setup["checkpoint"], out)
    for object_id in _objects(out):
        done = _done(out, object_id)
        assert done["fingerprint"] != _done(setup["plain"], object_id)["fingerprint"]
        for view in done["targets"]:
            assert np.asarray(iio.imread(out / "1v" / object_id / f"{view:06d}.png")).shape == (
                SIZE // 2, SIZE // 2, 3)
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(experiment))
    assert main(["metrics", "--config", str(config), "--data-root", str(setup["root"] / "data"),
                 "--manifest", str(out / "1v" / "shard-0-of-1.json"), "--renders", str(out),
                 "--out", str(tmp_path / "half.csv"), "--device", "cpu", "--lpips-weights",
                 "none.pth", "--no-progress"]) == 0
    # the report figure reads the ground truth at the renders' size
    rows = comparison_rows(experiment["dataset"], "test", setup["root"] / "data", out, "1v",
                           _objects(out), 1, 0.5)
    for row in rows:
        for _, render, truth in row.targets:
            assert render.shape[:2] == truth.shape[:2] == (SIZE // 2, SIZE // 2)
    with pytest.raises(PipelineError, match="scale"):
        bad = copy.deepcopy(experiment)
        bad["eval"]["scale"] = 0
        validate(bad, SCHEMA, "test")
