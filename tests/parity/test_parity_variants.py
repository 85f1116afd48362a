"""The published model variants (plain MLP, global encoder) against the published code's outputs.

Driven by tests/fixtures/published_variants.npz (see tests/fixtures/README.md): every forward
case and every initialisation case it holds is tested, whatever their names.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.reference import (
    DEVICES,
    NETWORK_ATOL,
    assert_network_outputs,
    encode_sources,
    fill_deterministic,
)

from pixelnerf.config import EXPERIMENT_SCHEMA, load_yaml, validate
from pixelnerf.errors import PipelineError
from pixelnerf.model import PixelNeRF, load_checkpoint
from pixelnerf.model.implicit import ImplicitMLP

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "published_variants.npz"


def _load() -> dict[str, dict[str, np.ndarray]]:
    """{case: {field: array}} from ``<case>/<field>`` keys."""
    cases: dict[str, dict[str, np.ndarray]] = {}
    with np.load(FIXTURE) as data:
        for key in data.files:
            case, field = key.split("/", 1)
            cases.setdefault(case, {})[field] = data[key]
    return cases


CASES = _load()
FORWARD = sorted(name for name, case in CASES.items() if "images" in case)
INIT = sorted(name for name, case in CASES.items() if "images" not in case)
GLOBAL = [name for name in FORWARD if "global_latent" in CASES[name]]


def stored_state(case: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {
        key.removeprefix("state/"): torch.from_numpy(value)
        for key, value in case.items()
        if key.startswith("state/")
    }


def case_config(case: dict[str, np.ndarray]) -> dict:
    return json.loads(str(case["config"]))


def published_listing(case: dict[str, np.ndarray]) -> dict[str, tuple[list[int], str]]:
    """``key [d0, d1] dtype`` lines -> {key: (shape, dtype)}."""
    listing = {}
    for line in case["state_keys"]:
        key, rest = str(line).split(" ", 1)
        dims, dtype = rest.rsplit(" ", 1)
        listing[key] = (json.loads(dims), dtype)
    return listing


@cache
def _weighted_model(name: str) -> PixelNeRF:
    case = CASES[name]
    model = fill_deterministic(PixelNeRF.from_config(case_config(case), pretrained_encoder=False))
    state = model.state_dict()
    state.update(stored_state(case))
    model.load_state_dict(state, strict=True)
    return model.eval()


def weighted_model(name: str) -> PixelNeRF:
    """The model of a case, a fresh copy: the reference rule's weights, then the case's stored
    MLP weights (building a ResNet once per case keeps the file fast)."""
    return copy.deepcopy(_weighted_model(name))


def case_model(name: str, device: str) -> PixelNeRF:
    """:func:`weighted_model` on ``device``, its source views encoded."""
    return encode_sources(weighted_model(name).to(device), CASES[name], device)


def test_fixture_holds_both_variants() -> None:
    types = {
        case_config(CASES[name])[mlp].get("type", "mlp")
        for name in FORWARD
        for mlp in ("mlp_coarse", "mlp_fine")
    }
    assert types == {"mlp", "resnet"} and GLOBAL and INIT


@pytest.mark.parametrize("name", FORWARD)
def test_state_dict_is_the_published_one(name: str) -> None:
    ours = {
        key: (list(t.shape), str(t.dtype).removeprefix("torch."))
        for key, t in weighted_model(name).state_dict().items()
    }
    assert ours == published_listing(CASES[name])


@pytest.mark.parametrize("name", FORWARD)
def test_published_checkpoint_loads_strictly(name: str, tmp_path: Path) -> None:
    """A state dict with the published keys and shapes loads; one key short does not."""
    listing = published_listing(CASES[name])
    state = {
        key: torch.zeros(shape, dtype=getattr(torch, dtype))
        for key, (shape, dtype) in listing.items()
    }
    state.update(stored_state(CASES[name]))
    path = tmp_path / "pixel_nerf_latest"
    torch.save(state, path)
    model = weighted_model(name)
    load_checkpoint(path, model)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    dropped = max(key for key in listing if key.startswith(("global_encoder.", "mlp_")))
    del state[dropped]
    torch.save(state, path)
    with pytest.raises(PipelineError, match=f"key {dropped} is missing"):
        load_checkpoint(path, model)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", GLOBAL)
def test_global_latent_matches(name: str, device: str) -> None:
    latent = case_model(name, device).sources.global_latent.cpu().numpy()
    expected = CASES[name]["global_latent"]
    assert latent.shape == expected.shape
    np.testing.assert_allclose(latent, expected, rtol=0, atol=NETWORK_ATOL)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fold", [False, True], ids=["per_point", "folded"])
@pytest.mark.parametrize("name", FORWARD)
def test_network_outputs_match(name: str, fold: bool, device: str) -> None:
    model = case_model(name, device)
    if fold:
        model.fold_latent_terms()
    for coarse in (True, False):
        assert_network_outputs(model, CASES[name], device, coarse)


@pytest.mark.parametrize("name", INIT)
def test_plain_mlp_starts_from_the_published_initialisation(name: str) -> None:
    """Same seed, same draws: the geometric initialisation equals the published one exactly."""
    settings = case_config(CASES[name])
    torch.manual_seed(settings.pop("seed"))
    mlp = ImplicitMLP(d_out=4, **settings)
    expected = stored_state(CASES[name])
    assert list(mlp.state_dict()) == list(expected)
    for key, value in mlp.state_dict().items():
        assert torch.equal(value, expected[key]), key


def demo_experiment(project_root: Path) -> dict:
    return load_yaml(project_root / "config/experiments/demo.yaml")


def test_schema_takes_the_variant_keys(project_root: Path) -> None:
    experiment = demo_experiment(project_root)
    for name in FORWARD:
        experiment["model"] = case_config(CASES[name])
        validate(experiment, EXPERIMENT_SCHEMA, "demo.yaml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["mlp_coarse"].pop("dims"), "key model.mlp_coarse: 'dims' is a required"),
        (lambda m: m["mlp_fine"].update(type="mlp"), "key model.mlp_fine: 'dims' is a required"),
        (lambda m: m["mlp_coarse"].update(skip_in=[0]), "key model.mlp_coarse.skip_in.0"),
        (lambda m: m.update(use_global_encoder=True), "key model: 'global_encoder' is a required"),
        (
            lambda m: m.update(use_global_encoder=True, global_encoder={"backbone": "resnet50"}),
            "key model.global_encoder.backbone: 'resnet50' is not one of",
        ),
    ],
)
def test_schema_refuses_broken_variants(project_root: Path, edit, message: str) -> None:
    experiment = demo_experiment(project_root)
    experiment["model"]["mlp_coarse"] = {"type": "mlp", "dims": [8, 8], "skip_in": [1],
                                         "dim_excludes_skip": True}
    edit(experiment["model"])
    with pytest.raises(PipelineError, match=message):
        validate(experiment, EXPERIMENT_SCHEMA, "demo.yaml")


@pytest.mark.parametrize(
    ("mlp", "message"),
    [
        ({"dims": [8, 8, 8], "skip_in": [2], "combine_layer": 2}, "skip_in 2 must name a layer"),
        ({"dims": [8, 8], "skip_in": [3]}, "skip_in 3 must name a layer 1..2"),
        ({"dims": [8, 8], "skip_in": [1]}, "layer 0 would have .* outputs"),
    ],
)
def test_plain_mlp_that_the_published_code_cannot_run_is_one_error(mlp: dict, message: str
                                                                    ) -> None:
    with pytest.raises(PipelineError, match=message):
        ImplicitMLP.from_config({"type": "mlp", **mlp}, d_in=42, d_latent=512)
