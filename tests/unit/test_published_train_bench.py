"""benchmarks/published_train_bench.py against a fake published trainer (a script of this test
printing step lines in the published format): the subprocess, its time box and stop, the
parsing of its step lines and the steps/s arithmetic; and benchmarks/published_run.py's
fallbacks."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import PROJECT_ROOT

from pixelnerf.errors import PipelineError

BENCHMARKS = PROJECT_ROOT / "benchmarks"
STEP_SLEEP_S = 0.02
# What the published Trainer.start prints (a step line, its evaluation line), with a child
# process standing in for its DataLoader workers; FAKE_MODE varies the ending.
FAKE_TRAINER = f"""
import os, subprocess, sys, time
from pathlib import Path
out = Path(os.environ["FAKE_OUT"])
out.mkdir(exist_ok=True)
(out / "argv.json").write_text(__import__("json").dumps(sys.argv))
mode = os.environ.get("FAKE_MODE", "steps")
if mode == "import":
    import a_module_nobody_installed
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
(out / "pids").write_text(f"{{os.getpid()}} {{worker.pid}}")
print("EXPERIMENT NAME: bench")
for step in range(10**6):
    if mode == "hang" and step == 3:
        time.sleep(600)
    epoch = 1 if mode == "epoch" and step == 4 else 0
    print(f"E {{epoch}} B {{step}} loss rc:0.1 rf:0.09 t:0.19  lr 0.0001")
    if step == 0:
        print("*** Eval: E 0 B 0 loss rc:0.01 rf:0.02 t:0.03  lr")
    time.sleep({STEP_SLEEP_S})
"""


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import published_train_bench

    return published_train_bench


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A published checkout whose train/train.py is the fake trainer."""
    published = tmp_path / "published"
    (published / "train").mkdir(parents=True)
    (published / "train" / "train.py").write_text(FAKE_TRAINER)
    (published / "conf" / "exp").mkdir(parents=True)
    (published / "conf" / "exp" / "sn64.conf").write_text("data { format = dvr }\n")
    monkeypatch.setenv("FAKE_OUT", str(tmp_path / "fake_out"))
    return published


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_step_lines_are_parsed_and_others_ignored(bench):
    assert bench.parse_step("E 0 B 17 loss rc:0.1 rf:0.2 t:0.3  lr 0.0001") == (0, 17)
    assert bench.parse_step("E 3 B 0 loss t:0.3  lr 0.0001\n") == (3, 0)
    for other in ("*** Eval: E 0 B 0 loss rc:0.1  lr", "psnr 12.7", "[ 1.18it/s] E 0 B 1",
                  "EXPERIMENT NAME: bench", ""):
        assert bench.parse_step(other) is None


def test_steps_per_second_counts_steps_between_the_timed_lines(bench):
    # Steps 0 and 1 are the warm-up; steps 2 -> 6 (4 steps) in 2.0 s. A missing line (4)
    # does not change the count, which comes from the step numbers.
    stamps = [(0.0, 0), (9.0, 1), (10.0, 2), (10.5, 3), (11.5, 5), (12.0, 6)]
    rate, timed = bench.steps_per_second(stamps, warmup=2)
    assert timed == 4 and rate == pytest.approx(2.0)
    with pytest.raises(PipelineError, match="3 step lines, 1 after the 2-step warm-up"):
        bench.steps_per_second([(0.0, 0), (1.0, 1), (2.0, 2)], warmup=2)


def test_the_conf_includes_the_published_one_and_sets_the_intervals(bench, tmp_path):
    published = tmp_path / "published"
    conf = bench.write_conf(tmp_path / "bench.conf", published, tiny=True).read_text()
    lines = conf.splitlines()
    included = (published / "conf/exp/sn64.conf").resolve()
    assert lines[0] == f'include required(file("{included}"))'
    for line in ("train.print_interval = 1", "train.eval_interval = 1000000000",
                 "train.vis_interval = 1000000000", "train.save_interval = 1000000000",
                 "train.num_epoch_repeats = 1000000000", "model.encoder.pretrained = false",
                 'model.encoder.backbone = "resnet18"', "model.mlp_fine.d_hidden = 16",
                 "renderer.n_coarse = 8"):
        assert line in lines, conf
    full = bench.write_conf(tmp_path / "full.conf", published, tiny=False).read_text()
    assert "model.encoder.pretrained = false" in full and "d_hidden" not in full


