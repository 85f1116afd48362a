"""The table from a results tree built by hand: every number checked against formulas."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pixelnerf import cli
from pixelnerf.errors import PipelineError
from pixelnerf.eval import tables
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.object_scores import ObjectRow, read_rows, write_rows
from pixelnerf.eval.records import read_manifest
from pixelnerf.eval.scoring import score_shard
from pixelnerf.io import atomic_save_png

SIZE = 9  # pixels per side: the smallest odd size above SSIM's 7x7 window
N_VIEWS = 4
C1 = 0.01 ** 2  # SSIM's (K1 * data range)^2


def _psnr(pred_level: int, gt_level: int) -> float:
    return -20.0 * math.log10(abs(pred_level - gt_level) / 255.0)


def _ssim(pred_level: int, gt_level: int) -> float:
    """SSIM of two constant images: the contrast-structure term is 1."""
    a, b = pred_level / 255.0, gt_level / 255.0
    return (2 * a * b + C1) / (a * a + b * b + C1)


# object id -> category, source view, {target view: (rendered level, ground-truth level)}
TREE = {
    "03001627/c1": ("chair", 0, {1: (100, 90), 2: (50, 70)}),
    "03001627/c2": ("chair", 1, {0: (200, 180), 2: (30, 20), 3: (120, 121)}),
    "03636649/l1": ("lamp", 3, {0: (10, 40)}),
}


def _gt_levels(object_id: str) -> list[int]:
    """Ground-truth level of every view (targets as in TREE, others arbitrary but fixed)."""
    _, _, targets = TREE[object_id]
    return [targets[v][1] if v in targets else 60 + 25 * v for v in range(N_VIEWS)]


def _build_tree(root: Path, setting: str = "1v") -> tuple[Path, dict]:
    """Renders, done.json files and a manifest as the render step writes them; returns the
    manifest and the ground truth as dataset items."""
    items = {}
    for object_id, (category, source, targets) in TREE.items():
        folder = root / "render" / setting / object_id
        for view, (pred_level, _) in targets.items():
            atomic_save_png(folder / f"{view:06d}.png",
                            np.full((SIZE, SIZE, 3), pred_level, dtype=np.uint8))
        (folder / "done.json").write_text(json.dumps({
            "object_id": object_id, "category": category, "sources": [source],
            "targets": sorted(targets), "seconds": 0.1}))
        levels = torch.tensor(_gt_levels(object_id), dtype=torch.float32)
        images = (levels / 255.0).view(N_VIEWS, 1, 1, 1).expand(N_VIEWS, 3, SIZE, SIZE) * 2 - 1
        items[object_id] = {"images": images.contiguous(), "object_id": object_id}
    manifest = root / "render" / setting / "shard-0-of-1.json"
    manifest.write_text(json.dumps({"setting": setting, "objects": sorted(TREE)}))
    return manifest, items


def _expected_object(object_id: str) -> dict:
    _, _, targets = TREE[object_id]
    return {
        "n_views": len(targets),
        "psnr": np.mean([_psnr(p, g) for p, g in targets.values()]),
        "ssim": np.mean([_ssim(p, g) for p, g in targets.values()]),
    }


def _expected_baselines(object_id: str) -> dict:
    _, source, targets = TREE[object_id]
    gts = [g for _, g in targets.values()]
    source_level = _gt_levels(object_id)[source]
    return {
        "baseline:background": (np.mean([_psnr(255, g) for g in gts]),
                                np.mean([_ssim(255, g) for g in gts])),
        "baseline:source_view": (np.mean([_psnr(source_level, g) for g in gts]),
                                 np.mean([_ssim(source_level, g) for g in gts])),
    }


PAPER_HEADER = "setting,category,psnr,ssim,lpips,n_objects,status,source\n"


def _score(tmp_path: Path) -> Path:
    manifest, items = _build_tree(tmp_path)
    setting, objects = read_manifest(manifest)
    rows = score_shard(setting, objects, tmp_path / "render", items.__getitem__,
                       baselines=True, white_background=True, progress=False)
    out = tmp_path / "metrics" / "1v" / "shard-0-of-1.csv"
    write_rows(out, rows)
    return out


def test_object_rows_match_formulas(tmp_path: Path) -> None:
    rows = read_rows(_score(tmp_path))
    by_key = {(r.category, r.object_id): r for r in rows}
    assert len(rows) == 3 * len(TREE)
    for object_id, (category, _, _) in TREE.items():
        row = by_key[(category, object_id)]
        expected = _expected_object(object_id)
        assert row.setting == "1v"
        assert row.n_views == expected["n_views"]
        assert row.psnr == pytest.approx(expected["psnr"], abs=1e-5)
        assert row.ssim == pytest.approx(expected["ssim"], abs=1e-7)
        assert row.lpips is None
        for name, (psnr, ssim) in _expected_baselines(object_id).items():
            base = by_key[(name, object_id)]
            assert base.psnr == pytest.approx(psnr, abs=1e-5)
            assert base.ssim == pytest.approx(ssim, abs=1e-7)


def _write_config(path: Path, project_root: Path) -> Path:
    """The demo experiment's config (format dvr: one row per category)."""
    config = yaml.safe_load((project_root / "config" / "experiments" / "demo.yaml").read_text())
    config["name"] = "handmade"
    path.write_text(yaml.safe_dump(config))
    return path


