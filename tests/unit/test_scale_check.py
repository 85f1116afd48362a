"""The bookkeeping check of benchmarks/scale_check.py, small: 300 objects over 8 shards; the
resume skips every finished object without rendering any."""

from __future__ import annotations

import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_a_resume_over_eight_shards_renders_nothing(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import scale_check

    (figures,) = scale_check.main(["--sizes", "300", "--views", "2", "--work", str(tmp_path)])
    assert figures.n == 300 and figures.rendered_on_resume == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"\b0 objects rendered, \d+ already done", out)) == 8  # the resume
    assert "| 300 |" in out
