"""The network against the reference vectors computed with the published implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.reference import (
    DEVICES,
    NETWORK_ATOL,
    assert_network_outputs,
    encode_sources,
    reference_model,
)


def encoded_model(reference_root, vectors, device):
    return encode_sources(reference_model(reference_root, torch.device(device)), vectors, device)


@pytest.mark.parametrize("device", DEVICES)
def test_latent_matches(reference_root, vectors, device):
    model = encoded_model(reference_root, vectors, device)
    latent = model.sources.latent[:, :, ::5, ::5].cpu().numpy()
    expected = vectors["latent_sub"]
    assert latent.shape == expected.shape
    np.testing.assert_allclose(latent, expected, rtol=0, atol=NETWORK_ATOL)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("coarse", [True, False], ids=["coarse", "fine"])
def test_network_outputs_match(reference_root, vectors, device, coarse):
    assert_network_outputs(encoded_model(reference_root, vectors, device), vectors, device,
                           coarse)
