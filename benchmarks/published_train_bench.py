"""Training steps/s of the published pixelNeRF trainer (sxyu/pixel-nerf, ``train/train.py``
with ``conf/exp/sn64.conf``) beside ours, on the same device, data and batch.

    python benchmarks/published_train_bench.py --published .gpu_check/published \\
        [--wheels .gpu_check/published_wheels] [--ours ROWS.json] [--work DIR] [--tiny]

``main -> synthesize_check_data (train_speed) -> write_conf -> run_published (a time
box; its step lines timestamped as they arrive) -> steps_per_second -> our rows (--ours:
the JSON of ``train_speed.py --json``, else measured here with train_speed's fp32
``measure``) -> print_comparison``.

The published code is run as it is, never edited: ``benchmarks/published_run.py`` supplies what
today's packages lack, and ``--wheels`` (its dependencies the GPU image may not have, put
there by benchmarks/prepare_gpu_machine.sh) is unpacked into the work folder and consulted after
the interpreter's own packages. Its configuration is a HOCON file of ours that includes the
published sn64.conf and sets only: an untrained encoder (no download; ours is untrained
too), a step line every step, no evaluation, visualisation or checkpoint after step 0 (one
long epoch), and with ``--tiny`` train_speed's tiny model. Steps/s counts the steps
between the first step line after the warm-up and the last one in the time box. Any failure
(code not prepared, a missing dependency, too few steps) is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from train_speed import (
    DATASET_DIR,
    FULL,
    TINY,
    TINY_MODEL,
    experiment,
    measure,
    synthesize_check_data,
)

from pixelnerf.device import resolve_device
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text

BENCHMARKS = Path(__file__).resolve().parent
LAUNCHER = BENCHMARKS / "published_run.py"
TRAIN_SCRIPT = Path("train/train.py")
SN64_CONF = Path("conf/exp/sn64.conf")
# The published Trainer.start prints this line after every print_interval-th step:
# "E <epoch> B <batch in epoch> loss <key>:<value> ...  lr <lr>".
STEP_LINE = re.compile(r"^E (\d+) B (\d+) loss ")
NEVER = 10**9  # an interval no time box reaches
# Step 0 builds the DataLoader workers and runs the published evaluation and visualisation
# (every interval divides 0); the first GPU steps also tune cuDNN.
SIZES = {"full": {"time_box_s": 45.0, "warmup": 10, "max_steps": 400},
         "tiny": {"time_box_s": 60.0, "warmup": 2, "max_steps": 8}}


@dataclass(frozen=True)
class PublishedRun:
    """What the published trainer printed in its time box: ``stamps`` are (seconds since
    its start, step) of each step line; ``exit_code`` is None when it was stopped."""

    stamps: list[tuple[float, int]]
    exit_code: int | None
    elapsed_s: float
    stderr_tail: str


def parse_step(line: str) -> tuple[int, int] | None:
    """(epoch, batch) of a published step line, None for any other line."""
    match = STEP_LINE.match(line)
    return (int(match.group(1)), int(match.group(2))) if match else None


def steps_per_second(stamps: Sequence[tuple[float, int]], warmup: int) -> tuple[float, int]:
    """Steps/s from the step lines after the first ``warmup`` steps: (steps between the first
    and the last such line) / (seconds between them), and that number of steps."""
    timed = [(t, step) for t, step in stamps if step >= warmup]
    if len(timed) < 2:
        raise PipelineError(f"the published trainer printed {len(stamps)} step lines, "
                            f"{len(timed)} after the {warmup}-step warm-up: too few to time")
    (t0, s0), (t1, s1) = timed[0], timed[-1]
    if t1 <= t0:
        raise PipelineError("the published trainer's timed step lines came at one instant")
    return (s1 - s0) / (t1 - t0), s1 - s0


def hocon_lines(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``a.b = value`` lines of a nested mapping (booleans, numbers and strings)."""
    lines = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            lines += hocon_lines(value, f"{prefix}{key}.")
        else:
            text = json.dumps(value)  # true/false, numbers, quoted strings: valid HOCON
            lines.append(f"{prefix}{key} = {text}")
    return lines


def conf_overrides(tiny: bool) -> dict[str, Any]:
    """What our HOCON file sets over the published sn64.conf."""
    overrides: dict[str, Any] = {
        "model": {"encoder": {"pretrained": False}},
        "train": {"print_interval": 1, "eval_interval": NEVER, "vis_interval": NEVER,
                  "save_interval": NEVER, "num_epoch_repeats": NEVER}}
    if tiny:
        overrides["model"] = {"mlp_coarse": TINY_MODEL["mlp"], "mlp_fine": TINY_MODEL["mlp"],
                              "encoder": TINY_MODEL["encoder"]}
        overrides["renderer"] = TINY_MODEL["renderer"]
    return overrides


