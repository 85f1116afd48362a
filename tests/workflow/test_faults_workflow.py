"""Faults met by the real workflow. A render damaged between the render and metrics jobs:
the metrics job stops, naming the object and the file; the next run renders that object
again, only it, and completes the table. A target that names what does not exist (an
experiment, a photo): the run stops while the DAG is built, with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.demo import TINY_DEMO, merged
from helpers.workflow import make_workspace, output_text, snakemake

DEMO = merged(TINY_DEMO, {"eval": {"shards": 1}})


def test_a_render_damaged_before_metrics_is_rendered_again_alone(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", DEMO)
    target = "results/tables/demo.csv"
    renders = ws / "results" / "demo" / "render" / "1v"
    first = snakemake(ws, target, "--until", "render")
    assert first.returncode == 0, output_text(first)[-4000:]
    dones = {p: p.stat().st_mtime_ns for p in renders.rglob("done.json")}
    assert len(dones) >= 2
    victim = sorted(sorted(dones)[0].parent.glob("*.png"))[0]
    victim.unlink()

    failed = snakemake(ws, target)
    assert failed.returncode != 0
    logs = "".join(p.read_text() for p in (ws / "results" / "logs" / "metrics").rglob("*.log"))
    object_id = str(victim.parent.relative_to(renders))
    line = next(ln for ln in logs.splitlines() if ln.startswith("pixelnerf: error:"))
    assert f"{victim.name} is missing, yet its object {object_id} is marked rendered" in line

    rerun = snakemake(ws, target)
    assert rerun.returncode == 0, output_text(rerun)[-4000:]
    assert victim.is_file()
    after = {p: p.stat().st_mtime_ns for p in renders.rglob("done.json")}
    changed = [p for p in after if after[p] != dones.get(p)]
    assert changed == [victim.parent / "done.json"]
    render_log = ws / "results" / "logs" / "render" / "demo" / "1v" / "shard-0-of-1.log"
    assert f"1 objects rendered, {len(dones) - 1} already done" in render_log.read_text()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("results/tables/nosuchexp.csv",
         "unknown experiment 'nosuchexp': config/experiments/nosuchexp.yaml does not exist "
         "(known: demo, dtu, multi_chair, sn64, sn64_unseen, srn_car, srn_chair)"),
        ("results/real/demo/nosuchphoto/done.json",
         "no photo named nosuchphoto in input/ (found: none)"),
    ],
    ids=["experiment", "photo"],
)
def test_a_target_of_nothing_stops_the_dag_with_one_line(
    tmp_path: Path, target: str, message: str
) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = snakemake(ws, target)
    assert result.returncode == 1, output_text(result)[-3000:]
    # Snakemake's own header ends with this line; the error is all that follows it.
    after_dag = result.stderr.split("Building DAG of jobs...\n", 1)[1]
    assert after_dag.splitlines() == [f"pixelnerf workflow: error: {message}"]
    text = output_text(result)
    assert "Traceback" not in text and "InputFunctionException" not in text
    assert not (ws / "results").exists() and not (ws / "data").exists()
