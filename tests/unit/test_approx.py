"""The approximate evaluation: the seeded sampler and the 95% intervals."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from pixelnerf import cli
from pixelnerf.errors import PipelineError
from pixelnerf.eval import approx
from pixelnerf.eval.object_scores import ObjectRow, write_rows

# Student's t quantiles t_{0.975, df}, from printed tables (independent of scipy).
T975 = {1: 12.706205, 4: 2.776445, 9: 2.262157}


def _candidates(n_objects: int = 30, n_views: int = 24, source: int = 0) -> dict[str, list[int]]:
    return {f"{cat:02d}/obj{i:03d}": [v for v in range(n_views) if v != (source + i) % n_views]
            for cat in range(3) for i in range(n_objects // 3)}


def test_sampler_is_seeded_and_respects_candidates() -> None:
    candidates = _candidates()
    plan = approx.sample_plan(candidates, n_objects=7, n_views=3, seed=11)
    assert plan == approx.sample_plan(dict(reversed(list(candidates.items()))), 7, 3, 11)
    assert len(plan) == 7 and len({p.object_id for p in plan}) == 7
    assert [p.object_id for p in plan] == sorted(p.object_id for p in plan)
    for pick in plan:
        assert len(pick.views) == 3 and len(set(pick.views)) == 3
        assert set(pick.views) <= set(candidates[pick.object_id])  # never a source view
        assert list(pick.views) == sorted(pick.views)
    other = approx.sample_plan(candidates, n_objects=7, n_views=3, seed=12)
    assert other != plan


def test_views_of_an_object_do_not_depend_on_the_rest_of_the_sample() -> None:
    candidates = _candidates()
    object_id = sorted(candidates)[4]
    alone = approx.sample_views(object_id, candidates[object_id], 5, seed=3)
    in_plan = {p.object_id: p.views for p in approx.sample_plan(candidates, 30, 5, seed=3)}
    assert in_plan[object_id] == alone


def test_sampler_takes_everything_when_asked_for_more() -> None:
    candidates = {"a": [1, 2], "b": [0]}
    plan = approx.sample_plan(candidates, n_objects=10, n_views=5, seed=0)
    assert [(p.object_id, p.views) for p in plan] == [("a", (1, 2)), ("b", (0,))]


def test_sampler_rejects_bad_counts() -> None:
    with pytest.raises(PipelineError, match="eval.approx.objects"):
        approx.sample_objects(["a"], 0, seed=0)
    with pytest.raises(PipelineError, match="no candidate"):
        approx.sample_views("a", [], 1, seed=0)


def test_draws_are_roughly_uniform() -> None:
    """Every object is drawn about equally often over many seeds (a wrong pool or a
    seed that is ignored would fail this)."""
    ids = [f"o{i}" for i in range(10)]
    counts = dict.fromkeys(ids, 0)
    for seed in range(2000):
        for object_id in approx.sample_objects(ids, 3, seed):
            counts[object_id] += 1
    expected = 2000 * 3 / 10
    assert all(abs(c - expected) < 0.15 * expected for c in counts.values())


@pytest.mark.parametrize("n", [2, 5, 10])
def test_interval_matches_t_formula(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.normal(25.0, 2.0, size=n)
    iv = approx.interval(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = T975[n - 1] * std / math.sqrt(n)
    assert iv.n == n
    assert iv.mean == pytest.approx(mean, abs=1e-12)
    assert iv.std == pytest.approx(std, rel=1e-12)
    assert iv.low == pytest.approx(mean - half, rel=1e-6)
    assert iv.high == pytest.approx(mean + half, rel=1e-6)


def test_interval_of_one_value_has_no_bounds() -> None:
    iv = approx.interval([3.0])
    assert (iv.n, iv.mean, iv.low, iv.high) == (1, 3.0, None, None)


def test_interval_covers_the_mean_about_95_percent() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    trials = 2000
    for _ in range(trials):
        iv = approx.interval(rng.normal(10.0, 3.0, size=6))
        hits += iv.low <= 10.0 <= iv.high
    assert 0.93 < hits / trials < 0.97


def test_summary_csv_from_metrics_cli(tmp_path: Path) -> None:
    psnrs = [20.0, 22.0, 24.0, 26.0, 28.0]
    rows = [ObjectRow("1v", "chair", f"o{i}", 2, p, 0.8, None) for i, p in enumerate(psnrs)]
    rows.append(ObjectRow("1v", "baseline:background", "o0", 2, 5.0, 0.1, None))
    metrics_csv = tmp_path / "m.csv"
    write_rows(metrics_csv, rows)
    out = tmp_path / "approx" / "exp.csv"
    assert cli.main(["approx-summary", "--metrics", str(metrics_csv), "--out", str(out)]) == 0
    with open(out, newline="") as handle:
        summary = {row["metric"]: row for row in csv.DictReader(handle)}
    psnr = summary["psnr"]
    assert int(psnr["n_objects"]) == 5 and int(psnr["n_views"]) == 10  # baseline left out
    half = T975[4] * math.sqrt(10.0) / math.sqrt(5)  # sample std of psnrs is sqrt(10)
    assert float(psnr["mean"]) == pytest.approx(24.0)
    assert float(psnr["ci_low"]) == pytest.approx(24.0 - half, rel=1e-6)
    assert float(psnr["ci_high"]) == pytest.approx(24.0 + half, rel=1e-6)
    assert float(psnr["confidence"]) == 0.95
    assert float(summary["ssim"]["ci_low"]) == pytest.approx(0.8)  # no spread, no width
    assert float(summary["ssim"]["mean"]) == pytest.approx(0.8)
    assert summary["lpips"]["mean"] == "" and summary["lpips"]["ci_low"] == ""


def test_plan_on_demo_data(tmp_path: Path, project_root: Path) -> None:
    """The sampler over the demo's test objects, with the targets of the demo protocol."""
    from helpers.evaluation import tiny_demo_config

    from pixelnerf.data import open_dataset
    from pixelnerf.eval.config import EvalConfig
    from pixelnerf.eval.protocol import Protocol

    data_root = tmp_path / "data"
    _, config = tiny_demo_config(project_root, data_root, tmp_path / "demo.yaml")
    approx_cfg = config["eval"]["approx"]
    dataset = open_dataset("dvr", data_root / "demo_tiny", "test")
    protocol = Protocol.from_config(EvalConfig.of_experiment(config))
    n_views = dataset[0]["images"].shape[0]
    selections = {e.object_id: protocol.select(approx_cfg["setting"], e.object_id, n_views)
                  for e in dataset.entries}
    candidates = {oid: sel.targets for oid, sel in selections.items()}
    plan = approx.sample_plan(candidates, approx_cfg["objects"], approx_cfg["views"],
                              approx_cfg["seed"])
    assert len(plan) == min(approx_cfg["objects"], len(dataset))
    assert {p.object_id for p in plan} <= set(selections)
    for pick in plan:
        assert len(pick.views) == min(approx_cfg["views"], len(candidates[pick.object_id]))
        assert not set(pick.views) & set(selections[pick.object_id].sources)
    assert plan == approx.sample_plan(candidates, approx_cfg["objects"], approx_cfg["views"],
                                      approx_cfg["seed"])
