"""Reader behaviour beyond the reference items: DTU's projection decomposition, resizing,
categories and ids, view sub-sampling, and the options' checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pixelnerf.data import open_dataset
from pixelnerf.data.dtu import decompose_projection, rq_decomposition
from pixelnerf.data.dvr import category_names
from pixelnerf.errors import PipelineError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_decomposition_matches_opencv() -> None:
    """Compared with what OpenCV's decomposeProjectionMatrix returned for the same random
    projections (``fixtures/opencv_decompose_projection.npz``, made once with
    opencv-python-headless 4.14.0.94: half of them ``s K [R|t]`` with random signs of the
    diagonal of K and of s, half plain Gaussian 3x4 matrices)."""
    with np.load(FIXTURES / "opencv_decompose_projection.npz") as data:
        cases = zip(data["projection"], data["intrinsics"], data["rotation"], data["centre"],
                    strict=True)
        for projection, intrinsics, rotation, centre in cases:
            k, r, c = decompose_projection(projection)
            np.testing.assert_allclose(k, intrinsics, rtol=1e-9, atol=1e-9 * np.abs(k).max())
            np.testing.assert_allclose(r, rotation, atol=1e-9)
            np.testing.assert_allclose(c[:3] / c[3], centre[:3] / centre[3], rtol=1e-9,
                                       atol=1e-9)


def test_rq_decomposition_conventions() -> None:
    """OpenCV's invariants: upper triangular, rotation with det +1, the first two diagonal
    entries non-negative, and the product gives the matrix back."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        matrix = rng.normal(size=(3, 3))
        upper, rotation = rq_decomposition(matrix)
        np.testing.assert_allclose(upper @ rotation, matrix, atol=1e-12)
        np.testing.assert_allclose(np.tril(upper, -1), 0, atol=1e-12)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        assert upper[0, 0] >= 0 and upper[1, 1] >= 0


def test_dtu_pose_from_known_camera(tmp_path: Path) -> None:
    """A scan whose camera is known: the pose's centre is the camera centre (after the
    scale matrix) and the principal point and focal come back."""
    scan = tmp_path / "DTU" / "scanX"
    (scan / "image").mkdir(parents=True)
    import imageio.v3 as iio

    iio.imwrite(scan / "image" / "000000.png", np.zeros((6, 8, 3), np.uint8))
    (tmp_path / "DTU" / "new_val.lst").write_text("scanX\n")
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                         [0, 0, 1.0]])
    centre = np.array([1.0, -2.0, 3.0])
    intrinsics = np.array([[50.0, 0, 4.5], [0, 40.0, 3.5], [0, 0, 1]])
    projection = np.eye(4)
    projection[:3] = intrinsics @ np.hstack([rotation, -rotation @ centre[:, None]])
    scale = np.diag([2.0, 2.0, 2.0, 1.0])
    scale[:3, 3] = [0.5, 0.25, -1.0]
    np.savez(scan / "cameras.npz", world_mat_0=projection, scale_mat_0=scale)
    item = open_dataset("dvr_dtu", tmp_path, "val")[0]
    expected_centre = (centre - scale[:3, 3]) / 2.0
    flip = np.diag([1.0, -1.0, -1.0])
    np.testing.assert_allclose(item["poses"][0, :3, 3].numpy(), flip @ expected_centre,
                               atol=1e-6)
    np.testing.assert_allclose(item["poses"][0, :3, :3].numpy(), flip @ rotation.T @ flip,
                               atol=1e-6)
    np.testing.assert_allclose(item["focal"].numpy(), [50.0, 40.0], atol=1e-5)
    np.testing.assert_allclose(item["c"].numpy(), [4.5, 3.5], atol=1e-5)
    assert "bbox" not in item and item["category"] == "scan"
    assert item["object_id"] == "DTU/scanX"


