"""The published trainer's options: L1 or MSE, lambda_coarse / lambda_fine, exponential
learning-rate decay per epoch, a frozen encoder, gradient accumulation."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
import yaml

from pixelnerf.errors import PipelineError
from pixelnerf.train.config import TrainConfig
from pixelnerf.train.objective import LossSettings, batch_losses, psnr

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory, project_root):
    from helpers.training import make_experiment

    work, config = make_experiment(tmp_path_factory.mktemp("options"), project_root,
                                   train={"val_objects": 0})
    return work, yaml.safe_load(config.read_text())


class FixedRenderer:
    """Returns the given colours whatever the rays."""

    def __init__(self, coarse: torch.Tensor, fine: torch.Tensor | None):
        self.out = {"coarse": {"rgb": coarse}}
        if fine is not None:
            self.out["fine"] = {"rgb": fine}

    def __call__(self, model, rays, generator=None):
        return self.out


def fixed_losses(settings: LossSettings, with_fine: bool = True):
    torch.manual_seed(0)
    target, coarse, fine = torch.rand(3, 2, 5, 3).unbind(0)
    model = SimpleNamespace(encode=lambda *args, **kwargs: None)
    batch = SimpleNamespace(src_images=None, src_poses=None, focal=None, c=None, rays=None,
                            target=target)
    losses = batch_losses(model, FixedRenderer(coarse, fine if with_fine else None), batch,
                          None, False, settings)
    return losses, target, coarse, fine


def test_l1_mse_and_the_lambdas() -> None:
    losses, target, coarse, fine = fixed_losses(LossSettings("mse", 0.5, 2.0))
    mse_c, mse_f = ((coarse - target) ** 2).mean(), ((fine - target) ** 2).mean()
    torch.testing.assert_close(losses.coarse, mse_c)
    torch.testing.assert_close(losses.total, 0.5 * mse_c + 2.0 * mse_f)
    losses, target, coarse, fine = fixed_losses(LossSettings("l1", 1.0, 1.0))
    l1_c, l1_f = (coarse - target).abs().mean(), (fine - target).abs().mean()
    torch.testing.assert_close(losses.total, l1_c + l1_f)
    torch.testing.assert_close(losses.fine, l1_f)
    # the PSNR stays that of the fine render's squared error
    mse_f = ((fine - target) ** 2).mean().item()
    assert losses.values()["psnr"] == pytest.approx(psnr(mse_f))
    # no fine pass: the coarse loss unweighted, as published
    losses, target, coarse, _ = fixed_losses(LossSettings("mse", 0.5, 2.0), with_fine=False)
    torch.testing.assert_close(losses.total, ((coarse - target) ** 2).mean())


def test_bad_option_values_are_one_line_errors(tiny_experiment) -> None:
    from pixelnerf.config import EXPERIMENT_SCHEMA, validate

    _, experiment = tiny_experiment
    for key, value in (("loss", "huber"), ("lr_gamma", 0.0), ("lambda_fine", -1.0),
                       ("accumulate", 0), ("init", "")):
        config = copy.deepcopy(experiment)
        config["train"][key] = value
        with pytest.raises(PipelineError, match=f"train.*{key}|{key}"):
            validate(config, EXPERIMENT_SCHEMA, "experiment")
    with pytest.raises(PipelineError, match="multiple"):
        TrainConfig.from_mapping({"accumulate": 3, "checkpoint_every": 50})


def test_exponential_decay_is_the_published_per_epoch_exponential_lr() -> None:
    config = TrainConfig.from_mapping({"lr": 1e-3, "lr_schedule": "exponential",
                                       "lr_gamma": 0.9})
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=1e-3)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    epoch_steps = 3
    for step in range(12):
        assert config.learning_rate(step, epoch_steps) == pytest.approx(
            optimizer.param_groups[0]["lr"], rel=1e-12)
        parameter.grad = torch.zeros(1)
        optimizer.step()
        if step % epoch_steps == epoch_steps - 1:
            scheduler.step()  # the published trainer: after every epoch
    assert TrainConfig.from_mapping({}).lr_gamma == 1.0  # published --gamma 1.0: no decay


def test_run_steps_with_the_decayed_rate(tiny_experiment) -> None:
    from pixelnerf.train.batches import first_objects
    from pixelnerf.train.loop import build_run, train_step

    work, experiment = tiny_experiment
    experiment = copy.deepcopy(experiment)
    experiment["train"].update(lr_schedule="exponential", lr_gamma=0.5, lr_warmup=0)
    run = build_run(experiment, work / "data", CPU, steps=8)
    assert run.epoch_steps == math.ceil(len(run.train_set) / run.config.batch_objects)
    objects = first_objects(run.train_set, 2, CPU)
    train_step(run, run.epoch_steps, objects)
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * run.config.lr)


def test_frozen_encoder_keeps_weights_and_batchnorm_statistics(tiny_experiment) -> None:
    from pixelnerf.train.batches import first_objects
    from pixelnerf.train.loop import build_run, train_step

    work, experiment = tiny_experiment
    experiment = copy.deepcopy(experiment)
    experiment["train"]["freeze_encoder"] = True
    run = build_run(experiment, work / "data", CPU, steps=3)
    encoder_before = {k: v.clone() for k, v in run.model.encoder.state_dict().items()}
    assert any("running_mean" in k for k in encoder_before)
    rest_before = {k: v.clone() for k, v in run.model.named_parameters()
                   if not k.startswith("encoder.")}
    objects = first_objects(run.train_set, 2, CPU)
    for step in range(3):
        train_step(run, step, objects)
    assert not run.model.encoder.training
    for key, value in run.model.encoder.state_dict().items():
        assert torch.equal(value, encoder_before[key]), key
    assert all(p.grad is None for p in run.model.encoder.parameters())
    changed = [k for k, p in run.model.named_parameters()
               if k in rest_before and not torch.equal(p, rest_before[k])]
    assert changed, "nothing was trained"


def test_accumulation_equals_the_gradient_of_the_batches_together(tiny_experiment) -> None:
    from pixelnerf.train.batches import first_objects
    from pixelnerf.train.loop import build_run, sampler_settings, train_mode, train_step
    from pixelnerf.train.sampling import STREAM_RENDER, STREAM_SAMPLE, sample_batch, step_generator

    work, experiment = tiny_experiment
    experiment = copy.deepcopy(experiment)
    experiment["train"].update(accumulate=2, batch_objects=1, checkpoint_every=8)
    objects = first_objects(build_run(experiment, work / "data", CPU, steps=4).train_set,
                            2, CPU)
    halves = [[objects[0]], [objects[1]]]

    # The reference: one backward of the mean of both batches' losses, same draws, same start.
    reference = build_run(experiment, work / "data", CPU, steps=4)
    train_mode(reference)
    total = 0.0
    for step, group in enumerate(halves):
        batch = sample_batch(group, sampler_settings(reference.config, step),
                             step_generator(0, STREAM_SAMPLE, step))
        total = total + batch_losses(reference.model, reference.renderer, batch,
                                     step_generator(0, STREAM_RENDER, step, CPU),
                                     reference.fold_latent).total
    (total / 2).backward()
    expected = {k: p.grad.clone() for k, p in reference.model.named_parameters()
                if p.grad is not None}

    run = build_run(experiment, work / "data", CPU, steps=4)
    start = {k: p.detach().clone() for k, p in run.model.named_parameters()}
    train_step(run, 0, halves[0])
    assert all(torch.equal(p, start[k]) for k, p in run.model.named_parameters()), \
        "the optimiser stepped before the last batch of the update"
    train_step(run, 1, halves[1])
    grads = {k: p.grad for k, p in run.model.named_parameters() if p.grad is not None}
    assert grads.keys() == expected.keys()
    for key, grad in grads.items():
        torch.testing.assert_close(grad, expected[key], rtol=1e-5, atol=1e-8)
    assert any(not torch.equal(p, start[k]) for k, p in run.model.named_parameters())
