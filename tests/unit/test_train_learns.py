"""Training on the demo data lowers the loss: a seeded run of a few hundred steps on the CPU."""

from __future__ import annotations

import json

import numpy as np
from helpers.training import LEARN_STEPS, TINY_SYNTH

from pixelnerf.model import PixelNeRF, load_checkpoint
from pixelnerf.train.checkpoint import LATEST
from pixelnerf.train.monitor import read_losses


def test_training_loss_falls_below_half_its_start(trained_demo):
    _, paths, summary = trained_demo
    losses = np.array([row["loss"] for row in read_losses(paths.losses)])
    assert len(losses) == LEARN_STEPS and np.isfinite(losses).all()
    start, early, end = losses[:5].mean(), losses[20:40].mean(), losses[-20:].mean()
    assert end < 0.5 * start, (start, end)
    # Still falling after the easy part (empty space and background): the objects are learnt.
    assert end < 0.8 * early, (early, end)
    assert summary["steps"] == LEARN_STEPS and summary["train_loss"] < 0.5 * start


def test_held_out_loss_is_reported_and_outputs_are_in_place(trained_demo):
    experiment, paths, summary = trained_demo
    done = json.loads(paths.done.read_text())
    assert done == summary and done["val_loss"] is not None and done["val_psnr"] > 0
    assert sorted(p.name for p in paths.vis.iterdir()) == ["step-0000100.png", "step-0000200.png"]
    import imageio.v3 as iio

    panel = iio.imread(paths.vis / "step-0000100.png")
    size = TINY_SYNTH["image_size"]
    assert panel.shape == (size, 4 * size, 3)  # source | render | depth | ground truth
    assert any(p.name.startswith("events.") for p in paths.tensorboard.iterdir())
    model = PixelNeRF.from_config(experiment["model"])
    load_checkpoint(paths.checkpoints / LATEST, model)  # strict, weights only

