"""SLURM for real: the demo workflow through `workflow/profiles/slurm` (plus the CPU test layer
`workflow/profiles/slurm-test`) on a one-node SLURM cluster started on 127.0.0.1 by
`tests/cluster/slurm/cluster.py`, with a render job cancelled (`scancel`) and one killed at its time
limit (TIMEOUT) and resubmitted with more time by the profile's retries.

Needs root and the software of `tests/cluster/slurm/install.sh`; about 12 minutes on 2 cores.
Where that software is absent the test is skipped with a one-line reason, except under
`CI=true` (`.ci/run` installs it), where its absence fails; `pytest --no-slurm` skips it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from helpers import PROJECT_ROOT
from helpers.demo import TINY_DEMO, merged
from helpers.untrained import save_untrained_model
from helpers.workflow import (
    VENV_BIN,
    kill_session,
    make_workspace,
    output_text,
    read_table,
    snakemake,
    start_snakemake,
)

sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))
from cluster import Cluster, ClusterSettings, absence_verdict, missing_programs  # noqa: E402

BASE_PROFILE = PROJECT_ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
TEST_LAYER = PROJECT_ROOT / "workflow" / "profiles" / "slurm-test" / "config.yaml"
PROFILES = ("--profile", "workflow/profiles/slurm", "--profile", "workflow/profiles/slurm-test")
TARGET = "results/tables/demo.csv"  # the target of `make demo`
SETTINGS = ClusterSettings()
RUN_TIMEOUT_S = 900

# The tiny demo, with rendering heavy enough that one job rendering every test object runs
# well past a 1-minute time limit (slurmctld enforces limits every 30 s, so a 1-minute job
# dies 60-90 s in): test objects of 128x128 pixels, 7 target views, 64+32+16 samples. How
# many objects that takes depends on the CPU, so the test measures one object's render on
# one core first (calibrated_demo) and makes enough for TIMEOUT_WORK_S of rendering.
SLURM_DEMO = merged(TINY_DEMO, {
    "dataset": {"synth": {"test_objects": 9, "image_size": 128}},
    "renderer": {"n_coarse": 64, "n_fine": 32, "n_fine_depth": 16},
})
# One core's rendering of every test object. The first attempt of the one-job render is
# killed 60-90 s in; the second (2 minutes) must finish the rest: more than 90 s of work less
# the ~10 s a job needs to start, less than 60 s + 120 s less two starts and a margin.
TIMEOUT_WORK_S = 115
MIN_OBJECTS_PER_CATEGORY = 3  # shard 0 of 2 then has enough to be cancelled mid-way
SETTING = "1v"
# Rules that always run as cluster jobs (the workflow's localrules run beside Snakemake).
CLUSTER_RULES = {"synth_demo", "train", "render", "metrics"}
# Outputs removed before each fault run (training and data are kept: only evaluation reruns).
EVAL_OUTPUTS = ("results/demo/render", "results/demo/metrics", "results/tables",
                "results/plots", "results/figures")
RENDER_SUMMARY = re.compile(r"(\d+) objects rendered, (\d+) already done")


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the profile layer


def test_slurm_test_layer_restates_every_rule_of_the_base_profile_without_gpus() -> None:
    """Several --profile flags merge top-level keys whole, so the layer's set-resources
    replaces the base profile's: it must name the same rules with the same keys, so that a
    rule added to the base profile cannot keep a GPU request on a CPU-only test cluster."""
    base, layer = load_yaml(BASE_PROFILE), load_yaml(TEST_LAYER)
    assert base["executor"] == "slurm" and base["retries"] >= 1
    assert set(layer["set-resources"]) == set(base["set-resources"])
    for rule, resources in base["set-resources"].items():
        # gpu may be the rule's own (train: train.gpus), which the layer must still zero
        assert set(layer["set-resources"][rule]) - {"gpu"} == set(resources) - {"gpu"}, rule
        assert layer["set-resources"][rule].get("gpu", 0) == 0, rule
    assert set(layer["default-resources"]) == set(base["default-resources"])
    assert layer["default-resources"]["slurm_partition"] == SETTINGS.partition
    assert layer["default-resources"]["slurm_account"] == SETTINGS.account
    # executor, retries and rerun-incomplete are what is being tested: the base profile's own
    assert not {"executor", "retries", "rerun-incomplete", "jobs"} & set(layer)


# --------------------------------------------------------------------------- the cluster


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if request.config.getoption("no_slurm", default=False):
        pytest.skip("SLURM cluster test skipped (--no-slurm); CI runs it")
    verdict = absence_verdict(missing_programs(), os.environ)
    if verdict is not None:
        fails, reason = verdict
        if fails:
            pytest.fail(reason)
        pytest.skip(reason)
    if os.geteuid() != 0:
        pytest.fail("the SLURM test starts slurmd and must run as root (or pass --no-slurm)")
    # Not under pytest's tmp folder: munged wants its socket's folders open to all users.
    root = Path(tempfile.mkdtemp(prefix="pixelnerf-slurm-"))
    root.chmod(0o755)
    instance = Cluster(root / "state", SETTINGS)
    try:
        instance.start()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLURM_CONF", str(instance.slurm_conf))
            yield instance
    finally:
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- helpers


def run_workflow(ws: Path, *extra: str) -> str:
    """The workflow through SLURM to completion; Snakemake's output."""
    run = snakemake(ws, *PROFILES, TARGET, *extra, timeout=RUN_TIMEOUT_S)
    text = output_text(run)
    assert run.returncode == 0, text[-6000:]
    return text


