"""The workflow's decisions without Snakemake (pixelnerf.workflow.plan): which experiments
exist, the targets of a table, shards, where data and weights come from, what reruns a
stage, the resources of a job; and bad input as one PipelineError line."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from helpers import PROJECT_ROOT

from pixelnerf.config.global_settings import GlobalConfig
from pixelnerf.errors import PipelineError
from pixelnerf.workflow.plan import (
    LPIPS_NETS,
    STAGE_SECTIONS,
    Plan,
    check_path_keys,
    read_global_config,
)

SOURCES = str(PROJECT_ROOT / "config" / "sources.yaml")


@pytest.fixture
def experiments(tmp_path: Path) -> Path:
    """A copy of the project's experiment files, free to edit."""
    folder = tmp_path / "experiments"
    shutil.copytree(PROJECT_ROOT / "config" / "experiments", folder)
    return folder


def global_config(experiments: Path, **overrides: Any) -> GlobalConfig:
    """config/config.yaml with ``overrides`` (as ``--config``), typed as the Snakefile reads it."""
    config = yaml.safe_load((PROJECT_ROOT / "config" / "config.yaml").read_text())
    config.update(experiments_dir=str(experiments), **overrides)
    return read_global_config(config)


def plan(experiments: Path, **overrides: Any) -> Plan:
    return Plan(global_config(experiments, **overrides), SOURCES)


def edit(experiments: Path, name: str, section: str, **values: Any) -> None:
    path = experiments / f"{name}.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg[section].update(values)
    path.write_text(yaml.safe_dump(cfg))


def test_the_default_target_is_the_demo_table_with_its_figures(experiments: Path) -> None:
    p = plan(experiments)
    assert p.final_outputs() == [
        "results/tables/demo.csv",
        "results/tables/demo.md",
        "results/plots/demo.png",
        "results/tables/demo.provenance.json",
        "results/figures/demo/1v.png",
    ]
    assert p.known_experiments() == sorted(
        f.stem for f in (PROJECT_ROOT / "config" / "experiments").glob("*.yaml")
    )


def test_a_table_reads_one_metrics_file_per_setting_and_shard(experiments: Path) -> None:
    p = plan(experiments, results_root="out")
    assert p.settings("srn_car") == ["1v", "2v"]
    assert p.shard_names("srn_car") == [f"shard-{k}-of-16" for k in range(16)]
    metrics = p.shard_metrics("srn_car")
    assert len(metrics) == 2 * 16 and len(set(metrics)) == len(metrics)
    assert metrics[0] == "out/srn_car/metrics/1v/shard-0-of-16.csv"
    assert metrics[-1] == "out/srn_car/metrics/2v/shard-15-of-16.csv"
    assert p.setting_manifests("srn_car", "2v")[-1] == "out/srn_car/render/2v/shard-15-of-16.json"
    assert p.table_outputs("srn_car")[-2:] == ["out/figures/srn_car/1v.png",
                                               "out/figures/srn_car/2v.png"]
    # `--config shards=K` overrides every experiment's own count
    assert plan(experiments, shards=3).shard_names("srn_car") == [
        "shard-0-of-3", "shard-1-of-3", "shard-2-of-3"
    ]


def test_the_approximate_evaluation_reads_one_shard_of_its_setting(experiments: Path) -> None:
    p = plan(experiments)
    assert p.approx_metrics("demo") == "results/demo/approx/metrics/1v/shard-0-of-1.csv"
    assert p.approx_setting("srn_car") == "1v"  # the first setting unless one is named
    edit(experiments, "srn_car", "eval", approx={"protocol": "published", "setting": "2v"})
    assert plan(experiments).approx_setting("srn_car") == "2v"


def test_data_downloaded_synthesized_or_split(experiments: Path) -> None:
    p = plan(experiments, data_root="data")
    assert p.dataset_ready("demo") == ["data/.synth/demo.json"]
    assert p.dataset_ready("sn64") == ["data/.downloads/nmr.json"]
    # the unseen-category format needs its own split lists after the download
    assert p.dataset_ready("sn64_unseen") == [
        "data/.downloads/nmr.json", "results/sn64_unseen/split/done.json"
    ]
    assert p.fetched_inputs("sn64") == ["data/.downloads/nmr.json"]
    assert p.dataset_root("sn64") == "data/NMR_Dataset"
    assert p.list_prefix_option("sn64") == ["--list-prefix", "softras_"]
    assert p.list_prefix_option("srn_car") == []


