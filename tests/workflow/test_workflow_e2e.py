"""End to end: the real Snakemake CLI runs the demo workflow (tiny sizes) from a fresh copy:
the table target (`make demo`'s), then `snakemake --report` with no other target in between
(the README's sequence), then everything else.

Then hostile folder names: the demo end to end with data, results and checkpoints roots whose
names hold a space, a single quote, `;` and `$`. Every value reaches the shell quoted, so the
run completes, its table equals that of the run with plain names, and nothing appears outside
the three roots (a stray `my` beside them is what an unquoted redirection writes). Both tests
are in one module so that one worker runs them with the plain run they share."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers.workflow import make_workspace, output_text, read_table, snakemake


def test_demo_workflow_from_data_to_table_report_and_noop_rerun(demo_table: Path) -> None:
    ws = demo_table  # after the table target alone
    report = snakemake(ws, "--report", "results/report.html")
    assert report.returncode == 0, output_text(report)[-2000:]
    assert (ws / "results" / "report.html").stat().st_size > 0
    assert (ws / "results" / "figures" / "demo" / "1v.png").stat().st_size > 0
    # the table's notes name the coarse sample count the renders used
    notes = (ws / "results" / "tables" / "demo.md").read_text(encoding="utf-8")
    assert "coarse samples per ray at evaluation" in notes

    run = snakemake(ws)  # rule all: table, plot, provenance, report figure
    assert run.returncode == 0, output_text(run)[-4000:]

    results = ws / "results"
    rows = read_table(results / "tables" / "demo.csv")
    categories = [row["category"] for row in rows]
    assert categories[:2] == ["car", "chair"] and categories[2] == "total"
    assert categories[3:] == ["baseline:background", "baseline:source_view"]
    total = rows[2]
    assert int(total["n_objects"]) == 4  # 2 categories x 2 test objects
    assert 0.0 < float(total["psnr"]) < 60.0 and 0.0 <= float(total["ssim"]) <= 1.0

    # Every test object rendered: one PNG per target view, done.json last, per the protocol.
    manifests = sorted((results / "demo" / "render" / "1v").glob("shard-*-of-2.json"))
    assert len(manifests) == 2
    objects = [o for m in manifests for o in json.loads(m.read_text())["objects"]]
    assert len(objects) == 4 and len(set(objects)) == 4
    for object_id in objects:
        folder = results / "demo" / "render" / "1v" / object_id
        done = json.loads((folder / "done.json").read_text())
        assert len(done["sources"]) == 1 and len(done["targets"]) == 7
        assert sorted(p.name for p in folder.glob("*.png")) == [
            f"{v:06d}.png" for v in done["targets"]
        ]

    provenance = json.loads((results / "tables" / "demo.provenance.json").read_text())
    assert {"git", "packages", "device", "stages", "experiment_config"} <= set(provenance)
    assert {"train", "render", "metrics"} <= set(provenance["stages"])
    assert provenance["stages"]["render"]["jobs"] == 2
    assert (results / "plots" / "demo.png").stat().st_size > 0
    assert (results / "figures" / "demo" / "1v.png").stat().st_size > 0
    for stage in ("synth_demo", "train", "tables", "provenance"):
        assert list((results / "logs" / stage).rglob("*.log")), stage

    # A rerun of the finished target does nothing and touches nothing.
    before = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    dry = snakemake(ws, "-n", "results/tables/demo.csv")
    assert dry.returncode == 0 and "Nothing to be done" in output_text(dry)
    # Another device (say, training on a CPU, rendering on a GPU node) redoes no training,
    # rendering, scoring or table; only the provenance record, which holds the configuration.
    moved = snakemake(ws, "-n", "results/tables/demo.provenance.json", "--config", "device=cpu")
    planned = re.findall(r"^(?:local)?rule (\w+):", output_text(moved), re.M)
    assert moved.returncode == 0 and set(planned) == {"provenance"}, output_text(moved)[-2000:]
    again = snakemake(ws, "results/tables/demo.csv")
    assert again.returncode == 0, output_text(again)[-2000:]
    assert {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()} == before

    # The approximate evaluation: a seeded sample of objects and views, with intervals.
    approx = snakemake(ws, "results/approx/demo.csv")
    assert approx.returncode == 0, output_text(approx)[-2000:]
    assert "rule train" not in output_text(approx)
    sampled = json.loads(
        (results / "demo" / "approx" / "render" / "1v" / "shard-0-of-1.json").read_text()
    )["objects"]
    assert 1 <= len(sampled) <= 4 and set(sampled) <= set(objects)
    assert (results / "approx" / "demo.csv").read_text().count("\n") >= 2

    report = snakemake(ws, "--report", "results/report.html")
    assert report.returncode == 0, output_text(report)[-2000:]
    assert (results / "report.html").stat().st_size > 0


# Relative to the workspace, as a user would type them; `$x` would expand and `;` would end
# the command if either reached a shell unquoted.
ROOTS = {
    "data_root": "my data's; $x",
    "results_root": "my results's; $(echo)",
    "checkpoints_root": "my ckpt's; $HOME",
}
# What Snakemake itself keeps in the working directory.
SNAKEMAKE_STATE = ".snakemake"


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_demo_with_hostile_root_names_matches_plain_run(demo_table: Path,
                                                       tmp_path: Path) -> None:
    plain = demo_table  # the plain run (conftest.py)
    ws = make_workspace(tmp_path / "hostile")
    (ws / ROOTS["data_root"]).mkdir()  # a configured data_root must exist
    before = _entries(ws)
    config = [f"{key}={value}" for key, value in ROOTS.items()]
    results = ws / ROOTS["results_root"]
    run = snakemake(ws, "--config", *config)  # rule all: table, plot, provenance, figure
    assert run.returncode == 0, output_text(run)[-4000:]

    created = _entries(ws) - before
    assert created == {ROOTS["results_root"], ROOTS["checkpoints_root"], SNAKEMAKE_STATE}
    assert (ws / ROOTS["data_root"] / "demo").is_dir()
    assert (ws / ROOTS["checkpoints_root"] / "demo" / "pixel_nerf_latest").exists()
    for name in ("tables/demo.provenance.json", "plots/demo.png", "figures/demo/1v.png"):
        assert (results / name).stat().st_size > 0, name
    table = (results / "tables" / "demo.csv").read_text(encoding="utf-8")
    assert table == (plain / "results" / "tables" / "demo.csv").read_text(encoding="utf-8")