def remove_evaluation(ws: Path) -> None:
    for relative in EVAL_OUTPUTS:
        shutil.rmtree(ws / relative, ignore_errors=True)


def shard_comment(shard: int, shards: int) -> str:
    """The comment the executor plugin gives a render job (rule and wildcards)."""
    return f"rule_render_wildcards_demo_{SETTING}_{shard}_{shards}"


def jobs_with_comment(cluster: Cluster, comment: str) -> list[dict[str, str]]:
    return sorted((j for j in cluster.jobs() if j["Comment"] == comment),
                  key=lambda j: int(j["JobIDRaw"]))


def done_times(ws: Path, objects: list[str]) -> dict[str, int]:
    """mtime (ns) of each finished object's done.json, for objects that have one."""
    render = ws / "results" / "demo" / "render" / SETTING
    return {o: (render / o / "done.json").stat().st_mtime_ns
            for o in objects if (render / o / "done.json").exists()}


def render_summary(ws: Path, shard: int, shards: int) -> tuple[int, int]:
    """(rendered, already done) from the last attempt's render log of a shard."""
    log = ws / "results" / "logs" / "render" / "demo" / SETTING / f"shard-{shard}-of-{shards}.log"
    found = RENDER_SUMMARY.findall(log.read_text(encoding="utf-8", errors="replace"))
    assert found, f"{log} has no summary line"
    rendered, skipped = found[-1]
    return int(rendered), int(skipped)


def sacct_time(value: str) -> float:
    """A sacct timestamp (local time, seconds) as a POSIX time."""
    return datetime.fromisoformat(value).timestamp()


def running_job(cluster: Cluster, comment: str) -> str | None:
    """The id of the running job with ``comment`` (squeue), if any."""
    out = cluster.command("squeue", "-h", "-t", "RUNNING", "-o", "%i|%k", check=False)
    for line in out.splitlines():
        job_id, _, job_comment = line.partition("|")
        if job_comment.strip() == comment:
            return job_id.strip()
    return None


