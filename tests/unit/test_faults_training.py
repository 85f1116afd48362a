"""A diverging run: a NaN or infinite loss or gradient stops training with one line naming
the step, the last good checkpoint is kept, and a rerun resumes from it."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pixelnerf.cli import main
from pixelnerf.errors import PipelineError
from pixelnerf.model import PixelNeRF, load_checkpoint
from pixelnerf.train import distributed
from pixelnerf.train.checkpoint import STATE, Checkpointer
from pixelnerf.train.divergence import check_step

STEPS, EVERY, BAD_STEP = 6, 2, 5  # the fault hits between the 2nd and 3rd checkpoint


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, project_root):
    from helpers.training import make_experiment

    return make_experiment(tmp_path_factory.mktemp("diverge"), project_root,
                           train={"checkpoint_every": EVERY, "val_every": 0, "vis_every": 0})


def _args(config, name: str) -> list[str]:
    return ["train", "--config", str(config), "--data-root", "data", "--checkpoints",
            f"ckpt/{name}", "--out", f"out/{name}", "--device", "cpu", "--steps", str(STEPS)]


def _diverge_at(monkeypatch, kind: str) -> None:
    """From step BAD_STEP on, the loss (or one gradient) of every step is NaN (or inf)."""
    calls = []
    original = distributed.batch_losses  # what the training step's objective calls

    def faulty(model, *args, **kwargs):
        losses = original(model, *args, **kwargs)
        calls.append(None)
        if len(calls) > BAD_STEP:
            if kind == "loss":
                losses.total = losses.total * math.nan
            else:
                weight = next(model.parameters())
                weight.register_hook(lambda grad: grad * math.inf)
        return losses

    monkeypatch.setattr(distributed, "batch_losses", faulty)


@pytest.mark.parametrize("kind", ["loss", "gradient"])
def test_diverging_training_stops_keeps_the_good_checkpoint_and_resumes(
        experiment, monkeypatch, capsys, kind: str) -> None:
    work, config = experiment
    monkeypatch.chdir(work)
    _diverge_at(monkeypatch, kind)
    assert main(_args(config, kind)) == 2
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("pixelnerf: error:")]
    assert len(errors) == 1 and err.endswith(errors[0]), err  # above it: the progress bar
    assert f"training diverged at step {BAD_STEP}:" in errors[0]
    assert ("the loss is nan" if kind == "loss" else "gradient of") in errors[0]
    ckpt = work / "ckpt" / kind
    state = torch.load(ckpt / STATE, weights_only=True)
    assert state["step"] == EVERY * (BAD_STEP // EVERY)  # the last checkpoint before the fault
    model = PixelNeRF.from_config(_model_config(config), pretrained_encoder=False)
    load_checkpoint(ckpt / "pixel_nerf_latest", model)
    assert all(torch.isfinite(v).all() for v in model.state_dict().values()
               if v.is_floating_point())
    assert not (work / "out" / kind / "done.json").exists()

    monkeypatch.undo()  # the fault is gone; the same command resumes from the good checkpoint
    monkeypatch.chdir(work)
    assert main(_args(config, kind)) == 0
    out = capsys.readouterr().out
    assert f"resuming from ckpt/{kind}/pixel_nerf_latest at step {state['step']}" in out
    assert json.loads((work / "out" / kind / "done.json").read_text())["steps"] == STEPS


def _model_config(config) -> dict:
    import yaml

    return yaml.safe_load(config.read_text())["model"]


def test_a_finite_step_passes_and_an_overflowing_one_is_named() -> None:
    model = torch.nn.Linear(3, 1)
    model(torch.ones(2, 3)).sum().backward()
    check_step(0, torch.tensor(1.0), model)
    model.bias.grad.fill_(math.inf)
    with pytest.raises(PipelineError, match="step 7: the gradient of bias is not finite"):
        check_step(7, torch.tensor(1.0), model)


def test_a_non_finite_model_never_replaces_a_good_checkpoint(tmp_path) -> None:
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters())
    saver = Checkpointer(tmp_path)
    saver.save(model, optimizer, step=8, seconds=1.0)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with torch.no_grad():
        model.weight[0, 0] = math.nan
    with pytest.raises(PipelineError, match="step 16: weight is not finite"):
        saver.save(model, optimizer, step=16, seconds=2.0)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
