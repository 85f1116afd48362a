"""Hostile folder names: the demo end to end with data, results and checkpoints roots whose
names hold a space, a single quote, `;` and `$`. Every value reaches the shell quoted, so the
run completes, its table equals that of a run with plain names, and nothing appears outside
the three roots (a stray `my` beside them is what an unquoted redirection writes)."""

from __future__ import annotations

from pathlib import Path

from helpers.workflow import make_workspace, output_text, snakemake

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