def test_dvr_categories_ids_and_resize(reference_root: Path) -> None:
    root = reference_root / "datasets" / "nmr"
    names = category_names(root)
    full = open_dataset("dvr", root, "train")
    small = open_dataset("dvr", root, "train", image_size=(32, 32))
    assert len(full) == len(small) > 0
    for index in range(len(full)):
        a, b = full[index], small[index]
        folder = a["object_id"].split("/")[0]
        assert a["category"] == names[folder] and "," not in a["category"]
        assert (root / a["object_id"]).is_dir() and a["img_id"] == index
        ratio = 32 / a["images"].shape[-2]
        assert b["images"].shape[-2:] == (32, 32) and b["masks"].shape[-2:] == (32, 32)
        assert float(b["focal"]) == pytest.approx(float(a["focal"]) * ratio)
        torch.testing.assert_close(b["bbox"], a["bbox"] * ratio)
        torch.testing.assert_close(b["poses"], a["poses"])
        assert (a["z_near"], a["z_far"]) == (1.2, 4.0)


def test_srn_resize_scales_intrinsics(reference_root: Path) -> None:
    srn = reference_root / "datasets" / "srn"
    train_dir = next(p for p in sorted(srn.iterdir()) if p.name.endswith("_train"))
    root = train_dir.with_name(train_dir.name[: -len("_train")])
    full = open_dataset("srn", root, "train")[0]
    height = full["images"].shape[-2]
    half = open_dataset("srn", root, "train", image_size=(height // 2, height // 2))[0]
    assert half["images"].shape[-2:] == (height // 2, height // 2)
    torch.testing.assert_close(half["focal"], full["focal"] / 2)
    torch.testing.assert_close(half["c"], full["c"] / 2)
    torch.testing.assert_close(half["bbox"], full["bbox"] / 2)
    # The mask marks exactly the pixels where no channel is white (255 -> 1.0 in [-1, 1]).
    not_white = (full["images"] < 1.0).all(dim=1)
    torch.testing.assert_close(full["masks"][:, 0] > 0, not_white)


def test_max_views_draws_distinct_views_with_their_cameras(reference_root: Path) -> None:
    root = reference_root / "datasets" / "nmr"
    full = open_dataset("dvr", root, "train")[0]
    n_views = full["images"].shape[0]
    subset = open_dataset("dvr", root, "train", max_views=n_views - 1, seed=5)[0]
    again = open_dataset("dvr", root, "train", max_views=n_views - 1, seed=5)[0]
    assert subset["images"].shape[0] == n_views - 1
    torch.testing.assert_close(subset["images"], again["images"])
    for image, pose in zip(subset["images"], subset["poses"], strict=True):
        matches = [i for i in range(n_views) if torch.equal(full["images"][i], image)]
        assert matches, "a drawn view is not one of the object's views"
        assert any(torch.equal(full["poses"][i], pose) for i in matches)


def test_cache_gives_equal_independent_items(reference_root: Path) -> None:
    root = reference_root / "datasets" / "nmr"
    plain = open_dataset("dvr", root, "train")[0]
    cached = open_dataset("dvr", root, "train", cache=True)
    first = cached[0]
    first["images"].zero_()  # a caller changing its item in place
    second = cached[0]
    for key, value in plain.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(second[key], value)
        else:
            assert second[key] == value


@pytest.mark.parametrize(
    ("fmt", "split", "options", "message"),
    [
        ("nerf", "train", {}, "unknown dataset format"),
        ("dvr", "everything", {}, "unknown split"),
        ("dvr", "train", {"listprefix": "x"}, "no option(s) listprefix"),
        ("multi_obj", "train", {"image_size": (8, 8)}, "does not resize"),
    ],
)
def test_bad_arguments_are_one_line_errors(reference_root: Path, fmt: str, split: str,
                                           options: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_dataset(fmt, reference_root / "datasets" / "nmr", split, **options)


def test_missing_root_names_it(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="does not exist"):
        open_dataset("dvr", tmp_path / "absent", "train")
    with pytest.raises(PipelineError, match="cars_train"):
        open_dataset("srn", tmp_path / "cars", "train")
