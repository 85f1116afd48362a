"""`pixelnerf real`: a synthetic car photo with a given mask through normalisation, the model
(tiny, random weights) and the turntable video on the CPU; missing Mask R-CNN weights are one
error line (never random weights); several photos with known cameras (--views)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import PROJECT_ROOT
from helpers.demo import TINY_DEMO, merged

from pixelnerf.cli import main
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_save_png, atomic_torch_save
from pixelnerf.model import PixelNeRF
from pixelnerf.real import (
    RealSettings,
    fit_ellipse,
    load_segmenter,
    normalize_photo,
    pick_car_mask,
    process_photos,
    read_mask,
    read_view_poses,
    turntable_pose,
)
from pixelnerf.video import loop_poses, read_mp4

CPU = torch.device("cpu")
SIZE = 32
# The published camera at 32 px instead of 128 (focal scales with the image).
SETTINGS = {"size": SIZE, "focal": 131.25 * SIZE / 128, "frames": 4, "fps": 8, "stills": 2}
WHITE = 255


def car_photo(height: int = 150, width: int = 240, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A car-like photo (body, cabin, two wheels) on a textured, non-white background
    -> image (H, W, 3) uint8 and its car mask (H, W) bool."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:height, :width]
    image = np.stack([60 + xx * 0.3, 120 + yy * 0.4, 90 + 0 * xx], -1)
    image = (image + rng.integers(0, 20, image.shape)).astype(np.uint8)
    x0 = 40 + shift
    body = (xx >= x0) & (xx < x0 + 130) & (yy >= 70) & (yy < 105)
    cabin = (xx >= x0 + 30) & (xx < x0 + 95) & (yy >= 45) & (yy < 70)
    wheels = ((xx - x0 - 28) ** 2 + (yy - 105) ** 2 < 14**2) | (
        (xx - x0 - 102) ** 2 + (yy - 105) ** 2 < 14**2)
    image[body] = (200, 30, 30)
    image[cabin] = (90, 140, 220)
    image[wheels] = (20, 20, 20)
    return image, body | cabin | wheels


@pytest.fixture(scope="module")
def model_setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """srn_car with a tiny random-weight network and small real settings."""
    root = tmp_path_factory.mktemp("real")
    base = yaml.safe_load((PROJECT_ROOT / "config/experiments/srn_car.yaml").read_text())
    experiment = merged(base, {"model": TINY_DEMO["model"], "renderer": TINY_DEMO["renderer"],
                               "eval": {"ray_batch": 4096}})
    experiment["real"] = dict(SETTINGS)
    torch.manual_seed(0)
    model = PixelNeRF.from_config(experiment["model"], pretrained_encoder=False)
    checkpoint = root / "pixel_nerf_latest"
    atomic_torch_save(model.state_dict(), checkpoint)
    return {"root": root, "experiment": experiment, "checkpoint": checkpoint}


def no_segmentation(image: np.ndarray, name: str) -> np.ndarray:
    raise AssertionError(f"{name} has a mask: the segmenter must not be called")


def test_ellipse_fit_recovers_axes() -> None:
    yy, xx = np.mgrid[:200, :300]
    mask = ((xx - 140.0) / 80) ** 2 + ((yy - 90.0) / 30) ** 2 <= 1  # semi-axes 80 and 30
    ellipse = fit_ellipse(mask)
    assert (ellipse.cx, ellipse.cy) == pytest.approx((140, 90), abs=0.01)
    assert ellipse.major == pytest.approx(160, rel=0.01)
    assert ellipse.minor == pytest.approx(60, rel=0.01)


def test_normalisation_centres_scales_and_whitens() -> None:
    image, mask = car_photo()
    settings = RealSettings()
    out = normalize_photo(image, mask, 128, settings.minor_scale, settings.major_scale)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    car = (out < WHITE - 5).any(axis=-1)
    ys, xs = np.nonzero(car)
    # the fitted ellipse's centre (the mask's centroid) lands on the image centre
    assert (xs.mean(), ys.mean()) == pytest.approx((64, 64), abs=1.5)
    # scale: the crop's side is max(minor * 4.37, major * 0.8) of the photo
    ellipse = fit_ellipse(mask)
    side = max(ellipse.minor * 4.37, ellipse.major * 0.8)
    assert xs.max() - xs.min() + 1 == pytest.approx(130 * 128 / side, abs=2)
    # everything off the car is white, the car keeps its colour
    assert (out[~car] >= WHITE - 5).all()
    assert tuple(out[64, 64]) != (WHITE, WHITE, WHITE)
    # a car shifted in the photo normalises to the same picture
    shifted, shifted_mask = car_photo(shift=50)
    moved = normalize_photo(shifted, shifted_mask, 128, settings.minor_scale,
                            settings.major_scale)
    car_moved = (moved < WHITE - 5).any(axis=-1)
    assert (car_moved != car).mean() < 0.01


def test_empty_or_misshapen_mask_is_one_line() -> None:
    image, mask = car_photo()
    with pytest.raises(PipelineError, match="mask is empty"):
        normalize_photo(image, np.zeros_like(mask), 32, 4.37, 0.8)
    with pytest.raises(PipelineError, match="the mask is 10x10"):
        normalize_photo(image, np.ones((10, 10), bool), 32, 4.37, 0.8)


def test_pick_car_mask_takes_the_best_car_over_threshold() -> None:
    masks = torch.zeros(3, 1, 4, 4)
    masks[0, 0, 0, 0] = 0.9  # a person
    masks[1, 0, 1, 1] = 0.7  # a weak car
    masks[2, 0, 2, 2] = 0.6  # the best car
    detections = {"labels": torch.tensor([1, 3, 3]), "scores": torch.tensor([0.99, 0.6, 0.8]),
                  "masks": masks}
    mask = pick_car_mask(detections, label=3, score_threshold=0.5, mask_threshold=0.5)
    assert mask is not None and mask.sum() == 1 and mask[2, 2]
    assert pick_car_mask(detections, label=3, score_threshold=0.9, mask_threshold=0.5) is None


class FakeDetector(torch.nn.Module):
    """Stands in for Mask R-CNN: one 'car' detection covering the given mask (no weights)."""

    def __init__(self, mask: np.ndarray, label: int, score: float) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device
        self.mask, self.label, self.score = torch.from_numpy(mask).float(), label, score

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        assert images[0].shape == (3, *self.mask.shape) and float(images[0].max()) <= 1.0
        return [{"labels": torch.tensor([self.label]), "scores": torch.tensor([self.score]),
                 "masks": self.mask[None, None]}]


def test_segment_car_uses_the_coco_car_label() -> None:
    from pixelnerf.real.segment import car_label, segment_car

    image, mask = car_photo()
    assert car_label() == 3  # COCO: __background__, person, bicycle, car
    found = segment_car(FakeDetector(mask, car_label(), 0.9), image, 0.5, 0.5)
    np.testing.assert_array_equal(found, mask)
    with pytest.raises(PipelineError, match="no car"):
        segment_car(FakeDetector(mask, car_label(), 0.3), image, 0.5, 0.5, "weak.jpg")


def test_missing_segmentation_weights_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(PipelineError, match="--mask") as raised:
        load_segmenter(tmp_path / "absent.pth")
    assert "\n" not in str(raised.value)
    with pytest.raises(PipelineError, match="absent .*--mask"):
        load_segmenter(None, allow_download=False)


def test_cli_without_weights_says_so_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    image, _ = car_photo()
    atomic_save_png(tmp_path / "car.png", image)
    status = main(["real", str(tmp_path / "car.png"), "--offline", "--device", "cpu",
                   "--config", str(PROJECT_ROOT / "config/experiments/srn_car.yaml"),
                   "--checkpoint", str(tmp_path / "none"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "Mask R-CNN" in err[0] and "--mask" in err[0]
    assert not (tmp_path / "out").exists()


def test_photo_with_mask_through_the_whole_path(model_setup: dict, tmp_path: Path) -> None:
    image, mask = car_photo()
    atomic_save_png(tmp_path / "car.png", image)
    atomic_save_png(tmp_path / "car_mask.png", mask.astype(np.uint8) * WHITE)
    folder = tmp_path / "out" / "car"
    result = process_photos(model_setup["experiment"], model_setup["checkpoint"],
                            [tmp_path / "car.png"], folder, CPU, no_segmentation,
                            masks=[read_mask(tmp_path / "car_mask.png")])
    video = read_mp4(folder / "turntable.mp4")
    assert video.shape == (SETTINGS["frames"], SIZE, SIZE, 3)
    assert result.stills == (0, 2)
    for name in ("input.png", "view-0.png", "view-1.png"):
        assert (folder / name).is_file()
    record = json.loads((folder / "done.json").read_text())
    assert record["frames"] == SETTINGS["frames"] and set(record["stills"]) == {
        "view-0.png", "view-1.png"}
    # the model's input is the normalised photo: centred car on white
    assert result.inputs.shape == (1, SIZE, SIZE, 3)
    assert (result.inputs[0, 0] >= WHITE - 5).all()


def test_turntable_starts_at_the_photo_camera() -> None:
    pose = turntable_pose(0.0, 0.0, 1.3)
    expected = torch.eye(4)
    expected[2, 3] = 1.3  # the published single-photo camera
    torch.testing.assert_close(pose, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(loop_poses(24, 0.0, 1.3, y_up=True)[0], expected, atol=1e-6,
                               rtol=0)
    # azimuth 90 is frame 6 of 24
    torch.testing.assert_close(turntable_pose(90.0, -10.0, 1.3),
                               loop_poses(24, -10.0, 1.3, y_up=True)[6], atol=1e-6, rtol=0)


def test_several_photos_with_views(model_setup: dict, tmp_path: Path) -> None:
    photos = []
    for k, shift in enumerate((0, 30)):
        image, mask = car_photo(shift=shift)
        atomic_save_png(tmp_path / f"p{k}.png", image)
        atomic_save_png(tmp_path / f"p{k}_mask.png", mask.astype(np.uint8) * WHITE)
        photos.append(tmp_path / f"p{k}.png")
    pose = turntable_pose(180.0, 0.0, 1.3).tolist()
    views = tmp_path / "views.yaml"
    views.write_text(yaml.safe_dump({"p0.png": {"azimuth": 0, "elevation": 0},
                                     "p1.png": {"pose": pose}}))
    poses = read_view_poses(views, photos, radius=1.3)
    assert poses.shape == (2, 4, 4)
    torch.testing.assert_close(poses[1], torch.tensor(pose), atol=1e-6, rtol=0)
    folder = tmp_path / "out" / "pair"
    result = process_photos(model_setup["experiment"], model_setup["checkpoint"], photos,
                            folder, CPU, no_segmentation,
                            masks=[read_mask(tmp_path / f"p{k}_mask.png") for k in range(2)],
                            poses=poses)
    assert result.inputs.shape == (2, SIZE, SIZE, 3)
    assert (folder / "input-0.png").is_file() and (folder / "input-1.png").is_file()
    assert read_mp4(folder / "turntable.mp4").shape[0] == SETTINGS["frames"]
    views.write_text(yaml.safe_dump({"p0.png": {"azimuth": 0}}))
    with pytest.raises(PipelineError, match="no entry for photo p1.png"):
        read_view_poses(views, photos, radius=1.3)
    with pytest.raises(PipelineError, match="need their cameras"):
        process_photos(model_setup["experiment"], model_setup["checkpoint"], photos,
                       folder, CPU, no_segmentation)
