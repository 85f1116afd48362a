"""GPU slots on the CPU with simulated devices (``PIXELNERF_GPU_SLOTS``): concurrent jobs
never hold more slots than there are, never share one, and a SIGKILLed job's slot is free."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import PROJECT_ROOT

from pixelnerf.errors import PipelineError
from pixelnerf.train.launch import rank_threads, torchrun_command
from pixelnerf.workflow.gpu_slots import SLOT_DIR_ENV, SLOTS_ENV, gpu_slot, slot_count, try_claim

# A `pixelnerf` subcommand that records the GPU slot it ran on: run through pixelnerf.cli,
# so the claim is the one every command with --device makes.
PROBE = textwrap.dedent("""
    import json, os, sys, time, types
    import pixelnerf.cli as cli
    record, hold, go = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    open(record + ".ready", "w").close()
    while not os.path.exists(go):  # every job claims at the same moment
        time.sleep(0.01)
    probe = types.ModuleType("probe")
    probe.add_arguments = lambda parser: parser.add_argument("--device", default="auto")
    def run(args):
        start = time.time()
        open(record + ".claimed", "w").close()
        time.sleep(hold)
        entry = {"visible": os.environ["CUDA_VISIBLE_DEVICES"], "start": start,
                 "end": time.time()}
        with open(record, "w") as handle:
            json.dump(entry, handle)
        return 0
    probe.run = run
    sys.modules[cli.command_module("probe")] = probe
    cli.SUBCOMMANDS["probe"] = "record the GPU slot"
    sys.exit(cli.main(["probe", "--device", "auto"]))
""")


def slot_env(directory: Path, slots: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES", "LOCAL_RANK")}
    return dict(env, **{SLOT_DIR_ENV: str(directory), SLOTS_ENV: str(slots),
                        "PYTHONPATH": str(PROJECT_ROOT)})


def start_probe(record: Path, hold_s: float, env: dict[str, str], go: Path) -> subprocess.Popen:
    """A job that claims a slot once ``go`` exists and holds it ``hold_s`` seconds."""
    return subprocess.Popen([sys.executable, "-c", PROBE, str(record), str(hold_s), str(go)],
                            env=env, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def test_concurrent_jobs_hold_at_most_the_slots_and_never_share_one(tmp_path):
    slots, jobs = 2, 6
    env = slot_env(tmp_path / "slots", slots)
    go = tmp_path / "go"
    probes = [start_probe(tmp_path / f"job{i}.json", 0.4, env, go) for i in range(jobs)]
    for i in range(jobs):
        assert wait_for(tmp_path / f"job{i}.json.ready", 60)
    go.touch()
    for probe in probes:
        assert probe.wait(timeout=60) == 0, probe.stderr.read()
    records = [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(jobs)]
    assert {r["visible"] for r in records} == {"0", "1"}  # every job saw one slot's GPU
    # The most jobs at once is reached at some job's start; each interval lies inside the
    # holding of its lock, so two that overlap must be on different slots.
    for record in records:
        assert sum(o["start"] <= record["start"] < o["end"] for o in records) <= slots
    for first, second in itertools.combinations(records, 2):
        if first["start"] < second["end"] and second["start"] < first["end"]:
            assert first["visible"] != second["visible"], (first, second)
    # Six jobs of 0.4 s on two slots: at least three rounds, so some waited.
    span = max(r["end"] for r in records) - min(r["start"] for r in records)
    assert span >= 3 * 0.4


def test_killed_job_frees_its_slot(tmp_path):
    env = slot_env(tmp_path / "slots", 1)
    go = tmp_path / "go"
    go.touch()
    holder = start_probe(tmp_path / "holder.json", 60, env, go)
    assert wait_for(tmp_path / "holder.json.claimed", 60)
    waiter = start_probe(tmp_path / "waiter.json", 0.1, env, go)
    assert wait_for(tmp_path / "waiter.json.ready", 60)
    time.sleep(1.0)
    assert not (tmp_path / "waiter.json.claimed").exists()  # the one slot is taken
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert waiter.wait(timeout=30) == 0
    assert json.loads((tmp_path / "waiter.json").read_text())["visible"] == "0"
    assert "waiting for 1 free GPU slot(s)" in waiter.stderr.read()


def test_slots_pass_to_an_exec_program_and_free_when_it_ends(tmp_path):
    """`pixelnerf train --gpus N` claims N slots and execs torchrun: the locks go along."""
    code = textwrap.dedent("""
        import os, sys
        from pixelnerf.workflow.gpu_slots import gpu_slot
        with gpu_slot("cuda", 2):
            os.execv(sys.executable, [sys.executable, "-c",
                     "import os, time; print(os.environ['CUDA_VISIBLE_DEVICES'], flush=True);"
                     " time.sleep(3)"])
    """)
    env = slot_env(tmp_path / "slots", 3)
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "0,1"
    assert try_claim(tmp_path / "slots", 3, wanted=2) is None  # only slot 2 is free
    third = try_claim(tmp_path / "slots", 3, wanted=1)
    assert third is not None and third.indices == [2]
    third.release()
    assert child.wait(timeout=30) == 0
    freed = try_claim(tmp_path / "slots", 3, wanted=3)
    assert freed is not None and freed.indices == [0, 1, 2]
    freed.release()


@pytest.mark.parametrize("assigned", ["SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES", "LOCAL_RANK"])
def test_devices_given_by_a_scheduler_are_kept(tmp_path, monkeypatch, assigned):
    for name, value in slot_env(tmp_path / "slots", 2).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(assigned, "3")
    with gpu_slot("auto") as held:
        assert held == []
        assert os.environ.get("CUDA_VISIBLE_DEVICES") == ("3" if assigned ==
                                                         "CUDA_VISIBLE_DEVICES" else None)


def test_only_unchosen_devices_claim(tmp_path, monkeypatch):
    for name, value in slot_env(tmp_path / "slots", 2).items():
        monkeypatch.setenv(name, value)
    for name in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for device in ("cpu", "cuda:1", None):
        with gpu_slot(device) as held:
            assert held == [] and "CUDA_VISIBLE_DEVICES" not in os.environ
    with gpu_slot("cuda") as first, gpu_slot("auto") as inner:
        # the inner command keeps the device the outer claim assigned
        assert (first, inner) == ([0], [])
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        other = try_claim(tmp_path / "slots", 2)
        assert other is not None and other.indices == [1]
        other.release()
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    monkeypatch.delenv(SLOT_DIR_ENV)
    with gpu_slot("auto") as held:  # outside the workflow: no slots
        assert held == []


def test_slot_count_override_and_bad_values():
    assert slot_count({SLOTS_ENV: "4"}) == 4
    with pytest.raises(PipelineError, match=SLOTS_ENV):
        slot_count({SLOTS_ENV: "many"})


def test_gpu_job_command_runs_torchrun_on_one_node():
    command = torchrun_command(4, ["--config", "c.yaml"], python="/py")
    assert command == ["/py", "-m", "torch.distributed.run", "--standalone",
                       "--nproc_per_node", "4", "-m", "pixelnerf.cli", "train",
                       "--config", "c.yaml"]
    assert rank_threads({"OMP_NUM_THREADS": "8"}, 4) == "2"
    assert rank_threads({"OMP_NUM_THREADS": "2"}, 4) == "1"
    assert rank_threads({}, 4) == "1"