def write_conf(path: Path, published: Path, tiny: bool) -> Path:
    """Our HOCON file: the published sn64.conf, then :func:`conf_overrides`."""
    included = json.dumps(str((published / SN64_CONF).resolve()))
    text = "\n".join([f"include required(file({included}))", *hocon_lines(conf_overrides(tiny))])
    atomic_write_text(path, text + "\n")
    return path


def published_command(published: Path, conf: Path, data: Path, batch: Mapping[str, Any],
                      site: Path | None) -> list[str]:
    """The published trainer at ``batch`` (batch_objects, rays_per_object, nviews) on GPU 0
    (it falls back to the CPU itself), through benchmarks/published_run.py."""
    fallback = ["--fallback-site", str(site)] if site is not None else []
    nviews = " ".join(str(n) for n in batch["nviews"])
    return [sys.executable, str(LAUNCHER), *fallback, str(published / TRAIN_SCRIPT),
            "-n", "bench", "-c", str(conf), "-D", str(data), "--gpu_id", "0",
            "-B", str(batch["batch_objects"]), "-R", str(batch["rays_per_object"]),
            "-V", nviews]


def _pump(stream: Iterable[str], lines: queue.Queue[tuple[float, str | None]],
          began: float) -> None:
    with contextlib.suppress(ValueError, OSError):  # the pipe closed under us: stopped
        for line in stream:
            lines.put((time.monotonic() - began, line))
    lines.put((time.monotonic() - began, None))


def _stop(job: subprocess.Popen[str]) -> None:
    """End the trainer and its DataLoader workers (its own process group)."""
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if job.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            job.wait(wait_s)


def run_published(command: Sequence[str], cwd: Path, time_box_s: float, max_steps: int,
                  env: Mapping[str, str] | None = None) -> PublishedRun:
    """Run ``command`` until its step ``max_steps - 1`` is printed, it exits, or
    ``time_box_s`` passes; timestamp each step line as it arrives."""
    cwd.mkdir(parents=True, exist_ok=True)
    stderr_path = cwd / "stderr.log"
    run_env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    began = time.monotonic()
    stamps: list[tuple[float, int]] = []
    exit_code: int | None = None
    with open(stderr_path, "w", encoding="utf-8") as stderr, subprocess.Popen(
            list(command), cwd=cwd, env=run_env, stdout=subprocess.PIPE, stderr=stderr,
            text=True, start_new_session=True) as job:
        lines: queue.Queue[tuple[float, str | None]] = queue.Queue()
        pump = threading.Thread(target=_pump, args=(job.stdout, lines, began), daemon=True)
        pump.start()
        try:
            while True:
                left = time_box_s - (time.monotonic() - began)
                if left <= 0:
                    break
                try:
                    at, line = lines.get(timeout=left)
                except queue.Empty:
                    break
                if line is None:
                    exit_code = job.wait()
                    break
                parsed = parse_step(line)
                if parsed is None:
                    continue
                epoch, batch = parsed
                if epoch != 0:
                    raise PipelineError(f"the published trainer began epoch {epoch} in the "
                                        "time box (its evaluation and saving run there)")
                stamps.append((at, batch))
                if batch >= max_steps - 1:
                    break
        finally:
            _stop(job)
            pump.join(timeout=5.0)
    tail = stderr_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return PublishedRun(stamps, exit_code, time.monotonic() - began, tail[-1] if tail else "")


def install_wheels(wheels: Path | None, site: Path) -> Path | None:
    """Unpack the carried wheels into ``site`` (None where there are none)."""
    found = sorted(wheels.glob("*.whl")) if wheels is not None and wheels.is_dir() else []
    if not found:
        print(f"published_train_bench: no wheels in {wheels}; the interpreter's own packages "
              "must have the published trainer's imports")
        return None
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index",
                           "--no-deps", "--no-compile", "--disable-pip-version-check",
                           "--target", str(site), *map(str, found)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipelineError(f"pip could not unpack the wheels of {wheels}: {last}")
    return site


def check_prepared(published: Path) -> None:
    for needed in (TRAIN_SCRIPT, SN64_CONF):
        if not (published / needed).is_file():
            raise PipelineError(f"published code not prepared: {published / needed} is missing "
                                "(benchmarks/prepare_gpu_machine.sh puts sxyu/pixel-nerf there)")


