"""`pixelnerf compare`: paired differences of two runs, checked by hand and against scipy."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from pixelnerf import cli
from pixelnerf.errors import PipelineError
from pixelnerf.eval.compare import compare_runs, load_run
from pixelnerf.eval.lpips_trunk import ORIGIN_FILE
from pixelnerf.eval.object_scores import ObjectRow, write_rows
from pixelnerf.eval.paired import paired_bootstrap

RESAMPLES = 10_000


def _row(category: str, object_id: str, psnr: float, ssim: float,
         lpips: float | None = None, n_views: int = 3, setting: str = "1v") -> ObjectRow:
    trunk = None if lpips is None else ORIGIN_FILE  # a metrics row names its LPIPS trunk
    return ObjectRow(setting, category, object_id, n_views, psnr, ssim, lpips, trunk)


def _write_run(folder: Path, rows: list[ObjectRow], setting: str = "1v") -> Path:
    """A metrics folder as the workflow lays it out, the rows split over two shards."""
    write_rows(folder / setting / "shard-0-of-2.csv", rows[0::2])
    write_rows(folder / setting / "shard-1-of-2.csv", rows[1::2])
    return folder


def _read(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["category"]: row for row in csv.DictReader(handle)}


# Run A and B: chairs differ by +1 and +3 dB, the car by -0.5 dB; SSIM by exact binary
# fractions, so every mean below is exact in floating point.
A_ROWS = [_row("chair", "c1", 10.0, 0.5), _row("chair", "c2", 12.0, 0.5),
          _row("car", "k1", 20.0, 0.75)]
B_ROWS = [_row("chair", "c1", 11.0, 0.75), _row("chair", "c2", 15.0, 0.75),
          _row("car", "k1", 19.5, 0.5)]


def test_hand_computed_case_through_the_command(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a" / "metrics", A_ROWS)
    b = _write_run(tmp_path / "b" / "metrics", B_ROWS)
    out_csv, out_md = tmp_path / "cmp.csv", tmp_path / "cmp.md"
    status = cli.main(["compare", str(a), str(b), "--seed", "7", "--out-csv", str(out_csv),
                       "--out-md", str(out_md)])
    assert status == 0
    table = _read(out_csv)
    assert list(table) == ["car", "chair", "total"]
    chair, car, total = table["chair"], table["car"], table["total"]
    assert chair["n_objects"] == "2" and car["n_objects"] == "1" and total["n_objects"] == "3"
    # chair: differences 1 and 3; a bootstrap mean of two objects is 1, 2 or 3 with
    # probabilities 1/4, 1/2, 1/4, so the 2.5% and 97.5% quantiles of 10,000 are 1 and 3
    assert float(chair["d_psnr"]) == 2.0
    assert (float(chair["d_psnr_lo"]), float(chair["d_psnr_hi"])) == (1.0, 3.0)
    assert float(chair["a_psnr"]) == 11.0 and float(chair["b_psnr"]) == 13.0
    assert float(chair["d_ssim"]) == 0.25
    assert (float(chair["d_ssim_lo"]), float(chair["d_ssim_hi"])) == (0.25, 0.25)
    # one object: every resample is that object
    assert (float(car["d_psnr"]), float(car["d_psnr_lo"]), float(car["d_psnr_hi"])) == \
        (-0.5, -0.5, -0.5)
    # total: differences 1, 3, -0.5: mean 3.5 / 3; the extremes of a bootstrap mean are
    # -0.5 and 3 (all resampled objects alike), the 2.5% quantile lies strictly inside
    assert float(total["d_psnr"]) == pytest.approx(3.5 / 3, abs=1e-6)
    assert -0.5 <= float(total["d_psnr_lo"]) < float(total["d_psnr"]) \
        < float(total["d_psnr_hi"]) <= 3.0
    # LPIPS absent in both runs: empty cells; the seed and resamples are recorded
    assert total["d_lpips"] == total["d_lpips_lo"] == ""
    assert total["seed"] == "7" and total["resamples"] == str(RESAMPLES)
    markdown = out_md.read_text(encoding="utf-8")
    assert "seed 7" in markdown and "10000 resamples" in markdown
    assert "+2.000 [+1.000, +3.000]" in markdown


def test_total_interval_matches_an_explicit_bootstrap() -> None:
    """The total's bounds are the quantiles of the means of the same seeded draw."""
    diffs = np.array([1.0, 3.0, -0.5])
    (effect,) = paired_bootstrap(diffs, RESAMPLES, seed=3)
    rng = np.random.default_rng(3)
    means = diffs[rng.integers(0, 3, size=(RESAMPLES, 3))].mean(axis=1)
    assert (effect.low, effect.high) == tuple(np.quantile(means, [0.025, 0.975]))


