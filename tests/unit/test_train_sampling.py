"""The training sampler: object order, source views, rays (bbox / uniform) and colour jitter."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.functional as TF

from pixelnerf.errors import PipelineError
from pixelnerf.render import image_rays
from pixelnerf.train.batches import step_batches
from pixelnerf.train.config import TrainConfig
from pixelnerf.train.loop import sampler_settings
from pixelnerf.train.sampling import (
    SamplerSettings,
    color_jitter,
    draw_pixels,
    object_batch,
    sample_batch,
    step_generator,
)


def make_object(n_views: int = 6, height: int = 8, width: int = 10, seed: int = 0,
                bbox: bool = True) -> dict:
    gen = torch.Generator().manual_seed(seed)
    poses = torch.eye(4).repeat(n_views, 1, 1)
    poses[:, :3, 3] = torch.randn(n_views, 3, generator=gen)
    obj = {
        "images": torch.rand(n_views, 3, height, width, generator=gen) * 2 - 1,
        "poses": poses,
        "focal": torch.tensor(12.0),
        "z_near": 1.2,
        "z_far": 4.0,
    }
    if bbox:
        obj["bbox"] = torch.tensor([[2.0, 1.0, 4.0, 3.0]]).repeat(n_views, 1)
    return obj


def test_step_generator_depends_on_seed_stream_and_step_only():
    draw = lambda *key: torch.rand(3, generator=step_generator(*key))  # noqa: E731
    assert torch.equal(draw(7, 1, 5), draw(7, 1, 5))
    assert not torch.equal(draw(7, 1, 5), draw(7, 1, 6))
    assert not torch.equal(draw(7, 1, 5), draw(7, 2, 5))
    assert not torch.equal(draw(7, 1, 5), draw(8, 1, 5))


def test_object_batches_are_epochs_of_shuffled_objects():
    n, size = 10, 4  # 3 batches an epoch, the last one short (as the published DataLoader)
    epoch0 = [object_batch(n, size, seed=3, step=s) for s in range(3)]
    epoch1 = [object_batch(n, size, seed=3, step=s) for s in range(3, 6)]
    assert [len(b) for b in epoch0] == [4, 4, 2]
    assert sorted(sum(epoch0, [])) == list(range(n))
    assert sorted(sum(epoch1, [])) == list(range(n))
    assert epoch0 != epoch1
    assert object_batch(n, size, seed=3, step=4) == epoch1[1]


def test_source_view_count_is_drawn_once_per_batch_and_views_are_distinct():
    objects = [make_object(seed=i) for i in range(4)]
    settings = SamplerSettings(nviews=(1, 2, 5), rays_per_object=16, use_bbox=False,
                               color_jitter=None)
    seen = set()
    for step in range(30):
        batch = sample_batch(objects, settings, step_generator(0, 1, step))
        sb, ns = batch.src_images.shape[:2]
        assert sb == 4 and ns in (1, 2, 5)
        seen.add(ns)
        for i, obj in enumerate(objects):
            # Each source image is one of the object's views, and no view twice.
            idx = [int(torch.nonzero((obj["images"] == img).flatten(1).all(1))[0]) for img in
                   batch.src_images[i]]
            assert len(set(idx)) == ns
            assert torch.equal(batch.src_poses[i], obj["poses"][idx])
    assert seen == {1, 2, 5}


def test_too_many_source_views_is_one_error_line():
    settings = SamplerSettings(nviews=(7,), rays_per_object=4, use_bbox=False, color_jitter=None)
    with pytest.raises(PipelineError, match="nviews"):
        sample_batch([make_object(n_views=6)], settings, step_generator(0, 1, 0))


def test_bbox_rays_stay_in_the_inclusive_box_and_reach_its_edges():
    bbox = torch.tensor([[2.0, 1.0, 4.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    view, row, col = draw_pixels(2, 8, 10, 4000, torch.Generator().manual_seed(0), bbox)
    box = bbox[view]
    assert ((col >= box[:, 0]) & (col <= box[:, 2]) & (row >= box[:, 1]) & (row <= box[:, 3])).all()
    first = view == 0
    # Inclusive: x 2..4 and y 1..3 all occur; a view is chosen uniformly.
    assert set(col[first].tolist()) == {2, 3, 4} and set(row[first].tolist()) == {1, 2, 3}
    assert abs(first.float().mean().item() - 0.5) < 0.05


def test_uniform_rays_cover_all_pixels_of_all_views_with_replacement():
    view, row, col = draw_pixels(3, 4, 5, 6000, torch.Generator().manual_seed(1))
    flat = (view * 4 + row) * 5 + col
    counts = torch.bincount(flat, minlength=60)
    assert (counts > 0).all() and counts.sum() == 6000  # 60 pixels, 6000 rays: replacement


def test_rays_and_colours_belong_to_the_drawn_pixels():
    obj = make_object(n_views=3, height=6, width=7, seed=5)
    settings = SamplerSettings(nviews=(1,), rays_per_object=50, use_bbox=True, color_jitter=None)
    batch = sample_batch([obj], settings, step_generator(1, 1, 0))
    all_rays = image_rays(obj["poses"], 6, 7, obj["focal"], 1.2, 4.0)  # (NV, H, W, 8)
    colours = (obj["images"] * 0.5 + 0.5).permute(0, 2, 3, 1)  # (NV, H, W, 3)
    flat_rays, flat_rgb = all_rays.reshape(-1, 8), colours.reshape(-1, 3)
    for ray, rgb in zip(batch.rays[0], batch.target[0], strict=True):
        match = torch.nonzero(((flat_rays - ray).abs() < 1e-6).all(-1)).flatten()
        assert len(match) >= 1
        assert any(torch.equal(flat_rgb[m], rgb) for m in match)
        pixel = int(match[0]) % (6 * 7)
        row, col = divmod(pixel, 7)
        assert 2 <= col <= 4 and 1 <= row <= 3  # inside the bbox
    assert batch.target.min() >= 0 and batch.target.max() <= 1


def in_box_fraction(obj: dict, use_bbox: bool) -> float:
    settings = SamplerSettings(nviews=(1,), rays_per_object=400, use_bbox=use_bbox,
                               color_jitter=None)
    batch = sample_batch([obj], settings, step_generator(2, 1, 0))
    colours = (obj["images"] * 0.5 + 0.5).permute(0, 2, 3, 1)  # (NV, H, W, 3), all distinct
    inside = colours[:, 1:4, 2:5].reshape(-1, 3)
    return sum(bool((inside == rgb).all(-1).any()) for rgb in batch.target[0]) / 400


def test_bbox_is_used_only_while_present_and_before_no_bbox_step():
    cfg = TrainConfig.from_mapping({"no_bbox_step": 100, "nviews": [1, 2]})
    assert sampler_settings(cfg, step=99).use_bbox
    assert not sampler_settings(cfg, step=100).use_bbox
    assert sampler_settings(cfg, step=0).color_jitter is None
    jitter = TrainConfig.from_mapping({"color_jitter": True})
    assert sampler_settings(jitter, step=0).color_jitter == pytest.approx(0.1)
    # bbox rays stay in the 3x3 box; without a bbox (DTU) or past the step, all pixels.
    assert in_box_fraction(make_object(), use_bbox=True) == 1.0
    assert in_box_fraction(make_object(), use_bbox=False) < 0.5
    assert in_box_fraction(make_object(bbox=False), use_bbox=True) < 0.5


def test_colour_jitter_is_the_published_sequence_applied_alike_to_all_views():
    images = torch.rand(1, 3, 5, 6).repeat(3, 1, 1, 1) * 2 - 1
    out = color_jitter(images, 0.1, torch.Generator().manual_seed(4))
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    assert not torch.allclose(out, images)
    u = torch.rand(4, generator=torch.Generator().manual_seed(4), dtype=torch.float64).tolist()
    hue, sat, bright, contrast = (2 * u[0] - 1) * 0.1, *(1 + (2 * x - 1) * 0.1 for x in u[1:])
    x = images * 0.5 + 0.5
    x = TF.adjust_brightness(TF.adjust_contrast(TF.adjust_hue(TF.adjust_saturation(
        x, sat), hue), contrast), bright)
    assert torch.allclose(out, x * 2 - 1, atol=1e-6)
    # Another order of the same operations gives another picture, so the order matters here.
    y = TF.adjust_saturation(TF.adjust_hue(TF.adjust_contrast(TF.adjust_brightness(
        images * 0.5 + 0.5, bright), contrast), hue), sat)
    assert not torch.allclose(out, y * 2 - 1, atol=1e-6)


def test_colour_jitter_factors_stay_in_range():
    gray = torch.full((1, 3, 2, 2), 0.0)  # 0.5 grey in [0, 1]: only brightness can move it
    for seed in range(50):
        out = color_jitter(gray, 0.1, torch.Generator().manual_seed(seed)) * 0.5 + 0.5
        assert 0.45 - 1e-6 <= out.mean().item() <= 0.55 + 1e-6
    assert math.isclose(color_jitter(gray, 0.0, torch.Generator()).abs().max().item(), 0.0,
                        abs_tol=1e-6)


class IndexDataset(torch.utils.data.Dataset):
    """Objects whose image says which index they are."""

    def __len__(self) -> int:
        return 7

    def __getitem__(self, index: int) -> dict:
        return {"images": torch.full((2, 3, 2, 2), float(index)), "object_id": f"obj{index}"}


def test_step_batches_are_the_same_with_and_without_worker_processes():
    def indices(workers: int) -> list[list[int]]:
        return [[int(o["images"][0, 0, 0, 0]) for o in objects] for _, objects in
                step_batches(IndexDataset(), 3, 5, 2, 9, torch.device("cpu"), workers, 1)]

    in_process = indices(0)
    assert in_process == [object_batch(7, 3, 5, s) for s in range(2, 9)]
    assert indices(2) == in_process


def test_memory_cache_decodes_each_object_once_within_its_budget():
    calls = []

    class Counting(IndexDataset):
        def __getitem__(self, index: int) -> dict:
            calls.append(index)
            return super().__getitem__(index)

    list(step_batches(Counting(), 3, 0, 0, 12, torch.device("cpu"), 0, cache_mb=1))
    assert sorted(calls) == list(range(7))


# --- the train section of the config --------------------------------------------------------


def test_train_config_reads_every_experiment_and_rejects_bad_keys(project_root):
    from pixelnerf.config import EXPERIMENT_SCHEMA, load_experiment, load_yaml, validate

    for path in sorted((project_root / "config/experiments").glob("*.yaml")):
        config = TrainConfig.from_mapping(load_experiment(path)["train"])
        assert config.steps > 0 and config.nviews
    experiment = load_yaml(project_root / "config/experiments/demo.yaml")
    with pytest.raises(PipelineError, match="key train: .*'step' was unexpected"):
        validate({**experiment, "train": {**experiment["train"], "step": 3}},
                 EXPERIMENT_SCHEMA, "demo.yaml")
    for change, key in (({"nviews": ["one"]}, r"train\.nviews\.0"),
                        ({"bf16": "yes"}, r"train\.bf16"),
                        ({"lr_schedule": "step"}, r"train\.lr_schedule"),
                        ({"lr_warmup": -1}, r"train\.lr_warmup"),
                        ({"fold_latent": "yes"}, r"train\.fold_latent")):
        with pytest.raises(PipelineError, match=f"key {key}: "):
            validate({**experiment, "train": {**experiment["train"], **change}},
                     EXPERIMENT_SCHEMA, "demo.yaml")


def test_training_precision_auto_has_the_one_meaning_of_auto(monkeypatch):
    import pixelnerf.render.precision as P
    from pixelnerf.train.config import training_precision

    off = TrainConfig.from_mapping({})
    assert (off.bf16, off.tf32) == (False, False)  # fp32 training unless asked otherwise
    auto = TrainConfig.from_mapping({"bf16": "auto", "tf32": "auto"})
    for native in (False, True):
        monkeypatch.setattr(P, "bf16_supported", lambda device, native=native: native)
        for device in ("cpu", "cuda"):
            precision = training_precision(auto, torch.device(device))
            # auto: bf16 exactly where renderer.precision auto takes it; never TF32
            expected = P.resolve_precision("auto", torch.device(device)) == "bf16"
            assert precision.bf16 is expected is native and not precision.tf32
    on = TrainConfig.from_mapping({"bf16": True, "tf32": True})
    assert training_precision(on, torch.device("cuda")).tf32
    with pytest.raises(PipelineError, match="tf32"):
        training_precision(on, torch.device("cpu"))


def test_the_experiments_train_and_render_at_the_precision_they_did(project_root):
    """Every experiment trains in fp32 (bf16 and TF32 off) and renders at ``auto``, or the
    demo at the fp32 default."""
    from pixelnerf.config import load_experiment

    for path in sorted((project_root / "config/experiments").glob("*.yaml")):
        experiment = load_experiment(path)
        train = TrainConfig.from_mapping(experiment.get("train"))
        assert (train.bf16, train.tf32) == (False, False), path.name
        precision = experiment["renderer"].get("precision", "fp32")
        assert precision == ("fp32" if path.stem == "demo" else "auto"), path.name


def test_learning_rate_schedules():
    constant = TrainConfig.from_mapping({"lr": 1e-3, "steps": 100})
    assert {constant.learning_rate(step) for step in (0, 50, 99)} == {1e-3}
    cosine = TrainConfig.from_mapping({"lr": 1e-3, "lr_schedule": "cosine", "lr_final": 1e-5,
                                       "steps": 100})
    rates = [cosine.learning_rate(step) for step in range(101)]
    assert rates[0] == pytest.approx(1e-3) and rates[100] == pytest.approx(1e-5)
    assert rates[50] == pytest.approx((1e-3 + 1e-5) / 2)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert cosine.learning_rate(500) == pytest.approx(1e-5)  # past the budget: final
    with pytest.raises(PipelineError, match=r"train\.lr_final"):
        TrainConfig.from_mapping({"lr": 1e-4, "lr_final": 1e-3})


def test_learning_rate_warmup_scales_the_first_steps():
    warm = TrainConfig.from_mapping({"lr": 1e-3, "lr_schedule": "cosine", "lr_final": 1e-5,
                                     "steps": 100, "lr_warmup": 10})
    cold = TrainConfig.from_mapping({"lr": 1e-3, "lr_schedule": "cosine", "lr_final": 1e-5,
                                     "steps": 100})
    for step in range(10):
        assert warm.learning_rate(step) == pytest.approx(
            (step + 1) / 10 * cold.learning_rate(step))
    assert [warm.learning_rate(s) for s in range(9, 101)] == [
        cold.learning_rate(s) for s in range(9, 101)]
    constant = TrainConfig.from_mapping({"lr": 1e-3, "lr_warmup": 4})
    assert [constant.learning_rate(s) for s in range(6)] == pytest.approx(
        [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
