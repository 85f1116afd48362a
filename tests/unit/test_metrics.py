"""PSNR and SSIM against independent implementations; LPIPS weight loading without download."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelnerf.errors import PipelineError
from pixelnerf.eval import metrics


def _pair(seed: int, shape=(23, 31, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = rng.random(shape)
    pred = np.clip(gt + rng.normal(0.0, 0.1, shape), 0.0, 1.0)
    return pred, gt


def _psnr_by_formula(pred: np.ndarray, gt: np.ndarray) -> float:
    mse = np.sum((pred.astype(np.float64) - gt) ** 2) / pred.size
    return 10.0 * np.log10(1.0 / mse)


def _ssim_direct(x: np.ndarray, y: np.ndarray, win: int = 7, k1: float = 0.01,
                 k2: float = 0.03) -> float:
    """SSIM by its definition: every full 7x7 window, sample (co)variances, mean of the
    per-window index, per channel then averaged (data range 1)."""
    c1, c2 = k1 ** 2, k2 ** 2
    n = win * win
    per_channel = []
    for ch in range(x.shape[-1]):
        values = []
        for i in range(x.shape[0] - win + 1):
            for j in range(x.shape[1] - win + 1):
                a = x[i:i + win, j:j + win, ch].astype(np.float64).ravel()
                b = y[i:i + win, j:j + win, ch].astype(np.float64).ravel()
                ma, mb = a.mean(), b.mean()
                va = ((a - ma) ** 2).sum() / (n - 1)
                vb = ((b - mb) ** 2).sum() / (n - 1)
                cov = ((a - ma) * (b - mb)).sum() / (n - 1)
                values.append((2 * ma * mb + c1) * (2 * cov + c2)
                              / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
        per_channel.append(np.mean(values))
    return float(np.mean(per_channel))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_matches_formula(seed: int) -> None:
    pred, gt = _pair(seed)
    assert metrics.psnr(pred, gt) == pytest.approx(_psnr_by_formula(pred, gt), abs=1e-10)


def test_psnr_known_value_and_identity() -> None:
    gt = np.zeros((8, 8, 3))
    pred = np.full((8, 8, 3), 0.1)
    assert metrics.psnr(pred, gt) == pytest.approx(20.0)  # mse 0.01 -> 20 dB
    assert metrics.psnr(gt, gt) == math.inf


@pytest.mark.parametrize("seed", [3, 4])
def test_ssim_matches_direct_window_formula(seed: int) -> None:
    pred, gt = _pair(seed, shape=(16, 19, 3))
    assert metrics.ssim(pred, gt) == pytest.approx(_ssim_direct(pred, gt), abs=1e-9)


def test_shape_mismatch_is_one_error_line() -> None:
    with pytest.raises(PipelineError, match="shapes"):
        metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_quantize_truncates_and_keeps_8bit_grid() -> None:
    values = np.array([0.0, 0.5, 0.999, 1.2, -0.3])
    expected = np.array([0, 127, 254, 255, 0]) / 255.0
    np.testing.assert_array_equal(metrics.quantize_8bit(values), expected)
    levels = np.arange(256) / 255.0
    # float32 round trip through [-1, 1], as ground truth arrives from the dataset
    roundtrip = ((levels.astype(np.float32) * 2 - 1) * 0.5 + 0.5).astype(np.float64)
    np.testing.assert_array_equal(metrics.quantize_8bit(roundtrip), levels)


def test_score_views_averages_per_image() -> None:
    gts = [np.zeros((10, 10, 3)), np.zeros((10, 10, 3))]
    preds = [np.full((10, 10, 3), 0.1), np.full((10, 10, 3), 0.01)]
    scores = metrics.score_views(preds, gts)
    assert scores.n_views == 2
    assert scores.psnr == pytest.approx((20.0 + 40.0) / 2)  # mean of per-image PSNRs
    assert scores.lpips is None


# ---------------------------------------------------------------------------------------
# LPIPS: weights come from a configured path or torch's cache, never from the network
# ---------------------------------------------------------------------------------------


def _refuse_download(*args, **kwargs):
    raise AssertionError("a download was attempted")


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory):
    """Point torch's cache at an empty folder and make any download attempt fail loudly."""
    root = tmp_path_factory.mktemp("lpips")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(root / "torch-home"))
        patch.setattr(torch.hub, "_hub_dir", None, raising=False)
        patch.setattr(torch.hub, "load_state_dict_from_url", _refuse_download)
        patch.setattr(torch.hub, "download_url_to_file", _refuse_download)
        yield root


@pytest.fixture(scope="module")
def fake_vgg(torch_home):
    """A file in torchvision's VGG16 layout (trunk keys only) with seeded values."""
    import torchvision

    generator = torch.Generator().manual_seed(7)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    state = {f"features.{k}": torch.randn(v.shape, generator=generator)
             for k, v in features.state_dict().items()}
    path = torch_home / "vgg16.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def lpips_model(fake_vgg):
    return metrics.lpips_or_none(fake_vgg[0], report=pytest.fail)


def test_lpips_absent_weights_one_line_no_model(torch_home, capsys) -> None:
    configured = torch_home / "missing.pth"
    lines = []
    model = metrics.lpips_or_none(configured, report=lines.append)
    assert model is None
    assert len(lines) == 1
    assert "LPIPS weights not found at" in lines[0]
    assert str(configured) in lines[0]
    cached = torch_home / "torch-home" / "hub" / "checkpoints" / metrics.VGG16_CACHE_NAME
    assert str(cached) in lines[0]
    assert capsys.readouterr().out == ""


