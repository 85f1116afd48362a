"""The evaluation protocol (source and target views per object), from the experiment configs
as shipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import PROJECT_ROOT

from pixelnerf.config import load_experiment
from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.protocol import Protocol, read_source_table, read_view_line, shard_objects

EXPERIMENTS = PROJECT_ROOT / "config" / "experiments"
DTU_BANNED = set(range(3, 8)) | set(range(16, 22)) | set(range(36, 40))


@pytest.fixture(autouse=True)
def _in_project_root(project_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # View list paths in the configs are relative to the workflow's working directory.
    monkeypatch.chdir(project_root)


def protocol(name: str) -> Protocol:
    experiment = load_experiment(EXPERIMENTS / f"{name}.yaml")
    return Protocol.from_config(EvalConfig.of_experiment(experiment))


@pytest.mark.parametrize(
    ("experiment", "view_list"),
    [("sn64", "config/viewlists/src_dvr.txt"), ("sn64_unseen", "config/viewlists/src_gen.txt")],
)
def test_shapenet_sources_come_from_the_published_list(experiment: str, view_list: str) -> None:
    table = read_source_table(view_list)
    proto = protocol(experiment)
    assert proto.setting_names == ["1v"]
    lines = Path(view_list).read_text().split("\n")
    for line in (lines[0], lines[len(lines) // 2]):
        synset, obj, view = line.split()
        selection = proto.select("1v", f"{synset}/{obj}", 24)
        assert selection.sources == (int(view),)
        assert selection.targets == tuple(v for v in range(24) if v != int(view))
        assert table[f"{synset}/{obj}"] == (int(view),)


@pytest.mark.parametrize("experiment", ["srn_car", "srn_chair"])
def test_srn_one_and_two_views_over_all_other_views(experiment: str) -> None:
    proto = protocol(experiment)
    n_views = 251  # the SRN test objects have 251 views
    one = proto.select("1v", "abc", n_views)
    two = proto.select("2v", "abc", n_views)
    assert one.sources == (64,)
    assert two.sources == (64, 104)
    assert one.targets == tuple(v for v in range(n_views) if v != 64)
    assert two.targets == tuple(v for v in range(n_views) if v not in (64, 104))


def test_dtu_view_sets_exclude_the_banned_views() -> None:
    proto = protocol("dtu")
    expected = {"1v": ([25], 33), "3v": ([22, 25, 28], 31),
                "6v": ([22, 25, 28, 40, 44, 48], 28),
                "9v": ([0, 8, 13, 22, 25, 28, 40, 44, 48], 25)}
    assert sorted(proto.setting_names) == sorted(expected)
    for setting, (sources, n_targets) in expected.items():
        selection = proto.select(setting, "scan1", 49)
        assert list(selection.sources) == sources
        assert len(selection.targets) == n_targets
        assert not set(selection.targets) & (DTU_BANNED | set(sources))
        assert set(selection.targets) | DTU_BANNED | set(sources) == set(range(49))


def test_multi_chair_targets_from_the_list_and_seeded_recorded_sources() -> None:
    proto = protocol("multi_chair")
    listed = read_view_line("config/viewlists/2obj_eval_views.txt")
    first = proto.select("2v", "scene_0", 50)
    again = proto.select("2v", "scene_0", 50)
    other = [proto.select("2v", f"scene_{i}", 50).sources for i in range(1, 6)]
    assert first == again
    assert len(first.sources) == 2 and len(set(first.sources)) == 2
    assert not set(first.sources) & set(listed)
    assert first.targets == tuple(sorted(listed))
    assert any(sources != first.sources for sources in other)  # drawn per scene


def test_demo_source_is_seeded_per_object_and_independent_of_call_order() -> None:
    ids = [f"chair/obj{i}" for i in range(6)]
    forward = [protocol("demo").select("1v", i, 24) for i in ids]
    backward = [protocol("demo").select("1v", i, 24) for i in reversed(ids)][::-1]
    assert forward == backward
    for selection in forward:
        assert len(selection.sources) == 1 and len(selection.targets) == 23


def test_shards_partition_the_objects() -> None:
    ids = [f"c/o{i}" for i in range(11)]
    shards = [shard_objects(ids, k, 3) for k in range(3)]
    assert sorted(sum(shards, [])) == sorted(ids)
    assert sum(len(s) for s in shards) == len(ids)
    with pytest.raises(PipelineError, match="shard 3 of 3"):
        shard_objects(ids, 3, 3)


def test_errors_name_the_object_or_setting(tmp_path: Path) -> None:
    proto = protocol("sn64")
    with pytest.raises(PipelineError, match="nope/missing has no source view"):
        proto.select("1v", "nope/missing", 24)
    with pytest.raises(PipelineError, match="view setting '2v'"):
        proto.select("2v", "x/y", 24)
    with pytest.raises(PipelineError, match=r"source views \[104\] do not exist"):
        protocol("srn_car").select("2v", "abc", 100)
    bad = tmp_path / "list.txt"
    bad.write_text("a b x\n")
    with pytest.raises(PipelineError, match="line 1"):
        read_source_table(bad)
