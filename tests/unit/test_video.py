"""`pixelnerf video`: the published camera paths, and an mp4 that decodes with the configured
frames whose frame 0 equals a direct render of the path's first pose (tiny random-weight model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import PROJECT_ROOT
from helpers.untrained import demo_experiment, save_untrained_model

import pixelnerf.render as R
from pixelnerf.cli import main
from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig
from pixelnerf.eval.inference import Cameras, load_inference, open_split, to_uint8
from pixelnerf.eval.protocol import Protocol, stable_seed
from pixelnerf.video import (
    VideoSettings,
    dtu_spline_poses,
    loop_poses,
    make_object_video,
    read_mp4,
    write_mp4,
)
from pixelnerf.video.paths import DTU_KEY_QUATERNIONS
from pixelnerf.video.render import SEED_TAG
from pixelnerf.video.writer import video_fps

CPU = torch.device("cpu")
SYNTH = {"categories": ["car"], "train_objects": 0, "val_objects": 0, "test_objects": 1,
         "views": 4, "image_size": 32}
FRAMES, FPS, ELEVATION = 5, 12, -20.0
# H.264 is lossy (and a random-weight network renders noise, its worst case): the PSNR a
# decoded frame keeps against the frame given to the encoder.
MIN_CODEC_PSNR = 25.0


def _split(experiment: dict, data_root: Path):
    return open_split(experiment["dataset"], data_root, experiment["eval"]["split"])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("video")
    experiment = demo_experiment(SYNTH)
    # One frame a renderer call, so a direct render of frame 0 draws the same sample offsets.
    experiment["eval"]["ray_batch"] = SYNTH["image_size"] ** 2
    experiment["video"] = {"frames": FRAMES, "fps": FPS, "elevation": ELEVATION}
    synthesize(SynthSettings.from_mapping(SYNTH), root / "data" / "demo")
    checkpoint = save_untrained_model(experiment, root / "pixel_nerf_latest")
    object_id = _split(experiment, root / "data")[0]["object_id"]
    return {"root": root, "experiment": experiment, "checkpoint": checkpoint,
            "object_id": object_id}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def published_orbit(azimuth: float, elevation: float, radius: float) -> np.ndarray:
    """The published spherical pose written as its matrix product: translate along z, tilt
    about x, turn about y, then swap to the z-up world."""
    phi, theta = np.radians(elevation), np.radians(azimuth)
    translate = np.eye(4)
    translate[2, 3] = radius
    tilt = np.eye(4)
    tilt[1:3, 1:3] = [[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]]
    turn = np.eye(4)
    turn[0, 0], turn[0, 2], turn[2, 0], turn[2, 2] = (np.cos(theta), -np.sin(theta),
                                                      np.sin(theta), np.cos(theta))
    swap = np.array([[-1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)
    return swap @ turn @ tilt @ translate


def test_loop_is_the_published_orbit() -> None:
    poses = loop_poses(8, -10.0, 1.3).numpy()
    assert poses.shape == (8, 4, 4)
    for pose, azimuth in zip(poses, np.arange(-180.0, 180.0, 45.0), strict=True):
        np.testing.assert_allclose(pose, published_orbit(azimuth, -10.0, 1.3), atol=1e-6)
    # negative elevation is above (z up); every camera looks at the origin from the radius
    assert (poses[:, 2, 3] > 0).all()
    np.testing.assert_allclose(np.linalg.norm(poses[:, :3, 3], axis=1), 1.3, atol=1e-6)
    np.testing.assert_allclose(-poses[:, :3, 2], -poses[:, :3, 3] / 1.3, atol=1e-6)


def test_dtu_spline_passes_through_the_key_orientations() -> None:
    from scipy.spatial.transform import Rotation

    # 12 frames over the period [0, 6): frame 2k sits at time k, so times 0, 2, 3, 5 are frames.
    poses = dtu_spline_poses(12, 2.0).numpy()
    keys = np.asarray(DTU_KEY_QUATERNIONS)[:, [1, 2, 3, 0]]  # scipy wants (x, y, z, w)
    for frame, key in zip((0, 4, 6, 10), keys[:4], strict=True):
        np.testing.assert_allclose(poses[frame, :3, :3], Rotation.from_quat(key).as_matrix(),
                                   atol=1e-5)
    np.testing.assert_allclose(poses[:, :3, 3], 2.0 * poses[:, :3, 2], atol=1e-5)
    assert np.allclose(np.linalg.det(poses[:, :3, :3]), 1.0, atol=1e-5)


def test_settings_reject_bad_keys() -> None:
    from pixelnerf.config import EXPERIMENT_SCHEMA, load_yaml, validate

    experiment = load_yaml(PROJECT_ROOT / "config" / "experiments" / "demo.yaml")
    with pytest.raises(PipelineError, match="key video: .*'frame' was unexpected"):
        validate({**experiment, "video": {"frame": 3}}, EXPERIMENT_SCHEMA, "demo.yaml")
    with pytest.raises(PipelineError, match="key video.frames: 0 is less than"):
        validate({**experiment, "video": {"frames": 0}}, EXPERIMENT_SCHEMA, "demo.yaml")
    with pytest.raises(PipelineError, match="key video.path: 'spiral' is not one of"):
        validate({**experiment, "video": {"path": "spiral"}}, EXPERIMENT_SCHEMA, "demo.yaml")
    assert VideoSettings.from_mapping({"sources": [0, 2]}).sources == (0, 2)
    assert VideoSettings.from_mapping(None).path_kind("dvr_dtu") == "dtu_spline"
    assert VideoSettings.from_mapping({}).path_kind("srn") == "loop"


def test_video_decodes_with_configured_frames_and_frame0_is_a_direct_render(
    setup: dict, tmp_path: Path
) -> None:
    experiment, object_id = setup["experiment"], setup["object_id"]
    out = tmp_path / "videos" / "demo" / f"{object_id}.mp4"
    video = make_object_video(experiment, setup["root"] / "data", setup["checkpoint"], object_id,
                              out, CPU)
    decoded = read_mp4(out)
    size = SYNTH["image_size"]
    assert decoded.shape == (FRAMES, size, size, 3)
    assert video_fps(out) == pytest.approx(FPS)
    assert not list(out.parent.glob(".*.tmp"))  # written atomically, nothing left behind

    # The direct render: the first pose of the published loop, written out independently.
    item = _split(experiment, setup["root"] / "data")[0]
    cameras = Cameras.of_item(item)
    radius = 0.5 * (cameras.z_near + cameras.z_far)
    pose = torch.from_numpy(published_orbit(-180.0, ELEVATION, radius)).float()
    protocol = Protocol.from_config(EvalConfig.of_experiment(experiment))
    sources = list(protocol.select("1v", object_id, 4).sources)
    assert video.sources == tuple(sources)
    network = load_inference(experiment["model"], experiment["renderer"], setup["checkpoint"],
                             CPU)
    model, renderer = network.model, network.renderer
    generator = torch.Generator().manual_seed(stable_seed(experiment["eval"]["seed"], SEED_TAG,
                                                          object_id))
    with torch.no_grad():
        model.encode(item["images"][sources][None], cameras.poses[sources][None],
                     cameras.focal.reshape(1))
        rays = R.image_rays(pose[None], size, size, cameras.focal, cameras.z_near,
                            cameras.z_far).reshape(1, -1, 8)
        direct = renderer(model, rays, generator=generator)["fine"]["rgb"][0]
    direct = to_uint8(direct.reshape(size, size, 3))
    np.testing.assert_array_equal(video.frames[0], direct)
    scores = [psnr(frame, direct) for frame in decoded]
    # decoded frame 0 is the direct render, and no other frame is as close to it
    assert scores[0] > MIN_CODEC_PSNR and scores[0] == max(scores), scores


def test_writer_pads_odd_sides_and_round_trips(tmp_path: Path) -> None:
    frames = np.zeros((3, 15, 21, 3), np.uint8)
    frames[:, :, :10] = 200
    write_mp4(tmp_path / "odd.mp4", frames, fps=10, quality=8)
    decoded = read_mp4(tmp_path / "odd.mp4")
    assert decoded.shape == (3, 16, 22, 3)
    cropped = decoded[:, :15, :21]
    assert min(psnr(a, b) for a, b in zip(cropped, frames, strict=True)) > MIN_CODEC_PSNR


def test_cli_unknown_object_is_one_line(setup: dict, tmp_path: Path, capsys) -> None:
    config = tmp_path / "demo.yaml"
    experiment = {k: v for k, v in setup["experiment"].items() if k != "video"}
    config.write_text(yaml.safe_dump(experiment))
    status = main(["video", "--config", str(config), "--data-root", str(setup["root"] / "data"),
                   "--checkpoint", str(setup["checkpoint"]), "--object", "car/nothing",
                   "--out", str(tmp_path / "x.mp4"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "car/nothing" in err[0]
    assert not (tmp_path / "x.mp4").exists()


def test_dtu_style_cameras_render_the_spline(setup: dict) -> None:
    """(fx, fy) and a principal point, as DTU has them, give the frames of the equal scalar
    focal and centred principal point."""
    from pixelnerf.video import render_path

    experiment = setup["experiment"]
    item = _split(experiment, setup["root"] / "data")[0]
    cameras = Cameras.of_item(item)
    size = SYNTH["image_size"]
    path = dtu_spline_poses(2, 1.0)
    network = load_inference(experiment["model"], experiment["renderer"], setup["checkpoint"],
                             CPU)
    model, renderer = network.model, network.renderer
    frames = []
    for focal, c in ((cameras.focal, None),
                     (cameras.focal.reshape(1).repeat(2), torch.tensor([size / 2, size / 2]))):
        frames.append(render_path(model, renderer, item["images"][:1], cameras.poses[:1], path,
                                  focal, c, cameras.z_near, cameras.z_far, 4096,
                                  torch.Generator().manual_seed(0), CPU))
    assert frames[0].shape == (2, size, size, 3)
    torch.testing.assert_close(frames[0], frames[1])
