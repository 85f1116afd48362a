"""The training objective: folding ``lin_z`` into the latent map changes no loss or gradient."""

from __future__ import annotations

import pytest
import torch
import yaml


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory, project_root):
    from helpers.training import make_experiment

    work, config = make_experiment(tmp_path_factory.mktemp("objective"), project_root)
    return work, yaml.safe_load(config.read_text())


def losses_and_gradients(experiment: dict, data_root, fold: bool
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    from pixelnerf.train.batches import first_objects
    from pixelnerf.train.loop import build_run, sampler_settings
    from pixelnerf.train.objective import batch_losses
    from pixelnerf.train.sampling import STREAM_RENDER, STREAM_SAMPLE, sample_batch, step_generator

    run = build_run(experiment, data_root, torch.device("cpu"), steps=1)
    objects = first_objects(run.train_set, 2, torch.device("cpu"))
    batch = sample_batch(objects, sampler_settings(run.config, 0),
                         step_generator(0, STREAM_SAMPLE, 0))
    run.model.train()
    losses = batch_losses(run.model, run.renderer, batch,
                          step_generator(0, STREAM_RENDER, 0, torch.device("cpu")), fold)
    losses.total.backward()
    assert ("coarse" in run.model.sources.latent_terms) is fold
    grads = {name: p.grad.clone() for name, p in run.model.named_parameters()
             if p.grad is not None}
    return losses.total.detach(), grads


def test_folded_training_step_has_the_unfolded_loss_and_gradients(tiny_experiment):
    work, experiment = tiny_experiment
    loss, grads = losses_and_gradients(experiment, work / "data", fold=False)
    folded_loss, folded_grads = losses_and_gradients(experiment, work / "data", fold=True)
    torch.testing.assert_close(folded_loss, loss, rtol=1e-5, atol=1e-7)
    assert folded_grads.keys() == grads.keys()
    assert any("lin_z" in name for name in grads)  # the folded layers are trained too
    for name, grad in grads.items():
        scale = grad.abs().max().item()
        torch.testing.assert_close(folded_grads[name], grad, rtol=0, atol=1e-4 * scale + 1e-9,
                                   msg=lambda text, name=name: f"{name}: {text}")


@pytest.mark.parametrize(("setting", "latent", "folded", "expected"), [
    ("auto", 128, 64, True),      # the demo: a narrower map, fewer FLOPs
    ("auto", 128, 128, True),
    ("auto", 512, 1536, False),   # the published models: a 3x wider gather would not pay
    (True, 512, 1536, True),
    (False, 128, 64, False),
    (True, 128, 0, False),        # no lin_z: nothing to fold
])
def test_fold_setting_is_resolved_from_the_map_widths(setting, latent, folded, expected):
    from pixelnerf.train.config import TrainConfig, resolve_fold

    config = TrainConfig.from_mapping({"fold_latent": setting})
    assert resolve_fold(config, latent, folded) is expected


def test_build_run_folds_the_tiny_model_by_default(tiny_experiment):
    from pixelnerf.train.loop import build_run

    work, experiment = tiny_experiment
    assert build_run(experiment, work / "data", torch.device("cpu"), steps=1).fold_latent
    experiment = {**experiment, "train": {**experiment["train"], "fold_latent": False}}
    assert not build_run(experiment, work / "data", torch.device("cpu"), steps=1).fold_latent
