"""Bad configs stop the real workflow before any job, with one message naming the key or path,
and leave results already written untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import PROJECT_ROOT
from helpers.demo import TINY_DEMO, merged
from helpers.workflow import make_workspace, output_text, snakemake

TARGET = "results/tables/demo.csv"


def _demo_text(override: dict) -> str:
    base = yaml.safe_load((PROJECT_ROOT / "config" / "experiments" / "demo.yaml").read_text())
    return yaml.safe_dump(merged(merged(base, TINY_DEMO), override), sort_keys=False)


def _snapshot(folder: Path) -> dict[Path, tuple[int, bytes]]:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def _seed_results(ws: Path) -> dict[Path, tuple[int, bytes]]:
    """Results of an earlier run that a bad config must not touch."""
    table = ws / "results" / "tables" / "demo.csv"
    table.parent.mkdir(parents=True)
    table.write_text("category,n_objects,psnr\ntotal,4,20.0\n")
    done = ws / "results" / "demo" / "render" / "1v" / "chair" / "x" / "done.json"
    done.parent.mkdir(parents=True)
    done.write_text("{}\n")
    return _snapshot(ws / "results")


CASES = [
    # (id, demo override or None, --config arguments, target, words the message must hold)
    ("misspelt_key", {"train": {"stepz": 5}}, [], TARGET, ["demo.yaml", "train", "stepz"]),
    ("wrong_type", {"train": {"steps": "many"}}, [], TARGET, ["demo.yaml", "train.steps"]),
    ("wrong_nested_type", {"model": {"mlp_fine": {"d_hidden": "wide"}}}, [], TARGET,
     ["demo.yaml", "model.mlp_fine.d_hidden"]),
    ("missing_data_root", None, ["data_root=/nonexistent/datasets"], TARGET,
     ["data_root", "/nonexistent/datasets"]),
    ("misspelt_global_key", None, ["shardz=3"], TARGET, ["shardz"]),
    ("wrong_global_type", None, ["shards=many"], TARGET, ["shards"]),
    ("unknown_default_experiment", None, ["experiment=nope"], TARGET,
     ["experiment", "config/experiments/nope.yaml"]),
    ("unknown_target_experiment", None, [], "results/tables/nope.csv",
     ["unknown experiment 'nope'", "config/experiments/nope.yaml"]),
]


@pytest.mark.parametrize(
    ("override", "config_args", "target", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_config_stops_before_any_job(
    tmp_path: Path, override: dict | None, config_args: list[str], target: str, words: list[str]
) -> None:
    raw = _demo_text(override) if override is not None else None
    ws = make_workspace(tmp_path / "ws", raw_demo=raw)
    before = _seed_results(ws)
    args = [target] + (["--config", *config_args] if config_args else [])
    result = snakemake(ws, *args)
    text = output_text(result)
    assert result.returncode != 0
    for word in words:
        assert word in text, text[-3000:]
    assert "rule synth_demo" not in text and "localrule" not in text  # no job started
    assert not (ws / "data").exists()
    assert _snapshot(ws / "results") == before
    # One message: the error is said once, without a Python traceback.
    error_lines = [line for line in text.splitlines() if words[-1] in line]
    assert len(error_lines) == 1, text[-3000:]
    assert "Traceback" not in text and "Exception" not in text, text[-3000:]


def test_newline_in_a_folder_key_stops_before_any_job(tmp_path: Path) -> None:
    # `--config` folds a newline into a space (YAML), so the value comes from a config file.
    ws = make_workspace(tmp_path / "ws")
    before = _seed_results(ws)
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"results_root": "my\nresults"}))
    result = snakemake(ws, TARGET, "--configfile", str(extra))
    text = output_text(result)
    assert result.returncode != 0
    lines = [line for line in text.splitlines() if "contains a newline" in line]
    assert len(lines) == 1 and "results_root" in lines[0], text[-3000:]
    assert "Traceback (most recent call last)" not in text
    assert not (ws / "data").exists() and not (ws / "my").exists()
    assert _snapshot(ws / "results") == before


def test_good_config_plans_every_stage(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = snakemake(ws, "-n", TARGET)
    text = output_text(result)
    assert result.returncode == 0, text[-3000:]
    for rule in ("synth_demo", "train", "render", "metrics", "table"):
        assert f"rule {rule}:" in text