@pytest.mark.parametrize("n", [12, 60])
def test_interval_agrees_with_scipy_bootstrap(n: int) -> None:
    """Against scipy.stats.bootstrap (percentile method, the same resample count, its own
    random stream): the two bounds are two Monte Carlo estimates of the same quantile.

    The standard error of a bootstrap quantile q at level p from B resamples is
    sqrt(p (1 - p) / B) / f(q), f the density of the bootstrap mean; with the mean close to
    normal (sd s), f(q) = phi(z_p) / s. Two independent estimates differ by sqrt(2) times
    that; 5 of those standard errors is the tolerance (about 0.19 s at B = 10,000).
    """
    from scipy import stats  # here: 1.5 s to import, for this test alone

    rng = np.random.default_rng(n)
    diffs = rng.normal(0.3, 1.0, size=n) + rng.exponential(0.5, size=n)
    (ours,) = paired_bootstrap(diffs, RESAMPLES, seed=11)
    theirs = stats.bootstrap((diffs,), np.mean, n_resamples=RESAMPLES, method="percentile",
                             confidence_level=0.95, random_state=np.random.default_rng(99))
    s = float(np.std(diffs) / math.sqrt(n))
    p = 0.025
    density = stats.norm.pdf(stats.norm.ppf(p)) / s
    tolerance = 5 * math.sqrt(2) * math.sqrt(p * (1 - p) / RESAMPLES) / density
    assert abs(ours.low - theirs.confidence_interval.low) < tolerance
    assert abs(ours.high - theirs.confidence_interval.high) < tolerance
    assert ours.mean == pytest.approx(float(np.mean(diffs)), abs=1e-12)


def test_differing_object_sets_are_one_error_line_unless_common(tmp_path: Path) -> None:
    a = load_run("a", [write_and_return(tmp_path / "a.csv", A_ROWS)])
    b = load_run("b", [write_and_return(tmp_path / "b.csv", B_ROWS[:2])])
    with pytest.raises(PipelineError, match=r"3 and 2 objects, 2 in common.*--common"):
        compare_runs(a, b)
    comparison = compare_runs(a, b, common=True)
    assert [row.label for row in comparison.rows] == ["chair", "total"]
    assert comparison.rows[-1].n_objects == 2
    assert any("Only the 2 objects" in note for note in comparison.notes)


def test_an_object_scored_on_other_views_is_not_in_common(tmp_path: Path) -> None:
    other = [*B_ROWS[:2], _row("car", "k1", 19.5, 0.5, n_views=2)]
    a = load_run("a", [write_and_return(tmp_path / "a.csv", A_ROWS)])
    b = load_run("b", [write_and_return(tmp_path / "b.csv", other)])
    with pytest.raises(PipelineError, match="2 in common"):
        compare_runs(a, b)


def test_target_lists_from_render_records_must_match(tmp_path: Path) -> None:
    import json

    for side, targets in (("a", [1, 2, 3]), ("b", [0, 2, 3])):
        _write_run(tmp_path / side / "metrics", A_ROWS)
        for row in A_ROWS:
            folder = tmp_path / side / "render" / "1v" / row.object_id
            folder.mkdir(parents=True)
            chosen = targets if row.object_id == "k1" else [1, 2, 3]
            (folder / "done.json").write_text(json.dumps({"targets": chosen}))
    status = cli.main(["compare", str(tmp_path / "a" / "metrics"),
                       str(tmp_path / "b" / "metrics")])
    assert status == 2  # k1 was scored on other target views


def test_experiment_names_resolve_under_the_results_folder(tmp_path: Path, capsys) -> None:
    _write_run(tmp_path / "results" / "x" / "metrics", A_ROWS)
    _write_run(tmp_path / "results" / "y" / "metrics", B_ROWS)
    assert cli.main(["compare", "x", "y", "--results", str(tmp_path / "results")]) == 0
    assert "# y − x" in capsys.readouterr().out
    assert cli.main(["compare", "x", "nope", "--results", str(tmp_path / "results")]) == 2
    assert "experiment nope has no metrics folder" in capsys.readouterr().err


def test_lpips_where_both_runs_have_it(tmp_path: Path) -> None:
    a_rows = [_row("chair", f"o{i}", 10.0, 0.5, lpips=0.25) for i in range(4)]
    b_rows = [_row("chair", f"o{i}", 10.0, 0.5, lpips=0.125) for i in range(4)]
    a = load_run("a", [write_and_return(tmp_path / "a.csv", a_rows)])
    b = load_run("b", [write_and_return(tmp_path / "b.csv", b_rows)])
    total = compare_runs(a, b).rows[-1]
    assert total.effects["lpips"] is not None
    assert (total.effects["lpips"].mean, total.effects["lpips"].low,
            total.effects["lpips"].high) == (-0.125, -0.125, -0.125)
    assert (total.effects["psnr"].mean, total.effects["psnr"].low) == (0.0, 0.0)


def write_and_return(path: Path, rows: list[ObjectRow]) -> Path:
    write_rows(path, rows)
    return path
