"""Kill and resume: SIGKILL Snakemake and its jobs in the middle of rendering, run again.

The rerun completes, objects finished before the kill are not rendered again (their done.json
files are untouched), and the table equals that of an uninterrupted rendering by the same
model with the same seed.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from helpers.demo import TINY_DEMO, merged
from helpers.workflow import (
    kill_session,
    make_workspace,
    output_text,
    read_table,
    snakemake,
    start_snakemake,
)

# One render job over 8 objects, so that the kill lands between objects of one job.
RESUME_DEMO = merged(TINY_DEMO, {
    "dataset": {"synth": {"test_objects": 4}},
    "eval": {"shards": 1},
})
N_OBJECTS = 8
POLL_S = 0.05
KILL_DEADLINE_S = 400


def _done_files(render_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in render_dir.rglob("done.json")}


def test_killed_render_resumes_without_rendering_finished_objects(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", RESUME_DEMO)
    target = "results/tables/demo.csv"
    render_dir = ws / "results" / "demo" / "render" / "1v"
    manifest = render_dir / "shard-0-of-1.json"

    process = start_snakemake(ws, target, log=tmp_path / "first.log")
    deadline = time.monotonic() + KILL_DEADLINE_S
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if len(_done_files(render_dir)) >= 2:
                break
            time.sleep(POLL_S)
    finally:
        kill_session(process)
    log = (tmp_path / "first.log").read_text()
    finished = _done_files(render_dir)
    assert 2 <= len(finished) < N_OBJECTS, f"kill missed the rendering: {log[-3000:]}"
    assert not manifest.exists()

    # The documented recovery: after a kill, remove Snakemake's stale lock, then run again.
    unlock = snakemake(ws, target, "--unlock")
    assert unlock.returncode == 0, output_text(unlock)[-2000:]
    rerun = snakemake(ws, target, "--rerun-incomplete")
    assert rerun.returncode == 0, output_text(rerun)[-4000:]
    after = _done_files(render_dir)
    assert len(after) == N_OBJECTS
    for path, mtime in finished.items():
        assert after[path] == mtime, f"{path.parent.name} was rendered again"
    render_log = (ws / "results" / "logs" / "render" / "demo" / "1v" / "shard-0-of-1.log")
    assert f"{N_OBJECTS - len(finished)} objects rendered, {len(finished)} already done" in (
        render_log.read_text()
    )
    resumed = read_table(ws / "results" / "tables" / "demo.csv")

    # The same model, rendered without interruption: the same table.
    for folder in ("render", "metrics"):
        shutil.rmtree(ws / "results" / "demo" / folder)
    shutil.rmtree(ws / "results" / "tables")
    fresh = snakemake(ws, target)
    assert fresh.returncode == 0, output_text(fresh)[-4000:]
    assert "rule train" not in fresh.stdout + fresh.stderr  # weights were not retrained
    assert read_table(ws / "results" / "tables" / "demo.csv") == resumed
    assert json.loads(manifest.read_text())["objects"]