def _read_table(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["category"]: row for row in csv.DictReader(handle)}


def test_table_every_number(tmp_path: Path, project_root: Path) -> None:
    metrics_csv = _score(tmp_path)
    paper = tmp_path / "paper.csv"
    paper.write_text(PAPER_HEADER
                     + "1v,chair,20.5,0.9,0.1,1356,confirmed,test source A\n"
                     + "1v,total,21.25,,,,unconfirmed,test source B\n"
                     + "2v,total,30.0,,,,quoted,test source C\n")
    out = tmp_path / "tables"
    status = cli.main(["table", "--config", str(_write_config(tmp_path / "exp.yaml", project_root)),
                       "--metrics", str(metrics_csv), "--paper", str(paper),
                       "--out-csv", str(out / "t.csv"), "--out-md", str(out / "t.md"),
                       "--out-plot", str(tmp_path / "plots" / "t.png")])
    assert status == 0
    with open(out / "t.csv", newline="") as handle:
        ordered = [row["category"] for row in csv.DictReader(handle)]
    assert ordered == ["chair", "lamp", "total", "baseline:background", "baseline:source_view"]
    table = _read_table(out / "t.csv")

    objects = {oid: _expected_object(oid) for oid in TREE}
    chair = [objects["03001627/c1"], objects["03001627/c2"]]
    lamp = [objects["03636649/l1"]]
    everyone = list(objects.values())
    for label, members in (("chair", chair), ("lamp", lamp), ("total", everyone)):
        row = table[label]
        assert int(row["n_objects"]) == len(members)
        for metric in ("psnr", "ssim"):
            mean = np.mean([m[metric] for m in members])  # mean over objects
            assert float(row[metric]) == pytest.approx(mean, abs=2e-6)
        assert row["lpips"] == ""
    # the total is the mean over objects, not the mean of the category rows
    category_mean = (float(table["chair"]["psnr"]) + float(table["lamp"]["psnr"])) / 2
    assert abs(float(table["total"]["psnr"]) - category_mean) > 0.1

    # paper columns: value, difference ours - paper, status and source
    assert float(table["chair"]["paper_psnr"]) == 20.5
    assert float(table["chair"]["diff_psnr"]) == pytest.approx(
        float(table["chair"]["psnr"]) - 20.5, abs=2e-6)
    assert float(table["chair"]["diff_ssim"]) == pytest.approx(
        float(table["chair"]["ssim"]) - 0.9, abs=2e-6)
    assert table["chair"]["diff_lpips"] == ""  # ours absent
    assert table["chair"]["paper_n_objects"] == "1356"
    assert table["chair"]["paper_status"] == "confirmed"
    assert table["total"]["paper_status"] == "unconfirmed"
    assert float(table["total"]["diff_psnr"]) == pytest.approx(
        float(table["total"]["psnr"]) - 21.25, abs=2e-6)
    assert table["total"]["paper_ssim"] == "" and table["total"]["diff_ssim"] == ""
    assert table["lamp"]["paper_psnr"] == "" and table["lamp"]["paper_status"] == ""

    # baselines: means over all objects, kept out of the total
    for name in ("baseline:background", "baseline:source_view"):
        row = table[name]
        assert int(row["n_objects"]) == len(TREE)
        expected = [_expected_baselines(oid)[name] for oid in TREE]
        assert float(row["psnr"]) == pytest.approx(np.mean([e[0] for e in expected]), abs=2e-6)
        assert float(row["ssim"]) == pytest.approx(np.mean([e[1] for e in expected]), abs=2e-6)
        assert row["paper_psnr"] == ""

    markdown = (out / "t.md").read_text()
    total_line = next(line for line in markdown.splitlines() if "**total**" in line)
    assert "unconfirmed" in total_line and tables.UNCONFIRMED_MARK in total_line
    assert "test source B" in markdown
    assert "2v total" in markdown  # the published row with no row of ours is listed
    assert "LPIPS: not computed" in markdown
    assert "cameras" not in _read_table(out / "t.csv")["chair"]  # not DTU, quirk off
    assert "Cameras:" not in markdown
    assert (tmp_path / "plots" / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _row(setting: str, object_id: str, psnr: float, category: str = "car",
         lpips: float | None = 0.2) -> ObjectRow:
    return ObjectRow(setting, category, object_id, 5, psnr, 0.5, lpips)


def _eval(**fields) -> EvalConfig:
    return EvalConfig(split="test", settings={"1v": {"views": [0]}}, seed=0, shards=1, **fields)


def test_per_setting_rows_and_dtu_cameras(tmp_path: Path) -> None:
    rows = [_row("1v", "a", 20.0), _row("1v", "b", 22.0), _row("2v", "a", 25.0),
            _row("10v", "a", 30.0), _row("1v", "a", 10.0, category="baseline:background")]
    paper = [tables.PaperRow("2v", "total", 24.0, None, None, None, "unconfirmed", "src")]
    table = tables.build_table("dtu", "dvr_dtu", _eval(reuse_first_object_cameras=True), rows,
                               paper)
    assert table.group_by == "setting" and table.cameras == "first_object"
    assert [r.label for r in table.rows] == ["1v", "2v", "10v", "total",
                                            "baseline:background (1v)"]
    first = table.rows[0]
    assert first.n_objects == 2 and first.ours["psnr"] == pytest.approx(21.0)
    assert first.ours["lpips"] == pytest.approx(0.2)
    assert table.rows[1].paper is paper[0] and table.rows[1].diff("psnr") == pytest.approx(1.0)
    total = table.rows[3]
    assert total.ours["psnr"] is None and total.n_objects == 2  # settings are not pooled
    text = tables.table_csv_text(table)
    assert all(line.endswith(",first_object") for line in text.splitlines()[1:])
    assert "first val scan's cameras" in tables.table_markdown(table)
    assert tables.build_table("dtu", "dvr_dtu", _eval(), rows, paper).cameras == "own"


def test_plot_draws_baselines_as_lines_and_paper_bars_only_where_published() -> None:
    import matplotlib.pyplot as plt

    from pixelnerf.report.plots import table_figure

    rows = [_row("1v", "a", 20.0), _row("1v", "b", 22.0, category="chair"),
            _row("1v", "a", 10.0, category="baseline:background"),
            _row("1v", "b", 14.0, category="baseline:background"),
            _row("1v", "a", 12.0, category="baseline:source_view")]
    figure = table_figure(tables.build_table("demo", "dvr", _eval(), rows, []))
    psnr = figure.axes[0]
    lines = {line.get_label(): line.get_ydata()[0] for line in psnr.get_lines()}
    assert lines == {"baseline:background (total)": pytest.approx(12.0),
                     "baseline:source_view (total)": pytest.approx(12.0)}
    assert [bar.get_height() for bar in psnr.patches] == pytest.approx([20.0, 22.0, 21.0])
    assert "paper" not in [t.get_text() for t in psnr.get_legend().get_texts()]
    plt.close(figure)
    paper = [tables.PaperRow("1v", "car", 21.0, None, None, None, "confirmed", "src")]
    figure = table_figure(tables.build_table("demo", "dvr", _eval(), rows, paper))
    assert len(figure.axes[0].patches) == 6  # ours and the paper's, the paper's NaN but one
    assert "paper" in [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    plt.close(figure)


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    twice = [_row("1v", "a", 20.0), _row("1v", "a", 21.0)]
    with pytest.raises(PipelineError, match="more than one"):
        tables.reduce_rows(twice, "category")
    with pytest.raises(PipelineError, match="one view setting"):
        tables.reduce_rows([_row("1v", "a", 20.0), _row("2v", "a", 21.0)], "category")
    no_source = tmp_path / "paper.csv"
    no_source.write_text(PAPER_HEADER + "1v,total,20.0,,,,confirmed,\n")
    with pytest.raises(PipelineError, match="source"):
        tables.read_paper(no_source)
    bad_status = tmp_path / "paper2.csv"
    bad_status.write_text(PAPER_HEADER + "1v,total,20.0,,,,guessed,somewhere\n")
    with pytest.raises(PipelineError, match="status"):
        tables.read_paper(bad_status)


def test_partial_lpips_is_left_empty() -> None:
    rows = [_row("1v", "a", 20.0, lpips=0.1), _row("1v", "b", 22.0, lpips=None)]
    table = tables.build_table("x", "dvr", _eval(table_rows="category"), rows, [])
    assert table.rows[0].ours["lpips"] is None
    assert any("LPIPS" in note for note in table.notes)


EXPECTED_STATUS = {"sn64": "confirmed", "srn_car": "quoted", "srn_chair": "quoted",
                   "dtu": "unconfirmed", "multi_chair": "unconfirmed"}


@pytest.mark.parametrize("experiment", ["sn64", "sn64_unseen", "srn_car", "srn_chair", "dtu",
                                        "multi_chair", "demo"])
def test_paper_files_parse_with_sources(project_root: Path, experiment: str) -> None:
    rows = tables.read_paper(project_root / "config" / "paper" / f"{experiment}.csv")
    if experiment in EXPECTED_STATUS:
        assert rows and {r.status for r in rows} == {EXPECTED_STATUS[experiment]}
        assert any(r.category == "total" for r in rows)
    else:
        assert rows == []  # no published numbers could be found: nothing invented
    for row in rows:
        assert row.psnr is not None and row.source
