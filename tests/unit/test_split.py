"""The split step on the demo dataset: an unseen-category split of the
demo's own categories, written atomically and identically on every run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pixelnerf.cli import main
from pixelnerf.config import load_experiment
from pixelnerf.data import open_dataset
from pixelnerf.data.config import DatasetConfig
from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.data.split import SplitSettings, choose, make_split
from pixelnerf.errors import PipelineError

DEMO = {"categories": ["chair", "table", "lamp", "car"], "train_objects": 3, "val_objects": 1,
        "test_objects": 4, "views": 2, "image_size": 8}
SEEN, UNSEEN = ["chair", "table", "car"], ["lamp"]


def split_settings(config: dict) -> SplitSettings:
    """The split settings of an experiment config, as ``pixelnerf split`` takes them."""
    return DatasetConfig.of_experiment(config).split_settings()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    synthesize(SynthSettings.from_mapping(DEMO), root / "demo")
    return root


@pytest.fixture()
def fresh_root(data_root: Path, tmp_path: Path) -> Path:
    """A copy of the demo data, so a test's lists never leak into another test."""
    import shutil

    shutil.copytree(data_root / "demo", tmp_path / "data" / "demo")
    return tmp_path / "data"


def _config(project_root: Path, path: Path, **split: object) -> Path:
    """The project's demo experiment as an unseen-category experiment of its categories."""
    experiment = yaml.safe_load((project_root / "config/experiments/demo.yaml").read_text())
    experiment["dataset"].update(format="dvr_gen", list_prefix="gen_")
    experiment["dataset"]["split"] = {"seen": SEEN, "unseen": UNSEEN, "test_fraction": 0.5,
                                      "seed": 0, "source_list": None, **split}
    path.write_text(yaml.safe_dump(experiment))
    return path


def _lists(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("gen_*"))}


def test_demo_unseen_split(fresh_root: Path, project_root: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture) -> None:
    config = _config(project_root, tmp_path / "exp.yaml")
    marker = tmp_path / "results" / "split" / "done.json"
    args = ["split", "--config", str(config), "--data-root", str(fresh_root), "--out", str(marker)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "unknown" in out and "seeded" in out
    root = fresh_root / "demo"
    first = _lists(root)
    assert marker.is_file()
    assert main(args) == 0
    assert _lists(root) == first  # identical on rerun
    per_category = DEMO["train_objects"] + DEMO["val_objects"] + DEMO["test_objects"]
    test = open_dataset("dvr_gen", root, "test")
    assert {test[i]["category"] for i in range(len(test))} == set(UNSEEN)
    assert len(test) == round(0.5 * per_category) * len(UNSEEN)
    train, val = open_dataset("dvr_gen", root, "train"), open_dataset("dvr_gen", root, "val")
    assert len(train) == DEMO["train_objects"] * len(SEEN)
    assert len(val) == DEMO["val_objects"] * len(SEEN)
    assert {val[i]["category"] for i in range(len(val))} == set(SEEN)
    for category in SEEN:
        assert (root / category / "gen_test.lst").read_text() == ""
    # The dataset's own lists are untouched.
    assert len(open_dataset("dvr", root, "test")) == DEMO["test_objects"] * len(DEMO["categories"])


def test_fraction_one_takes_all_and_seed_matters(fresh_root: Path, project_root: Path,
                                                 tmp_path: Path) -> None:
    config = load_experiment(_config(project_root, tmp_path / "a.yaml", test_fraction=1.0))
    split = make_split(fresh_root / "demo", split_settings(config))
    per_category = DEMO["train_objects"] + DEMO["val_objects"] + DEMO["test_objects"]
    assert len(split["lamp"]["test"]) == per_category
    objects = [f"obj{i:02d}" for i in range(40)]
    picks = {tuple(choose(objects, 0.25, seed, "lamp", "test")) for seed in range(4)}
    assert len(picks) == 4 and all(len(p) == 10 for p in picks)
    assert choose(objects, 0.25, 0, "lamp", "test") == choose(objects[::-1], 0.25, 0, "lamp",
                                                              "test")


def test_every_test_object_needs_a_source_view(fresh_root: Path, project_root: Path,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    objects = sorted(p.name for p in (fresh_root / "demo" / "lamp").iterdir() if p.is_dir())
    viewlist = tmp_path / "src.txt"
    viewlist.write_text("".join(f"lamp {name} 3\n" for name in objects[1:]))
    config = _config(project_root, tmp_path / "exp.yaml", test_fraction=1.0,
                     source_list=str(viewlist))
    args = ["split", "--config", str(config), "--data-root", str(fresh_root)]
    assert main(args) == 2
    assert f"lamp/{objects[0]}" in capsys.readouterr().err
    assert not list((fresh_root / "demo").rglob("gen_*"))  # nothing written on failure
    viewlist.write_text("".join(f"lamp {name} 3\n" for name in objects))
    assert main(args) == 0
    assert (fresh_root / "demo" / "gen_split.json").is_file()


def test_seen_category_without_validation_objects(fresh_root: Path, project_root: Path,
                                                  tmp_path: Path) -> None:
    (fresh_root / "demo" / "car" / "softras_val.lst").write_text("")
    config = load_experiment(_config(project_root, tmp_path / "exp.yaml"))
    split = make_split(fresh_root / "demo", split_settings(config))
    assert split["car"]["val"] and not set(split["car"]["val"]) & set(split["car"]["train"])
    config["dataset"]["split"]["val_fraction"] = 0.0
    with pytest.raises(PipelineError, match="car has no validation objects"):
        make_split(fresh_root / "demo", split_settings(config))


@pytest.mark.parametrize(
    ("change", "message"),
    [({"unseen": ["chair"]}, "both seen and unseen"), ({"unseen": ["boat"]}, "boat")],
)
def test_bad_settings(fresh_root: Path, change: dict, message: str) -> None:
    config = {"dataset": {"format": "dvr_gen", "dir": "demo", "source": "synth-demo",
                          "split": {"seen": SEEN, "unseen": UNSEEN, **change}}}
    with pytest.raises(PipelineError, match=message):
        make_split(fresh_root / "demo", split_settings(config))


@pytest.mark.parametrize(
    ("change", "message"),
    [({"test_fraction": 0}, "key dataset.split.test_fraction: 0 is less than or equal"),
     ({"seen": "chair"}, "key dataset.split.seen: 'chair' is not of type 'array'"),
     ({"seen": None}, "key dataset.split.seen: None is not of type 'array'")],
)
def test_bad_split_keys_are_named_by_the_schema(project_root: Path, change: dict,
                                                message: str) -> None:
    from pixelnerf.config import EXPERIMENT_SCHEMA, load_yaml, validate

    experiment = load_yaml(project_root / "config" / "experiments" / "sn64_unseen.yaml")
    dataset = {**experiment["dataset"], "split": {**experiment["dataset"]["split"], **change}}
    with pytest.raises(PipelineError, match=message):
        validate({**experiment, "dataset": dataset}, EXPERIMENT_SCHEMA, "sn64_unseen.yaml")


def test_project_split_configs_parse(project_root: Path) -> None:
    """Every experiment of the project with a split section is accepted by the split step,
    and names a source list that exists."""
    for path in sorted((project_root / "config" / "experiments").glob("*.yaml")):
        config = load_experiment(path)
        if "split" not in config.get("dataset", {}):
            continue
        settings = split_settings(config)
        assert settings.seen and settings.unseen, path
        if settings.source_list is not None:
            assert (project_root / settings.source_list).is_file(), path
