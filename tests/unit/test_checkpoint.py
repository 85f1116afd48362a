"""Loading published checkpoints: strict keys and shapes, one clear line otherwise."""

from __future__ import annotations

import pytest
import torch
import yaml
from helpers.reference import parse_state_dict_listing

from pixelnerf.errors import PipelineError
from pixelnerf.model import PixelNeRF, load_checkpoint


@pytest.fixture(scope="module")
def sn64_model(project_root):
    config = yaml.safe_load((project_root / "config" / "experiments" / "sn64.yaml").read_text())
    return PixelNeRF.from_config(config["model"], pretrained_encoder=False)


@pytest.fixture(scope="module")
def published_state(reference_root):
    """A state dict exactly as the published listing describes (keys, shapes, dtypes)."""
    listing = parse_state_dict_listing(reference_root / "state_dict_sn64.txt")
    assert listing, "state_dict_sn64.txt lists no keys"
    generator = torch.Generator().manual_seed(0)
    return {
        key: (
            torch.rand(shape, generator=generator)
            if dtype.is_floating_point
            else torch.zeros(shape)
        ).to(dtype)
        for key, (shape, dtype) in listing.items()
    }


def test_published_layout_loads_strictly(tmp_path, sn64_model, published_state):
    path = tmp_path / "pixel_nerf_latest"
    torch.save(published_state, path)
    load_checkpoint(path, sn64_model)
    loaded = sn64_model.state_dict()
    for key, value in published_state.items():
        assert torch.equal(loaded[key], value), key


def test_model_state_dict_equals_published_listing(reference_root, sn64_model):
    listing = parse_state_dict_listing(reference_root / "state_dict_sn64.txt")
    ours = {key: (list(t.shape), t.dtype) for key, t in sn64_model.state_dict().items()}
    assert ours == listing


def test_wrong_shape_names_the_first_differing_key(tmp_path, sn64_model, published_state):
    bad = dict(published_state)
    key = sorted(bad)[len(bad) // 2]
    bad[key] = torch.zeros(3, 1)
    path = tmp_path / "bad_shape"
    torch.save(bad, path)
    with pytest.raises(PipelineError) as info:
        load_checkpoint(path, sn64_model)
    assert key in str(info.value) and "\n" not in str(info.value)


def test_missing_and_extra_keys_are_named(tmp_path, sn64_model, published_state):
    missing = dict(published_state)
    dropped = sorted(missing)[-1]
    del missing[dropped]
    torch.save(missing, tmp_path / "missing")
    with pytest.raises(PipelineError, match=dropped.replace(".", r"\.")):
        load_checkpoint(tmp_path / "missing", sn64_model)
    extra = dict(published_state, **{"renderer.iter_idx": torch.tensor(0)})
    torch.save(extra, tmp_path / "extra")
    with pytest.raises(PipelineError, match=r"renderer\.iter_idx"):
        load_checkpoint(tmp_path / "extra", sn64_model)


def test_missing_imagenet_weights_are_one_clear_line(project_root, monkeypatch, tmp_path):
    config = yaml.safe_load((project_root / "config" / "experiments" / "sn64.yaml").read_text())
    config["model"]["encoder"]["pretrained"] = True
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty cache

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(PipelineError, match="pretrained: false"):
        PixelNeRF.from_config(config["model"])


def test_a_file_that_is_not_a_checkpoint_names_the_file(tmp_path, sn64_model):
    junk = tmp_path / "not_a_checkpoint.bin"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(PipelineError, match="not_a_checkpoint.bin"):
        load_checkpoint(junk, sn64_model)
    torch.save([1, 2, 3], tmp_path / "a_list")
    with pytest.raises(PipelineError, match="a_list"):
        load_checkpoint(tmp_path / "a_list", sn64_model)
    with pytest.raises(PipelineError, match="nowhere"):
        load_checkpoint(tmp_path / "nowhere", sn64_model)