def test_data_and_weights_in_place_are_validated_not_downloaded(
    experiments: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "NMR_Dataset").mkdir(parents=True)
    p = plan(experiments, data_root=str(data), in_place=["nmr", "pretrained"])
    assert p.fetched_inputs("sn64") == []
    assert p.download_ready("sn64") == "results/sn64/validate-data.txt"
    assert p.weights_ready("sn64") == "results/sn64/weights-check.json"
    assert p.checkpoint_path("sn64") == "checkpoints/sn64/pixel_nerf_latest"
    # split lists would be written into data that is only read
    with pytest.raises(PipelineError, match="sn64_unseen writes its split lists"):
        p.dataset_ready("sn64_unseen")
    with pytest.raises(PipelineError, match="srn_cars: dataset folder .*cars does not exist"):
        plan(experiments, data_root=str(data), in_place=["srn_cars"]).dataset_ready("srn_car")


def test_weights_trained_or_published(experiments: Path) -> None:
    p = plan(experiments)
    assert p.weights_ready("demo") == "results/demo/train/done.json"
    assert p.checkpoint_path("demo") == "checkpoints/demo/pixel_nerf_latest"
    assert p.weights_ready("multi_chair") == "data/.downloads/pretrained.json"
    # the published zip names this one's folder differently
    assert p.checkpoint_path("multi_chair") == "checkpoints/multi_obj/pixel_nerf_latest"
    assert p.init_option("demo") == [] and p.init_ready("demo") == []
    # `--config weights=... steps=...` switches every experiment
    switched = plan(experiments, weights="train", steps=7)
    assert switched.weights_ready("sn64") == "results/sn64/train/done.json"
    assert switched.train_steps("sn64") == 7 and switched.train_steps("demo") == 7


def test_fine_tuning_from_published_weights_waits_for_them(experiments: Path) -> None:
    edit(experiments, "demo", "train", init="published")
    p = plan(experiments)
    assert p.init_option("demo") == ["--init", "checkpoints/demo/pixel_nerf_latest"]
    assert p.init_ready("demo") == ["data/.downloads/pretrained.json"]
    edit(experiments, "demo", "train", init="my/weights.pt")
    p = plan(experiments)
    assert p.init_option("demo") == ["--init", "my/weights.pt"] and p.init_ready("demo") == []


def test_a_stage_reruns_on_the_sections_it_reads_only(experiments: Path) -> None:
    before = plan(experiments)
    edit(experiments, "demo", "eval", shards=5, ray_batch=999)
    edit(experiments, "demo", "train", gpus=2)
    after = plan(experiments)
    # eval.shards changes no number, eval.ray_batch is read by rendering; no train key changed
    # but gpus, which leaves the training unchanged
    assert after.config_digest("render", "demo") != before.config_digest("render", "demo")
    assert after.config_digest("train", "demo") == before.config_digest("train", "demo")
    assert after.config_digest("split", "demo") == before.config_digest("split", "demo")
    assert after.config_digest("table", "demo") != before.config_digest("table", "demo")
    edit(experiments, "demo", "eval", ray_batch=16384)
    assert plan(experiments).config_digest("render", "demo") == before.config_digest(
        "render", "demo"
    )


def test_resources_of_a_job(experiments: Path) -> None:
    p = plan(experiments, device="cuda")
    wildcards = SimpleNamespace(exp="demo")
    render = p.stage_resources("render")
    assert render["gpu"] == 1 and render["device"] == "cuda"
    assert render["runtime"](wildcards, 2) == 2 * render["runtime"](wildcards, 1)
    download = p.stage_resources("light", runtime="download")
    assert download["gpu"] == 0
    assert download["runtime"](wildcards, 1) == p.config.resources.runtime.download
    edit(experiments, "demo", "train", gpus=3)
    train = plan(experiments).train_resources()
    assert train["gpu"](wildcards) == 3 and train["processes"](wildcards) == 3
    no_gpu = plan(experiments, resources={"gpu_stages": []})
    assert no_gpu.train_resources()["gpu"](wildcards) == 0


