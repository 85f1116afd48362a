"""SLURM for real: the demo workflow through `workflow/profiles/slurm` (plus the CPU test layer
`workflow/profiles/slurm-test`) on a one-node SLURM cluster started on 127.0.0.1 by
`tests/cluster/slurm/cluster.py`. After an uninterrupted run, one evaluation run has a render
job cancelled (`scancel`) and the other killed at its time limit (TIMEOUT); the profile's
retries resubmit both, the second with more time, and both resume.

Needs root and the software of `tests/cluster/slurm/install.sh`; about 5 minutes on 2 cores,
most of it waiting on SLURM, so `make test` runs it beside the other tests. Where that
software is absent the test is skipped with a one-line reason, except under `CI=true`
(`.ci/run` installs it), where its absence fails; `pytest --no-slurm` skips it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
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
from helpers.workflow import (
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

# The tiny demo with test objects that each take a second or more to render on one core, so
# that the test can act on a render job between two of its objects: 5 per category make shards
# of 5, and a job is interrupted once 1 to 3 of its objects are finished.
SLURM_DEMO = merged(TINY_DEMO, {
    "dataset": {"synth": {"test_objects": 5, "image_size": 64}},
    "renderer": {"n_coarse": 64, "n_fine": 32, "n_fine_depth": 16},
})
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


def test_demo_workflow_on_slurm_resumes_after_scancel_and_timeout(
    cluster: Cluster, tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path / "ws", SLURM_DEMO)
    table_csv = ws / "results" / "tables" / "demo.csv"
    render_dir = ws / "results" / "demo" / "render" / SETTING

    # 1. Uninterrupted: the reference table; every cluster rule is an sbatch job.
    output = run_workflow(ws)
    check_every_cluster_rule_ran_as_sbatch_job(cluster, output)
    reference = read_table(table_csv)
    assert reference and reference[0]["category"] != "total"
    shards = [json.loads((render_dir / f"shard-{i}-of-2.json").read_text())["objects"]
              for i in range(2)]
    assert len(set(shards[0] + shards[1])) == len(shards[0]) + len(shards[1])
    assert min(len(objects) for objects in shards) >= 4, shards

    # 2. The evaluation again, with render jobs limited to 1 minute per attempt: the job of
    # shard 0 is cancelled part-way; the job of shard 1 is frozen part-way (SIGSTOP) and SLURM
    # kills it at its time limit. Freezing makes "part-way" independent of the machine's
    # speed: the kill finds exactly the objects that were finished when it froze.
    remove_evaluation(ws)
    log = tmp_path / "interrupted-run.log"
    profile = write_short_render_profile(ws)
    process = start_snakemake(ws, *PROFILES, "--profile", str(profile), TARGET, log=log)
    try:
        (cancelled, done_at_cancel), (frozen, done_at_freeze) = interrupt_renders_midway(
            cluster, process, ws, shards, log)
        process.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            kill_session(process)
    assert process.returncode == 0, log.read_text()[-6000:]
    assert read_table(table_csv) == reference

    # Shard 0: the cancelled attempt is followed by one that completes; objects finished
    # before the cancel were not rendered again, the rest were.
    attempts = jobs_with_comment(cluster, shard_comment(0, 2))
    assert [j["JobIDRaw"] for j in attempts].index(cancelled) == len(attempts) - 2, attempts
    assert attempts[-2]["State"].startswith("CANCELLED") and attempts[-1]["State"] == "COMPLETED"
    assert {o: t for o, t in done_times(ws, shards[0]).items() if o in done_at_cancel} == (
        done_at_cancel)
    rendered, skipped = render_summary(ws, 0, 2)
    assert skipped >= len(done_at_cancel) and rendered >= 1
    assert rendered + skipped == len(shards[0])

    # Shard 1: killed at its 1-minute limit (TIMEOUT), resubmitted with runtime x attempt,
    # and the final attempt rendered only the objects the killed one had not finished.
    attempts = [j for j in jobs_with_comment(cluster, shard_comment(1, 2))
                if int(j["JobIDRaw"]) >= int(frozen)]  # this run's, not step 1's
    assert attempts[0]["JobIDRaw"] == frozen, attempts
    states = [j["State"] for j in attempts]
    assert states[0] == "TIMEOUT" and states[-1] == "COMPLETED", attempts
    limits = [j["Timelimit"] for j in attempts]
    assert limits[0] == "00:01:00" and limits == sorted(set(limits)), limits
    slurm_logs = ws / ".snakemake" / "slurm_logs" / "rule_render" / f"demo_{SETTING}_1_2"
    assert "DUE TO TIME LIMIT" in (slurm_logs / f"{frozen}.log").read_text()
    times = done_times(ws, shards[1])
    assert len(times) == len(shards[1])
    assert {o: t for o, t in times.items() if o in done_at_freeze} == done_at_freeze
    # Frozen, the killed attempt finished nothing more: what was done by its end is what was
    # done when it froze.
    first_killed_end = sacct_time(attempts[0]["End"])
    assert {o for o, t in times.items() if t / 1e9 <= first_killed_end + 1} == set(done_at_freeze)
    # Every attempt that was killed finished its objects before its end; the final attempt
    # skipped exactly those.
    last_killed_end = sacct_time(attempts[-2]["End"])
    before_kill = [o for o, t in times.items() if t / 1e9 <= last_killed_end + 1]
    assert set(done_at_freeze) <= set(before_kill)
    rendered, skipped = render_summary(ws, 1, 2)
    assert (rendered, skipped) == (len(shards[1]) - len(before_kill), len(before_kill))


Interruption = tuple[str, dict[str, int]]


def interrupt_renders_midway(
    cluster: Cluster, process: subprocess.Popen, ws: Path, shards: list[list[str]], log: Path
) -> tuple[Interruption, Interruption]:
    """Wait until each render job of the two shards runs and has finished at least one of its
    objects but not all, then scancel the job of shard 0 and freeze every process of the job of
    shard 1 (SIGSTOP, batch script included). Returns, for each, its job id and the finished
    objects' done.json times at that moment (after the freeze, for shard 1)."""
    interrupted: dict[int, Interruption] = {}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while len(interrupted) < 2 and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Snakemake ended before both render jobs were interrupted:\n"
                        f"{log.read_text()[-4000:]}")
        for shard, objects in enumerate(shards):
            if shard in interrupted:
                continue
            job_id = running_job(cluster, shard_comment(shard, 2))
            if job_id is None or not 1 <= len(done_times(ws, objects)) < len(objects) - 1:
                continue
            if shard == 0:
                cluster.command("scancel", job_id)
            else:
                freeze_job(cluster, job_id)
            interrupted[shard] = (job_id, done_times(ws, objects))
        time.sleep(0.2)
    if len(interrupted) < 2:
        pytest.fail(f"render jobs never ran with objects left to interrupt: {interrupted}")
    assert 1 <= len(interrupted[1][1]) < len(shards[1]), interrupted[1]
    return interrupted[0], interrupted[1]


def freeze_job(cluster: Cluster, job_id: str) -> None:
    """SIGSTOP every process of a job, as ``scontrol listpids`` lists them (the batch script and
    all it started). ``scancel --full --signal=STOP`` stopped only the batch script here: its
    children went on rendering."""
    listing = cluster.command("scontrol", "listpids", job_id).splitlines()[1:]
    pids = [int(fields[0]) for fields in map(str.split, listing) if fields and fields[0].isdigit()]
    assert pids, listing
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)


def write_short_render_profile(ws: Path) -> Path:
    """A third profile: the test layer's set-resources with a 1-minute render runtime per
    attempt (set-resources is replaced whole, so every rule is restated)."""
    resources = load_yaml(TEST_LAYER)["set-resources"]
    resources["render"]["runtime"] = "1 * attempt"
    path = ws / "short-render-profile" / "config.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"set-resources": resources}, sort_keys=False))
    return path.parent
