"""The README's sequence: a table target (`make demo` builds results/tables/demo.csv), then
`snakemake --report`, with no other target in between."""

from __future__ import annotations

from pathlib import Path

from helpers.workflow import make_workspace, output_text, snakemake


def test_report_after_the_demo_table_target(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    table = snakemake(ws, "results/tables/demo.csv")
    assert table.returncode == 0, output_text(table)[-4000:]
    report = snakemake(ws, "--report", "results/report.html")
    assert report.returncode == 0, output_text(report)[-2000:]
    html = ws / "results" / "report.html"
    assert html.stat().st_size > 0
    assert (ws / "results" / "figures" / "demo" / "1v.png").stat().st_size > 0
    # the table's notes name the coarse sample count the renders used
    notes = (ws / "results" / "tables" / "demo.md").read_text(encoding="utf-8")
    assert "coarse samples per ray at evaluation" in notes
