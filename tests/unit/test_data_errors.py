"""Bad data stops with one error line naming the file; ``pixelnerf validate-data`` lists
every bad file of a dataset in one pass. The cases break copies of the reference trees;
which object is broken is picked from what the reader lists, not named here."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pixelnerf.cli import main
from pixelnerf.data import open_dataset
from pixelnerf.data.validate import find_problems
from pixelnerf.errors import PipelineError


@pytest.fixture()
def nmr(reference_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "nmr"
    shutil.copytree(reference_root / "datasets" / "nmr", root)
    return root


@pytest.fixture()
def srn_root(reference_root: Path, tmp_path: Path) -> Path:
    source = reference_root / "datasets" / "srn"
    shutil.copytree(source, tmp_path / "srn")
    train_dir = next(p for p in sorted((tmp_path / "srn").iterdir()) if p.name.endswith("_train"))
    return train_dir.with_name(train_dir.name[: -len("_train")])


def _first_object(root: Path, fmt: str = "dvr", split: str = "train") -> Path:
    return Path(open_dataset(fmt, root, split)[0]["path"])


def _image(folder: Path, sub: str = "image", index: int = 0) -> Path:
    return sorted((folder / sub).iterdir())[index]


def _load_all(root: Path, fmt: str, split: str) -> None:
    dataset = open_dataset(fmt, root, split)
    for index in range(len(dataset)):
        dataset[index]


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_missing_image_names_it(nmr: Path) -> None:
    folder = _first_object(nmr)
    image = _image(folder)
    image.unlink()
    # A missing image leaves fewer images than masks, named with the mask folder.
    with pytest.raises(PipelineError) as exc:
        _load_all(nmr, "dvr", "train")
    assert str(folder / "mask") in _one_line(exc)


def test_unreadable_image_names_it(nmr: Path) -> None:
    image = _image(_first_object(nmr))
    image.write_bytes(b"not a png")
    with pytest.raises(PipelineError) as exc:
        _load_all(nmr, "dvr", "train")
    assert str(image) in _one_line(exc)


def test_missing_frame_image_names_it(reference_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "multi"
    shutil.copytree(reference_root / "datasets" / "multi_chair", root)
    folder = _first_object(root, "multi_obj", "train")
    image = sorted(folder.glob("*.png"))[0]
    image.unlink()
    with pytest.raises(PipelineError) as exc:
        _load_all(root, "multi_obj", "train")
    assert str(image) in _one_line(exc) and "missing" in str(exc.value)


def test_cameras_without_a_view_matrix(nmr: Path) -> None:
    folder = _first_object(nmr)
    path = folder / "cameras.npz"
    with np.load(path) as data:
        cameras = {key: data[key] for key in data.files}
    last = len(list((folder / "image").iterdir())) - 1
    for key in (f"world_mat_{last}", f"world_mat_inv_{last}"):
        cameras.pop(key, None)
    np.savez(path, **cameras)
    with pytest.raises(PipelineError) as exc:
        _load_all(nmr, "dvr", "train")
    line = _one_line(exc)
    assert str(path) in line and f"world_mat_{last}" in line


def test_list_naming_a_missing_object(nmr: Path) -> None:
    folder = _first_object(nmr)
    shutil.rmtree(folder)
    with pytest.raises(PipelineError) as exc:
        open_dataset("dvr", nmr, "train")
    assert str(folder) in _one_line(exc)


def test_empty_mask_names_it(nmr: Path) -> None:
    import imageio.v3 as iio

    mask = _image(_first_object(nmr), "mask")
    iio.imwrite(mask, np.zeros_like(iio.imread(mask)))
    with pytest.raises(PipelineError) as exc:
        _load_all(nmr, "dvr", "train")
    assert str(mask) in _one_line(exc) and "empty" in str(exc.value)


def test_all_white_srn_image_names_it(srn_root: Path) -> None:
    import imageio.v3 as iio

    folder = _first_object(srn_root, "srn", "train")
    image = _image(folder, "rgb")
    iio.imwrite(image, np.full_like(iio.imread(image), 255))
    with pytest.raises(PipelineError) as exc:
        _load_all(srn_root, "srn", "train")
    assert str(image) in _one_line(exc) and "empty mask" in str(exc.value)


def test_validate_lists_every_bad_file(nmr: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["validate-data", "dvr", str(nmr)]) == 0
    capsys.readouterr()
    dataset = open_dataset("dvr", nmr, "train")
    assert len(dataset) >= 2, "the reference nmr tree needs two training objects"
    first, second = Path(dataset[0]["path"]), Path(dataset[1]["path"])
    broken_image = _image(first, index=1)
    broken_image.write_bytes(b"\x89PNG broken")
    empty_mask = _image(second, "mask", index=0)
    import imageio.v3 as iio

    iio.imwrite(empty_mask, np.zeros_like(iio.imread(empty_mask)))
    other_mask = _image(second, "mask", index=1)
    iio.imwrite(other_mask, np.zeros_like(iio.imread(other_mask)))
    test_list = next(nmr.glob("*/softras_test.lst"))
    test_list.write_text(test_list.read_text() + "no_such_object\n")

    problems, _ = find_problems("dvr", nmr)
    assert main(["validate-data", "dvr", str(nmr)]) == 1
    out = capsys.readouterr().out
    for path in (broken_image, empty_mask, other_mask, test_list):
        assert str(path) in out
    assert len(problems) == 4 == len(out.strip().splitlines())


def test_validate_srn_and_multi_obj(srn_root: Path, reference_root: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    assert main(["validate-data", "srn", str(srn_root)]) == 0
    assert main(["validate-data", "multi_obj",
                 str(reference_root / "datasets" / "multi_chair")]) == 0
    folder = _first_object(srn_root, "srn", "train")
    pose = sorted((folder / "pose").iterdir())[0]
    pose.write_text("1 2 3\n")
    capsys.readouterr()
    assert main(["validate-data", "srn", str(srn_root)]) == 1
    assert str(pose) in capsys.readouterr().out


def test_validate_unknown_folder_is_an_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    assert main(["validate-data", "dvr", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