def check_every_cluster_rule_ran_as_sbatch_job(cluster: Cluster, output: str) -> None:
    """Each job Snakemake sent to the cluster is an sbatch job that sacct reports
    COMPLETED under its rule, in the layer's partition and account; no local run of them."""
    remote_rules = re.findall(r"^rule (\w+):$", output, flags=re.M)
    local_rules = set(re.findall(r"^localrule (\w+):$", output, flags=re.M))
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    assert set(remote_rules) >= CLUSTER_RULES, remote_rules
    assert not CLUSTER_RULES & local_rules, local_rules
    assert len(submitted) == len(remote_rules), (remote_rules, submitted)
    accounted = {j["JobIDRaw"]: j for j in cluster.jobs()}
    for job_id in submitted:
        job = accounted.get(job_id)
        assert job is not None, f"SLURM job {job_id} is not in sacct"
        assert job["State"] == "COMPLETED", job
        assert job["Partition"] == SETTINGS.partition and job["Account"] == SETTINGS.account
    comments = [accounted[j]["Comment"] for j in submitted]
    assert sorted(c.split("_wildcards_")[0][len("rule_"):] for c in comments) == sorted(
        remote_rules)
    # render shards are separate jobs
    shards = [c for c in comments if c.startswith("rule_render_")]
    assert sorted(shards) == [shard_comment(0, 2), shard_comment(1, 2)]


# --------------------------------------------------------------------------- the test


def calibrated_demo(probe: Path) -> tuple[dict, int]:
    """SLURM_DEMO with enough test objects for TIMEOUT_WORK_S of one-core rendering.

    Times the render step itself (``pixelnerf render`` on one thread, as the render job runs
    it) on two objects of the test's size with random weights (speed does not depend on
    them); the faster of the two (the first also pays one-off costs) is an object's cost.
    Returns the demo override and the number of test objects.
    """
    synth = SLURM_DEMO["dataset"]["synth"]
    workspace = make_workspace(probe, merged(SLURM_DEMO, {"dataset": {"synth": {
        "categories": synth["categories"][:1], "test_objects": 2}}}))
    config = workspace / "config" / "experiments" / "demo.yaml"
    experiment = load_yaml(config)
    data = workspace / "data"
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def pixelnerf(*args: str) -> None:
        subprocess.run([str(VENV_BIN / "pixelnerf"), *args], env=env, capture_output=True,
                       text=True, check=True)

    pixelnerf("synth-demo", str(data / experiment["dataset"]["dir"]), "--config", str(config))
    checkpoint = save_untrained_model(experiment, workspace / "model.pt")
    pixelnerf("render", "--config", str(config), "--data-root", str(data), "--checkpoint",
              str(checkpoint), "--setting", SETTING, "--shard", "0", "--shards", "1",
              "--out", str(workspace / "render"), "--device", "cpu", "--no-progress")
    seconds = [json.loads(done.read_text())["seconds"]
               for done in (workspace / "render" / SETTING).rglob("done.json")]
    assert len(seconds) == 2, seconds
    categories = len(synth["categories"])
    per_category = max(
        MIN_OBJECTS_PER_CATEGORY, math.ceil(TIMEOUT_WORK_S / (categories * min(seconds)))
    )
    override = merged(SLURM_DEMO, {"dataset": {"synth": {"test_objects": per_category}}})
    return override, categories * per_category