def test_lpips_loads_trunk_from_configured_path(fake_vgg, lpips_model) -> None:
    import lpips

    state = fake_vgg[1]
    assert isinstance(lpips_model, lpips.LPIPS)
    assert not lpips_model.training
    trunk = lpips_model.net.state_dict()
    assert len(trunk) == len(state)
    for key, value in trunk.items():
        index_and_param = key.split(".", 1)[1]
        torch.testing.assert_close(value, state[f"features.{index_and_param}"], rtol=0, atol=0)
    # the linear layers are the ones shipped inside the lpips package
    shipped = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth",
                         map_location="cpu", weights_only=True)
    own = lpips_model.state_dict()
    for key, value in shipped.items():
        torch.testing.assert_close(own[key], value, rtol=0, atol=0)
    assert all(not p.requires_grad for p in lpips_model.parameters())


def test_lpips_found_in_torch_cache(torch_home, fake_vgg) -> None:
    cache = torch_home / "torch-home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    target = cache / metrics.VGG16_CACHE_NAME
    target.write_bytes(fake_vgg[0].read_bytes())
    try:
        assert metrics.find_vgg_weights(None) == target
        assert metrics.find_vgg_weights(torch_home / "elsewhere.pth") == target
        assert metrics.find_vgg_weights(fake_vgg[0]) == fake_vgg[0]  # configured path first
    finally:
        target.unlink()


def test_lpips_incomplete_file_is_an_error_not_random_weights(torch_home, fake_vgg) -> None:
    path = torch_home / "partial.pth"
    state = dict(fake_vgg[1])
    del state["features.28.weight"]
    torch.save(state, path)
    with pytest.raises(PipelineError, match="features.28.weight"):
        metrics.load_lpips(path)


def test_lpips_batches_cover_every_pair(lpips_model) -> None:
    rng = np.random.default_rng(0)
    preds, gts = rng.random((3, 16, 16, 3)), rng.random((3, 16, 16, 3))
    batched = metrics.lpips_distances(lpips_model, preds, gts, batch_size=2)
    whole = metrics.lpips_distances(lpips_model, preds, gts, batch_size=32)
    assert batched.shape == (3,)
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-7)
    same = metrics.lpips_distances(lpips_model, preds, preds, batch_size=32)
    np.testing.assert_allclose(same, 0.0, atol=1e-7)
    scores = metrics.score_views(list(preds), list(gts), lpips_model, lpips_batch_size=2)
    assert scores.lpips == pytest.approx(float(np.mean(whole)), rel=1e-5)


# ---------------------------------------------------------------------------------------
# The command line on the demo data
# ---------------------------------------------------------------------------------------


def test_metrics_cli_on_demo_data(tmp_path, project_root, torch_home, capsys) -> None:
    import csv

    import imageio.v3 as iio
    from helpers.evaluation import demo_metrics_inputs, ground_truth_png

    from pixelnerf import cli

    inputs = demo_metrics_inputs(project_root, tmp_path)
    config, data_root, renders = inputs.config, inputs.data_root, inputs.renders
    setting, selections, categories = inputs.setting, inputs.selections, inputs.categories
    out = tmp_path / "metrics.csv"
    missing = tmp_path / "no-such-vgg.pth"
    status = cli.main(inputs.cli_args(out, missing))
    assert status == 0
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if "LPIPS" in line]
    assert len(lines) == 1 and str(missing) in lines[0]

    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert config["eval"]["baselines"] is True
    assert len(rows) == 3 * len(selections)
    for row in rows:
        assert row["setting"] == setting and row["lpips"] == ""
        selection = selections[row["object_id"]]
        assert int(row["n_views"]) == len(selection.targets)
        truths = [ground_truth_png(data_root, row["object_id"], v) / 255.0
                  for v in selection.targets]
        if row["category"] == "baseline:background":
            preds = [np.ones_like(t) for t in truths]
        elif row["category"] == "baseline:source_view":
            source = ground_truth_png(data_root, row["object_id"], selection.sources[0]) / 255.0
            preds = [source] * len(truths)
        else:
            assert row["category"] == categories[row["object_id"]]
            folder = renders / setting / row["object_id"]
            preds = [iio.imread(folder / f"{v:06d}.png") / 255.0 for v in selection.targets]
        psnr = np.mean([_psnr_by_formula(p, t) for p, t in zip(preds, truths, strict=True)])
        assert float(row["psnr"]) == pytest.approx(psnr, abs=1e-4)
        ssim = np.mean([_ssim_direct(p, t) for p, t in zip(preds, truths, strict=True)])
        assert float(row["ssim"]) == pytest.approx(ssim, abs=1e-5)


def test_metrics_cli_missing_render_is_one_line(tmp_path, project_root, torch_home, capsys):
    import json

    from helpers.evaluation import tiny_demo_config

    from pixelnerf import cli

    data_root = tmp_path / "data"
    config_path, _ = tiny_demo_config(project_root, data_root, tmp_path / "demo.yaml")
    folder = tmp_path / "render" / "1v" / "chair/chair_000"
    folder.mkdir(parents=True)
    (folder / "done.json").write_text(json.dumps(
        {"object_id": "chair/chair_000", "category": "chair", "sources": [0], "targets": [1]}))
    manifest = tmp_path / "render" / "1v" / "shard-0-of-1.json"
    manifest.write_text(json.dumps({"setting": "1v", "objects": ["chair/chair_000"]}))
    out = tmp_path / "m.csv"
    status = cli.main(["metrics", "--config", str(config_path), "--data-root", str(data_root),
                       "--manifest", str(manifest), "--renders", str(tmp_path / "render"),
                       "--out", str(out), "--device", "cpu", "--no-progress"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pixelnerf: error: render ") and "000001.png" in err[-1]
    assert not out.exists()
