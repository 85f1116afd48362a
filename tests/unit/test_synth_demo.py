"""The demo synthesizer: the dvr reader loads what it writes, masks agree with the geometry,
and the dataset is determined by its settings."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pixelnerf.cli import main
from pixelnerf.data import open_dataset
from pixelnerf.data.demo import MARKER, SynthSettings, camera_poses, object_rng, synthesize
from pixelnerf.data.raycast import scaled
from pixelnerf.data.shapes import BUILDERS, build_object
from pixelnerf.errors import PipelineError

SMALL = {"train_objects": 2, "val_objects": 1, "test_objects": 1, "views": 6,
         "image_size": 32, "categories": list(BUILDERS)}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthSettings, Path]:
    settings = SynthSettings.from_mapping(SMALL)
    out = tmp_path_factory.mktemp("demo") / "demo"
    synthesize(settings, out)
    return settings, out


def test_reader_loads_every_split(small: tuple[SynthSettings, Path]) -> None:
    settings, out = small
    poses = camera_poses(settings)
    size = settings.image_size
    for split, count in settings.split_counts().items():
        dataset = open_dataset("dvr", out, split)
        assert len(dataset) == count * len(settings.categories)
        assert {dataset[i]["category"] for i in range(len(dataset))} == set(settings.categories)
        item = dataset[0]
        assert item["images"].shape == (settings.views, 3, size, size)
        assert item["masks"].shape == (settings.views, 1, size, size)
        assert float(item["focal"]) == pytest.approx(settings.focal * size / 2)
        np.testing.assert_allclose(item["poses"].numpy(), poses, atol=1e-5)
        assert item["images"].min() >= -1 and item["images"].max() <= 1


def _project(pose: np.ndarray, point: np.ndarray, focal: float, size: int) -> tuple[float, float]:
    """Pixel coordinates of a world point for a renderer pose (camera looks along -z)."""
    camera = np.linalg.inv(pose) @ np.append(point, 1.0)
    depth = -camera[2]
    return size / 2 + focal * camera[0] / depth, size / 2 - focal * camera[1] / depth


def test_masks_agree_with_geometry(small: tuple[SynthSettings, Path]) -> None:
    """Each primitive's centre, projected with the reader's camera, lands on the mask where
    the primitive covers more than a pixel around it; pixels whose rays pass outside the
    object's bounding sphere are background; the mask is exactly the non-white pixels."""
    settings, out = small
    dataset = open_dataset("dvr", out, "train")
    size = settings.image_size
    checked = 0
    for index in range(len(dataset)):
        item = dataset[index]
        category, name = item["object_id"].split("/")
        number = int(name.rsplit("_", 1)[1])
        primitives = [scaled(p, settings.object_scale)
                      for p in build_object(category, object_rng(settings, category, number))]
        radius = max(np.linalg.norm(p.centre) + np.linalg.norm(p.size) for p in primitives)
        focal = float(item["focal"])
        masks = item["masks"][:, 0].numpy() > 0.5
        white = (item["images"] == 1.0).all(dim=1).numpy()
        np.testing.assert_array_equal(masks, ~white)
        for view, pose in enumerate(item["poses"].numpy().astype(np.float64)):
            for primitive in primitives:
                x, y = _project(pose, primitive.centre, focal, size)
                depth = np.linalg.norm(pose[:3, 3] - primitive.centre)
                if focal * primitive.size.min() / depth > 1.5:
                    assert masks[view, round(y), round(x)], (item["object_id"], view)
                    checked += 1
            # Rays through pixel centres (x - W/2, published convention) vs the sphere.
            ys, xs = np.mgrid[0:size, 0:size]
            dirs = np.stack([(xs - size / 2) / focal, -(ys - size / 2) / focal,
                             -np.ones_like(xs, dtype=float)], -1) @ pose[:3, :3].T
            dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
            along = -(pose[:3, 3] * dirs).sum(-1)
            distance = np.linalg.norm(pose[:3, 3] + along[..., None] * dirs, axis=-1)
            assert not masks[view][distance > radius].any()
    assert checked > 0


def test_deterministic_from_seed(small: tuple[SynthSettings, Path], tmp_path: Path) -> None:
    settings, out = small
    again = tmp_path / "again"
    synthesize(settings, again)
    comparison = filecmp.dircmp(out, again)
    stack = [comparison]
    while stack:
        current = stack.pop()
        assert not current.left_only and not current.right_only and not current.diff_files
        _, mismatch, errors = filecmp.cmpfiles(current.left, current.right, current.common_files,
                                               shallow=False)
        assert not mismatch and not errors
        stack.extend(current.subdirs.values())
    other = tmp_path / "other"
    synthesize(SynthSettings.from_mapping({**SMALL, "seed": 1}), other)
    image = Path("image") / "0000.png"
    first = open_dataset("dvr", out, "train")[0]
    assert not filecmp.cmp(Path(first["path"]) / image,
                           other / first["object_id"] / image, shallow=False)


def _write_config(project_root: Path, path: Path, synth: dict) -> None:
    """The project's demo experiment with ``dataset.synth`` replaced (schema-checked)."""
    experiment = yaml.safe_load((project_root / "config/experiments/demo.yaml").read_text())
    experiment["dataset"]["synth"] = synth
    path.write_text(yaml.safe_dump(experiment))


def test_cli_reads_config_and_reruns(tmp_path: Path, project_root: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    settings = {**SMALL, "categories": ["car"], "views": 3, "image_size": 16}
    config = tmp_path / "exp.yaml"
    _write_config(project_root, config, settings)
    out = tmp_path / "data" / "demo"
    out.mkdir(parents=True)  # an empty folder (as Snakemake makes for outputs) is fine
    assert main(["synth-demo", str(out), "--config", str(config)]) == 0
    record = json.loads((out / MARKER).read_text())
    assert record["settings"]["categories"] == ["car"] and record["objects"]["train"] == 2
    stamp = (out / MARKER).stat().st_mtime_ns
    assert main(["synth-demo", str(out), "--config", str(config)]) == 0
    assert (out / MARKER).stat().st_mtime_ns == stamp  # same settings: kept as it is
    _write_config(project_root, config, {**settings, "seed": 7})
    assert main(["synth-demo", str(out), "--config", str(config)]) == 0
    assert json.loads((out / MARKER).read_text())["settings"]["seed"] == 7
    assert not list(tmp_path.glob("data/.demo.*"))  # no staging or old copy left behind
    capsys.readouterr()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["synth-demo", str(foreign), "--config", str(config)]) == 2
    assert "not a demo dataset" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("mapping", "key"),
    [({"views": 0}, "views"), ({"colour": 1}, "'colour' was unexpected"),
     ({"categories": ["boat"]}, "categories"), ({"train_objects": 1.5}, "train_objects"),
     ({"elevations": []}, "elevations")],
)
def test_bad_settings_name_the_key(project_root: Path, mapping: dict, key: str) -> None:
    from pixelnerf.config import EXPERIMENT_SCHEMA, load_yaml, validate

    experiment = load_yaml(project_root / "config" / "experiments" / "demo.yaml")
    dataset = {**experiment["dataset"], "synth": mapping}
    with pytest.raises(PipelineError, match=f"key dataset.synth.*{key}"):
        validate({**experiment, "dataset": dataset}, EXPERIMENT_SCHEMA, "demo.yaml")


def test_light_from_nowhere_is_refused() -> None:
    with pytest.raises(PipelineError, match="light_direction"):
        SynthSettings.from_mapping({"light_direction": [0, 0, 0]})
