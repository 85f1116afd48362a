"""Our ResNets against torchvision's: one seed gives the same weights, the same keys and the
same features, and the ImageNet weights come through torchvision's cache."""

from __future__ import annotations

import pytest
import torch
import torchvision

from pixelnerf.errors import PipelineError
from pixelnerf.model.resnet import STAGE_BLOCKS, build_resnet


@pytest.mark.parametrize("backbone", sorted(STAGE_BLOCKS))
def test_every_depth_has_torchvisions_keys_and_shapes(backbone):
    with torch.device("meta"):  # the layout alone: nothing allocated or drawn
        ours = build_resnet(backbone, pretrained=False).state_dict()
        theirs = getattr(torchvision.models, backbone)(weights=None).state_dict()
    assert [(key, value.shape) for key, value in ours.items()] == \
        [(key, value.shape) for key, value in theirs.items()]


# Both block kinds, and the published depth.
@pytest.mark.parametrize("backbone", ["resnet18", "resnet34", "resnet50"])
def test_one_seed_gives_torchvisions_weights_and_features(backbone):
    torch.manual_seed(7)
    ours = build_resnet(backbone, pretrained=False)
    after_ours = torch.rand(1)
    torch.manual_seed(7)
    theirs = getattr(torchvision.models, backbone)(weights=None)
    # The same draws in the same order: the random stream is left at the same place.
    assert torch.equal(torch.rand(1), after_ours)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in theirs_state.items():
        assert torch.equal(ours_state[key], value), key
    if backbone != "resnet34":  # the two block kinds
        images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        for train in (True, False):  # batch statistics, then running statistics
            ours.train(train)
            theirs.train(train)
            torch.testing.assert_close(ours(images), theirs(images), rtol=0, atol=0)


def test_pretrained_weights_come_from_torchvisions_cache(tmp_path, monkeypatch):
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    cached = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        for param in cached.parameters():
            param.normal_()
    checkpoints = tmp_path / "hub/checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(cached.state_dict(), checkpoints / weights.url.rsplit("/", 1)[1])
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    model = build_resnet("resnet18", pretrained=True)
    for key, value in cached.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("backbone", ["vgg16", "resnext50_32x4d", "wide_resnet50_2"])
def test_other_backbones_are_refused_naming_the_key(backbone):
    with pytest.raises(PipelineError, match=r"model\.global_encoder\.backbone .* not one of"):
        build_resnet(backbone, pretrained=False, key="model.global_encoder")
