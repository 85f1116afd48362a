"""benchmarks/train_speed.py with --tiny on the CPU: every row of its table is measured."""

from __future__ import annotations

import importlib.util
import json
import math

import torch
from helpers import PROJECT_ROOT

TOOL = PROJECT_ROOT / "benchmarks" / "train_speed.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("train_speed", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_check_measures_every_precision_and_ddp(tmp_path, capsys):
    tool = load_tool()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert tool.main(["--tiny", "--device", "cpu", "--work", str(tmp_path / "work"),
                          "--json", str(tmp_path / "rows.json")]) == 0
    finally:
        torch.set_num_threads(threads)
    table = capsys.readouterr().out
    rows = {row["mode"]: row for row in json.loads((tmp_path / "rows.json").read_text())["rows"]}
    assert list(rows) == ["fp32", "tf32", "bf16", "ddp"]
    for mode in ("fp32", "bf16"):
        assert rows[mode]["steps"] == tool.TINY["steps"]
        assert rows[mode]["steps_per_s"] > 0 and math.isfinite(rows[mode]["val_psnr"])
    assert rows["tf32"]["note"] == "needs CUDA" and rows["tf32"]["steps"] == 0
    assert rows["ddp"]["processes"] == 2 and rows["ddp"]["steps"] == tool.TINY["ddp_steps"]
    assert rows["ddp"]["steps_per_s"] > 0, rows["ddp"]
    # The printed table has a line per row.
    assert [line.split()[0] for line in table.splitlines()[2:6]] == list(rows)
