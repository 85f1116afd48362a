"""``pixelnerf bench`` on a GPU: the default list at a small size (every path renders, the
"of peak" column against the matmul peak measured in the run), and ``compile:
max-autotune`` compiled once per process, a second process reusing the first one's
Inductor cache. The tables are printed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.gpu
# path, rays/s, points/s, TFLOP/s, of peak, mem GiB, sn64 h, vs ref, warm-up s, compiles
COLUMNS = 10


def bench(*args: str, env: dict | None = None, timeout: int = 400) -> list[list[str]]:
    """The bench's output through the command line, printed; its table rows, split."""
    done = subprocess.run([sys.executable, "-m", "pixelnerf.cli", "bench", "--device", "cuda",
                           *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    print(done.stdout)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.split() for line in done.stdout.splitlines()]
    header = next(i for i, line in enumerate(lines) if line[:2] == ["path", "rays/s"])
    return [line for line in lines[header + 1:] if len(line) == COLUMNS]


def test_the_default_paths_render_and_fill_the_peak_column(cuda):
    rows = bench("--config", "sn64", "--objects", "2")
    assert [row[0] for row in rows[:2]] == ["reference", "default"] and len(rows) >= 4
    for row in rows:
        rays_per_second = float(row[1].replace(",", ""))
        fraction = float(row[4].rstrip("%"))
        assert rays_per_second > 0 and 0 < fraction < 100, row
    assert rows[0][-3] == "1.00x"


def test_max_autotune_compiles_once_and_a_later_process_reuses_its_cache(cuda, tmp_path):
    env = {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    path = "kernel=torch+compile=max-autotune"
    cold = bench("--config", "sn64", "--objects", "2", "--paths", path, env=env)
    warm = bench("--config", "sn64", "--objects", "2",
                 "--paths", f"{path},kernel=torch+compile=true", env=env)
    # the timed renders compile nothing: one shape, padded calls
    assert cold[0][-1].endswith("+0") and warm[0][-1].endswith("+0")
    print(f"max-autotune warm-up: {cold[0][-2]} s cold, {warm[0][-2]} s with the cache")