def test_lpips_trunks_are_downloaded_with_a_downloaded_dataset(experiments: Path) -> None:
    p = plan(experiments)
    vgg, alex = p.download_marker("lpips_vgg16"), p.download_marker("lpips_alexnet")
    # null: the demo's synthesized data needs no network, a downloaded dataset fetches them
    assert p.lpips_trunks("demo") == [] and p.lpips_trunks("demo", nets=LPIPS_NETS) == []
    assert p.lpips_trunks("srn_car") == [vgg]
    assert p.lpips_trunks("srn_car", nets=LPIPS_NETS) == [vgg, alex]
    # a dataset used in place downloads nothing; nor does a trunk source used in place
    assert plan(experiments, in_place=["srn_cars"]).lpips_trunks("srn_car") == []
    download = plan(experiments, lpips_weights="download", in_place=["lpips_alexnet"])
    assert download.lpips_trunks("demo", nets=LPIPS_NETS) == [vgg]
    assert plan(experiments, lpips_weights="w.pth").lpips_trunks("srn_car") == []


def test_lpips_options(experiments: Path) -> None:
    p = plan(experiments)
    where = ["--checkpoints-root", p.checkpoints, "--sources", SOURCES]
    assert p.lpips_options() == where
    assert plan(experiments, lpips_weights="download").lpips_options() == where
    assert plan(experiments, lpips_weights="w.pth").lpips_options() == [
        *where, "--lpips-weights", "w.pth"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"experiment": "nope"}, ["config key experiment", "nope.yaml does not exist"]),
        ({"data_root": "/nonexistent/datasets"}, ["config key data_root", "/nonexistent"]),
        ({"in_place": ["nmrr"]}, ["config key in_place: nmrr is not a source"]),
        ({"results_root": "my\nresults"}, ["results_root", "contains a newline"]),
    ],
    ids=["unknown_experiment", "missing_data_root", "unknown_in_place", "newline_in_folder"],
)
def test_a_bad_global_config_is_one_line(
    experiments: Path, overrides: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(PipelineError) as info:
        plan(experiments, **overrides)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_a_global_key_of_the_wrong_type_is_one_line(experiments: Path) -> None:
    with pytest.raises(PipelineError, match=r"^workflow config .*: key shards: ") as info:
        global_config(experiments, shards="many")
    assert "\n" not in str(info.value)


def test_a_newline_in_any_folder_key_is_refused() -> None:
    base = {"data_root": "d", "results_root": "r", "checkpoints_root": "c", "experiments_dir": "e"}
    check_path_keys(GlobalConfig(**base))
    for key in base:
        with pytest.raises(PipelineError, match=f"config key {key}: .* contains a NUL"):
            check_path_keys(GlobalConfig(**{**base, key: "a\0b"}))


# The digests of the shipped demo's stages. A digest is a param of the stage's jobs: another
# value reruns the finished results of every user, so it must not change with the code (only
# with the experiment file): it hashes the sections as the file gives them, defaults unfilled.
DEMO_DIGESTS = {
    "synth": "0fbd597beea3e511",
    "split": "0fbd597beea3e511",
    "train": "8a5965babd522a19",
    "render": "91fe42add1399c8b",
    "metrics": "19b83379b4d9fe34",
    "table": "60bc86e315e7e6c9",
    "figure": "f33586680fc44767",
    "approx": "c303fbc6b3c652bb",
    "video": "3bcb6f33f95ed74d",
    "real": "5796ffe4e8a9f785",
}


def test_the_demo_config_digests_are_pinned(experiments: Path) -> None:
    p = plan(experiments)
    assert {stage: p.config_digest(stage, "demo") for stage in STAGE_SECTIONS} == DEMO_DIGESTS


def test_every_experiment_file_is_checked_at_once(experiments: Path) -> None:
    edit(experiments, "dtu", "train", stepz=5)
    with pytest.raises(PipelineError, match=r"dtu\.yaml.*stepz"):
        plan(experiments)
    shutil.copy(experiments / "demo.yaml", experiments / "dtu.yaml")
    with pytest.raises(PipelineError, match=r"dtu\.yaml: key name: 'demo' differs"):
        plan(experiments)


def test_an_unknown_experiment_is_one_line_naming_its_file(experiments: Path) -> None:
    p = plan(experiments)
    with pytest.raises(PipelineError) as info:
        p.config_file("nosuchexp")
    assert str(info.value) == (
        f"unknown experiment 'nosuchexp': {experiments}/nosuchexp.yaml does not exist "
        f"(known: {', '.join(p.known_experiments())})"
    )
    assert p.config_file("demo") == f"{experiments}/demo.yaml"