def test_the_fake_trainer_is_timed_stopped_and_compared(bench, fake, tmp_path, capsys):
    ours = tmp_path / "ours.json"
    nan = math.nan
    ours.write_text(json.dumps({"device": "cpu", "rows": [
        {"mode": "fp32", "processes": 1, "steps": 4, "steps_per_s": 100.0, "note": ""},
        {"mode": "tf32", "processes": 1, "steps": 0, "steps_per_s": nan, "note": "needs CUDA"},
        {"mode": "ddp", "processes": 2, "steps": 3, "steps_per_s": 80.0, "note": ""}]}))
    result = tmp_path / "rows.json"
    assert bench.main(["--published", str(fake), "--ours", str(ours), "--tiny", "--device",
                       "cpu", "--work", str(tmp_path / "work"), "--warmup", "5",
                       "--max-steps", "30", "--json", str(result)]) == 0
    rows = json.loads(result.read_text())["rows"]
    assert [(row["trainer"], row["mode"]) for row in rows] == [("published", "fp32"),
                                                             ("ours", "fp32")]
    published = rows[0]
    assert published["steps"] == 30  # stopped at its step 29
    # 24 steps timed (5 -> 29), each at least one sleep long.
    assert published["note"].startswith("24 steps timed after 5")
    assert 0 < published["steps_per_s"] <= 1 / STEP_SLEEP_S
    out = capsys.readouterr().out
    assert "2 objects x 16 rays, 1 source view(s)" in out
    ratio = f"{100.0 / published['steps_per_s']:.2f}x"
    assert any(line.startswith("ours") and ratio in line for line in out.splitlines()), out
    # The trainer was given our conf, the synthesized data and the batch; it and its
    # worker are gone.
    argv = json.loads((tmp_path / "fake_out" / "argv.json").read_text())
    assert argv[0] == str(fake.resolve() / "train" / "train.py")
    given = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert given["-B"] == "2" and given["-R"] == "16" and given["-V"] == "1"
    assert (Path(given["-D"]) / "chair" / "softras_train.lst").is_file()
    assert "sn64.conf" in Path(given["-c"]).read_text().splitlines()[0]
    assert not any(alive(int(pid)) for pid in
                   (tmp_path / "fake_out" / "pids").read_text().split())


def test_a_hung_trainer_is_stopped_at_the_time_box(bench, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "hang")
    command = [sys.executable, str(bench.LAUNCHER), str(fake / "train" / "train.py")]
    run = bench.run_published(command, tmp_path / "run", time_box_s=3.0, max_steps=100)
    assert [step for _, step in run.stamps] == [0, 1, 2]
    assert run.exit_code is None and 3.0 <= run.elapsed_s < 15.0
    assert not any(alive(int(pid)) for pid in
                   (tmp_path / "fake_out" / "pids").read_text().split())


@pytest.mark.parametrize(("mode", "message"), [
    ("import", r"exited 1 after 0 steps: ModuleNotFoundError: No module named "
               r"'a_module_nobody_installed'"),
    ("epoch", "began epoch 1 in the time box")])
def test_a_failing_trainer_is_one_error_line(bench, fake, tmp_path, monkeypatch, mode,
                                             message):
    monkeypatch.setenv("FAKE_MODE", mode)
    with pytest.raises(PipelineError, match=message):
        bench.main(["--published", str(fake), "--ours", str(tmp_path / "unused.json"),
                    "--tiny", "--work", str(tmp_path / "work"), "--max-steps", "10"])


def test_published_code_not_prepared(bench, tmp_path):
    with pytest.raises(PipelineError, match=r"published code not prepared: .*train/train.py"):
        bench.main(["--published", str(tmp_path / "absent"), "--tiny"])


def test_our_fp32_row_is_measured_when_not_given(bench, fake, tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert bench.main(["--published", str(fake), "--tiny", "--device", "cpu",
                           "--work", str(tmp_path / "work"), "--json",
                           str(tmp_path / "rows.json")]) == 0
    finally:
        torch.set_num_threads(threads)
    ours = json.loads((tmp_path / "rows.json").read_text())["rows"][1]
    assert ours["trainer"] == "ours" and ours["mode"] == "fp32" and ours["steps_per_s"] > 0


def test_the_launcher_falls_back_only_for_what_is_missing(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "only_in_the_fallback_site.py").write_text("VALUE = 7\n")
    (site / "json.py").write_text("raise SystemExit('the fallback site shadowed json')\n")
    script = tmp_path / "script.py"
    script.write_text(
        "import sys, json, numpy as np\n"
        "import only_in_the_fallback_site, cv2\n"
        "import torchvision.transforms.functional_tensor as F_t\n"
        "coloured = cv2.applyColorMap(np.zeros((4, 5), np.uint8), cv2.COLORMAP_HOT)\n"
        "print(json.dumps({'argv': sys.argv, 'path0': sys.path[0],\n"
        "                  'value': only_in_the_fallback_site.VALUE,\n"
        "                  'shape': list(coloured.shape), 'dtype': str(coloured.dtype),\n"
        "                  'hue': callable(F_t.adjust_hue)}))\n")
    done = subprocess.run([sys.executable, str(BENCHMARKS / "published_run.py"), "--fallback-site",
                           str(site), str(script), "-n", "x"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"argv": [str(script), "-n", "x"], "path0": str(tmp_path), "value": 7,
                    "shape": [4, 5, 3], "dtype": "uint8", "hue": True}