def test_demo_workflow_on_slurm_resumes_after_scancel_and_timeout(
    cluster: Cluster, tmp_path: Path
) -> None:
    demo, n_objects = calibrated_demo(tmp_path / "probe")
    ws = make_workspace(tmp_path / "ws", demo)
    table_csv = ws / "results" / "tables" / "demo.csv"
    render_dir = ws / "results" / "demo" / "render" / SETTING

    # 1. Uninterrupted: the reference table; every cluster rule is an sbatch job.
    output = run_workflow(ws)
    check_every_cluster_rule_ran_as_sbatch_job(cluster, output)
    reference = read_table(table_csv)
    assert reference and reference[0]["category"] != "total"
    shard0 = json.loads((render_dir / "shard-0-of-2.json").read_text())["objects"]
    everything = shard0 + json.loads((render_dir / "shard-1-of-2.json").read_text())["objects"]
    assert len(set(everything)) == n_objects

    # 2. scancel the job of render shard 0 once it has finished some of its objects, not all.
    remove_evaluation(ws)
    log = tmp_path / "scancel-run.log"
    process = start_snakemake(ws, *PROFILES, TARGET, log=log)
    try:
        cancelled, done_before = cancel_render_midway(cluster, process, ws, shard0, log)
        process.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            kill_session(process)
    assert process.returncode == 0, log.read_text()[-6000:]
    assert read_table(table_csv) == reference
    attempts = jobs_with_comment(cluster, shard_comment(0, 2))
    assert [j["JobIDRaw"] for j in attempts].index(cancelled) == len(attempts) - 2, attempts
    assert attempts[-2]["State"].startswith("CANCELLED") and attempts[-1]["State"] == "COMPLETED"
    # objects finished before the cancel were not rendered again; the rest were
    assert {o: t for o, t in done_times(ws, shard0).items() if o in done_before} == done_before
    rendered, skipped = render_summary(ws, 0, 2)
    assert skipped >= len(done_before) and rendered >= 1 and rendered + skipped == len(shard0)

    # 3. One render job for all objects with a 1-minute limit: SLURM kills it (TIMEOUT), the
    # profile's retries resubmit it with runtime x attempt, and it resumes.
    remove_evaluation(ws)
    timeout_profile = write_short_render_profile(ws)
    run_workflow(ws, "--profile", str(timeout_profile), "--config", "shards=1")
    assert read_table(table_csv) == reference
    attempts = jobs_with_comment(cluster, shard_comment(0, 1))
    states = [j["State"] for j in attempts]
    assert states[0] == "TIMEOUT" and states[-1] == "COMPLETED", attempts
    limits = [j["Timelimit"] for j in attempts]
    assert limits[0] == "00:01:00" and limits == sorted(set(limits)), limits
    slurm_logs = ws / ".snakemake" / "slurm_logs" / "rule_render" / f"demo_{SETTING}_0_1"
    killed = attempts[0]
    assert "DUE TO TIME LIMIT" in (slurm_logs / f"{killed['JobIDRaw']}.log").read_text()
    # The first kill came mid-way: some objects were finished by then, not all.
    times = done_times(ws, everything)
    assert len(times) == n_objects
    first_killed_end = sacct_time(attempts[0]["End"])
    assert 1 <= len([t for t in times.values() if t / 1e9 <= first_killed_end + 1]) < n_objects
    # Objects finished before the last killed attempt ended (done.json written before its
    # end) were skipped by the final attempt, which rendered only the others. (A later
    # attempt can finish every object and still be killed in its last seconds, before the
    # shard's manifest; the final attempt then skips them all.)
    last_killed_end = sacct_time(attempts[-2]["End"])
    before_kill = [o for o, t in times.items() if t / 1e9 <= last_killed_end + 1]
    rendered, skipped = render_summary(ws, 0, 1)
    assert (rendered, skipped) == (n_objects - len(before_kill), len(before_kill))


def cancel_render_midway(
    cluster: Cluster, process: subprocess.Popen, ws: Path, shard: list[str], log: Path
) -> tuple[str, dict[str, int]]:
    """Wait until the render job of shard 0 runs and has finished at least one of its
    objects but not all, then scancel it. Returns its job id and the finished objects'
    done.json times at that moment."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Snakemake ended before the render job was cancelled:\n"
                        f"{log.read_text()[-4000:]}")
        job_id = running_job(cluster, shard_comment(0, 2))
        done = done_times(ws, shard)
        if job_id is not None and 1 <= len(done) < len(shard) - 1:
            cluster.command("scancel", job_id)
            return job_id, done
        time.sleep(0.5)
    pytest.fail("render shard 0 never ran with objects left to cancel")


def write_short_render_profile(ws: Path) -> Path:
    """A third profile: the test layer's set-resources with a 1-minute render runtime per
    attempt (set-resources is replaced whole, so every rule is restated)."""
    resources = load_yaml(TEST_LAYER)["set-resources"]
    resources["render"]["runtime"] = "1 * attempt"
    path = ws / "short-render-profile" / "config.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"set-resources": resources}, sort_keys=False))
    return path.parent