def measure_published(args: argparse.Namespace, data_root: Path, batch: Mapping[str, Any],
                      size: Mapping[str, Any]) -> dict[str, Any]:
    """The published trainer's row: steps, steps/s after the warm-up."""
    work = args.work / "published"
    site = install_wheels(args.wheels, work / "site")
    conf = write_conf(work / "bench.conf", args.published, args.tiny)
    command = published_command(args.published, conf, data_root / DATASET_DIR, batch, site)
    run = run_published(command, work / "run", size["time_box_s"], size["max_steps"])
    if run.exit_code is not None and run.exit_code != 0:
        raise PipelineError(f"the published trainer exited {run.exit_code} after "
                            f"{len(run.stamps)} steps: {run.stderr_tail[:200]}")
    rate, timed = steps_per_second(run.stamps, size["warmup"])
    return {"trainer": "published", "mode": "fp32", "steps": run.stamps[-1][1] + 1,
            "steps_per_s": rate,
            "note": f"{timed} steps timed after {size['warmup']}, {run.elapsed_s:.0f} s in all"}


def our_rows(args: argparse.Namespace, data_root: Path, size: Mapping[str, Any]
             ) -> list[dict[str, Any]]:
    """Our single-process rows: from ``--ours`` (train_speed.py --json), else fp32
    measured here as train_speed measures it."""
    if args.ours is not None:
        try:
            rows = json.loads(args.ours.read_text(encoding="utf-8"))["rows"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PipelineError(f"--ours {args.ours}: not train_speed.py's JSON "
                                f"({exc})") from exc
        return [{"trainer": "ours", "mode": row["mode"], "steps": row["steps"],
                 "steps_per_s": row["steps_per_s"], "note": row.get("note", "")}
                for row in rows if row.get("processes") == 1
                and math.isfinite(row.get("steps_per_s", math.nan))]
    check = TINY if args.tiny else FULL
    row = measure(experiment(args.tiny, check["steps"], "fp32"), data_root,
                  resolve_device(args.device), check["steps"], check["warmup"],
                  check["time_box_s"])
    return [{"trainer": "ours", "mode": "fp32", **row}]


def print_comparison(rows: list[dict[str, Any]], batch: Mapping[str, Any], device: str) -> None:
    """One line per trainer and precision, steps/s and the ratio to the published one."""
    published = rows[0]["steps_per_s"]
    views = "/".join(str(n) for n in batch["nviews"])
    print(f"training steps/s on {device}: {batch['batch_objects']} objects x "
          f"{batch['rays_per_object']} rays, {views} source view(s), a step per line")
    print(f"{'trainer':<10} {'mode':<5} {'steps':>6} {'steps/s':>8} {'vs published':>13}  note")
    for row in rows:
        ratio = row["steps_per_s"] / published
        print(f"{row['trainer']:<10} {row['mode']:<5} {row['steps']:>6} "
              f"{row['steps_per_s']:>8.2f} {ratio:>12.2f}x  {row['note']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="training steps/s of the published pixelNeRF trainer beside ours")
    parser.add_argument("--published", type=Path, required=True,
                        help="a checkout of sxyu/pixel-nerf (train/train.py, conf/exp/)")
    parser.add_argument("--wheels", type=Path, default=None,
                        help="wheels of the published trainer's dependencies, used where the "
                             "interpreter lacks them")
    parser.add_argument("--ours", type=Path, default=None,
                        help="train_speed.py --json output (default: measure fp32 here)")
    parser.add_argument("--tiny", action="store_true",
                        help="train_speed's tiny model and data (CPU)")
    parser.add_argument("--device", default="auto",
                        help="our trainer's device when measured here: auto | cpu | cuda "
                             "(the published one takes GPU 0 when there is one)")
    parser.add_argument("--time-box", type=float, default=None,
                        help="seconds the published trainer may run (default: 45, tiny 60)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="published steps left out of the timing (default: 10, tiny 2)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop the published trainer after this many steps (default: "
                             "400, tiny 8)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the data and the published run (default: a "
                             "temporary one; train_speed's --work reuses its data)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_prepared(args.published)
    args.published = args.published.resolve()
    size = dict(SIZES["tiny" if args.tiny else "full"])
    for key in ("time_box_s", "warmup", "max_steps"):
        given = getattr(args, key.removesuffix("_s"))
        if given is not None:
            size[key] = given
    batch = {key: experiment(args.tiny, 1, "fp32")["train"][key]
             for key in ("batch_objects", "rays_per_object", "nviews")}
    with contextlib.ExitStack() as stack:
        if args.work is None:
            args.work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        args.work = args.work.resolve()
        data_root = synthesize_check_data(args.work, args.tiny)
        rows = [measure_published(args, data_root, batch, size)]
        rows += our_rows(args, data_root, size)
        device = resolve_device(args.device)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print_comparison(rows, batch, name)
        if args.json is not None:
            atomic_write_text(args.json, json.dumps({"device": name, "batch": batch,
                                                     "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PipelineError as exc:
        print(f"published_train_bench: error: {exc}", file=sys.stderr)
        sys.exit(2)
