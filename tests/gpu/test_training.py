"""Training speed on a GPU at the published sn64 size (benchmarks/train_speed.py): steps/s
and validation PSNR in fp32, TF32 and bf16, and the steps/s of data-parallel training (one
rank a GPU, two on one GPU when there is only one). Every row must be measured; the table is
printed."""

from __future__ import annotations

import json
import math

import torch
from helpers import PROJECT_ROOT

BENCHMARKS = PROJECT_ROOT / "benchmarks"


def test_every_precision_and_ddp_train_at_the_sn64_size(tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import train_speed

    rows_json = tmp_path / "rows.json"
    assert train_speed.main(["--device", "cuda", "--work", str(tmp_path / "work"),
                             "--json", str(rows_json)]) == 0
    rows = {row["mode"]: row for row in json.loads(rows_json.read_text())["rows"]}
    assert list(rows) == ["fp32", "tf32", "bf16", "ddp"]
    size = train_speed.FULL
    for mode in ("fp32", "tf32", "bf16"):
        row = rows[mode]
        # a precision past its time box stops early (and says so), after its warm-up
        assert size["warmup"] < row["steps"] <= size["steps"], row
        assert row["steps"] == size["steps"] or row["note"].startswith("time box"), row
        assert row["steps_per_s"] > 0 and math.isfinite(row["val_psnr"]), row
    gpus = torch.cuda.device_count()
    ddp = rows["ddp"]
    assert ddp["processes"] == (gpus if gpus >= 2 else 2), ddp
    assert ddp["steps"] == size["ddp_steps"] and ddp["steps_per_s"] > 0, ddp
