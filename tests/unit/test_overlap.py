"""The render loop's overlap: decoding ahead, copies to the host, ordered background writes,
and a shard rendered that way equal to each object rendered on its own."""

from __future__ import annotations

import threading
import time

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from helpers.untrained import demo_experiment, save_untrained_model

from pixelnerf.data.demo import SynthSettings, synthesize
from pixelnerf.errors import PipelineError
from pixelnerf.eval.inference import (
    Cameras,
    ViewPasses,
    load_inference,
    render_view_passes,
    to_uint8,
)
from pixelnerf.eval.overlap import HostPasses, OrderedWriter, prefetched
from pixelnerf.eval.protocol import Protocol, stable_seed
from pixelnerf.eval.render import RenderJob, render_shard

CPU = torch.device("cpu")
WAIT_S = 10.0


def test_prefetched_keeps_order_and_loads_the_next_key_during_the_current_one() -> None:
    loading_next = threading.Event()

    def load(key: int) -> int:
        if key == 1:
            loading_next.set()
        return key * 10

    seen = []
    for key, value in prefetched(range(4), load):
        if key == 0:  # the consumer holds key 0 until key 1 has started loading
            assert loading_next.wait(WAIT_S)
        seen.append((key, value))
    assert seen == [(0, 0), (1, 10), (2, 20), (3, 30)]


def test_prefetched_raises_a_failed_load_at_its_key() -> None:
    def load(key: int) -> int:
        if key == 2:
            raise PipelineError("object 2 is damaged")
        return key

    seen = []
    with pytest.raises(PipelineError, match="object 2 is damaged"):
        for key, _ in prefetched(range(5), load):
            seen.append(key)
    assert seen == [0, 1]


def test_prefetched_of_nothing_yields_nothing() -> None:
    assert list(prefetched([], lambda key: key)) == []


def test_writer_runs_jobs_in_order_and_bounds_what_waits() -> None:
    order: list[int] = []
    release = threading.Event()

    def job(index: int):
        def run() -> None:
            if index == 0:
                assert release.wait(WAIT_S)
            order.append(index)
        return run

    with OrderedWriter(max_pending=2) as writer:
        writer.submit(job(0))
        writer.submit(job(1))
        third = threading.Thread(target=writer.submit, args=(job(2),))
        third.start()
        third.join(0.3)
        assert third.is_alive()  # two jobs wait: the third submit waits for the oldest
        release.set()
        third.join(WAIT_S)
        assert not third.is_alive()
    assert order == [0, 1, 2]


def test_writer_raises_the_first_failure_and_still_runs_what_came_before() -> None:
    written = []

    def fail() -> None:
        raise PipelineError("no space left on device writing 000001.png")

    writer = OrderedWriter()
    writer.submit(lambda: written.append("a"))
    writer.submit(fail)
    with pytest.raises(PipelineError, match="no space left"):
        writer.submit(lambda: written.append("b"))
        writer.close()
    assert written[0] == "a"


def test_writer_finishes_submitted_jobs_when_the_caller_fails() -> None:
    written = []

    def slow() -> None:
        time.sleep(0.2)
        written.append("object")

    with pytest.raises(RuntimeError, match="render failed"), OrderedWriter() as writer:
        writer.submit(slow)
        raise RuntimeError("render failed")
    assert written == ["object"]


def test_host_passes_on_the_cpu_are_the_passes() -> None:
    passes = ViewPasses(rgb=torch.rand(2, 3, 3, 3), depth=None, coarse_rgb=None)
    on_host = HostPasses.start(passes)
    assert on_host.wait() is passes


SYNTH = {"categories": ["chair"], "train_objects": 1, "val_objects": 0, "test_objects": 3,
         "views": 4, "image_size": 12}


@pytest.fixture(scope="module")
def shard(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("overlap")
    experiment = demo_experiment(SYNTH)
    experiment["eval"]["ray_batch"] = 70  # several renderer calls per object
    synthesize(SynthSettings.from_mapping(SYNTH), root / "data" / "demo")
    checkpoint = save_untrained_model(experiment, root / "pixel_nerf_latest")
    job = RenderJob.of_experiment(experiment, root / "data", checkpoint, root / "out")
    render_shard(job, "1v", 0, 1, CPU, progress=False)
    return {"job": job, "root": root}


def test_a_shard_rendered_with_overlap_equals_each_object_rendered_alone(shard: dict) -> None:
    from pixelnerf.eval.inference import open_split

    job: RenderJob = shard["job"]
    dataset = open_split(job.dataset, job.data_root, job.eval.split)
    protocol = Protocol.from_config(job.eval)
    network = load_inference(job.model, job.renderer, job.checkpoint, CPU)
    model, renderer = network.model, network.renderer
    assert len(dataset) == 3
    for index in range(len(dataset)):
        item = dataset[index]
        object_id = str(item["object_id"])
        selection = protocol.select("1v", object_id, item["images"].shape[0])
        generator = torch.Generator(CPU).manual_seed(stable_seed(job.eval.seed, "1v", object_id))
        alone = to_uint8(render_view_passes(model, renderer, item["images"], Cameras.of_item(item),
                                            selection, job.eval.ray_batch, generator, CPU,
                                            extras=False).rgb)
        folder = job.out_root / "1v" / object_id
        written = np.stack([iio.imread(folder / f"{view:06d}.png") for view in selection.targets])
        np.testing.assert_array_equal(written, alone)


def test_without_extras_the_render_is_the_same_and_depth_is_not_kept(shard: dict) -> None:
    from pixelnerf.eval.inference import open_split

    job: RenderJob = shard["job"]
    item = open_split(job.dataset, job.data_root, job.eval.split)[0]
    selection = Protocol.from_config(job.eval).select("1v", str(item["object_id"]), 4)
    network = load_inference(job.model, job.renderer, job.checkpoint, CPU)
    model, renderer = network.model, network.renderer

    def passes(extras: bool) -> ViewPasses:
        return render_view_passes(model, renderer, item["images"], Cameras.of_item(item),
                                  selection, 50, torch.Generator(CPU).manual_seed(5), CPU,
                                  extras=extras)

    full, lean = passes(True), passes(False)
    assert torch.equal(full.rgb, lean.rgb)
    assert full.depth.shape == full.rgb.shape[:3] and lean.depth is None
    assert lean.coarse_rgb is None
