"""The parts of data-parallel training that need no second process: which job a process
belongs to, each rank's rays, and renderer draws that do not depend on the split."""

from __future__ import annotations

import pytest
import torch
from helpers.model import encoded_scene, look_at_origin, tiny_model

from pixelnerf.errors import PipelineError
from pixelnerf.render import Renderer
from pixelnerf.render.rays import image_rays
from pixelnerf.train.distributed import (
    SINGLE,
    World,
    backend_for,
    first_host,
    ray_share,
    share_of_batch,
    world_from_env,
)
from pixelnerf.train.sampling import RayBatch


def test_torchrun_environment_is_read_first():
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
           "SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "2", "SLURM_JOB_ID": "7"}
    assert world_from_env(env) == World(rank=3, size=8, local_rank=1, init_method="env://",
                                        local_size=4)


def test_cpu_ranks_and_ranks_sharing_a_gpu_use_gloo():
    assert backend_for(World(rank=0, size=2, local_size=2), torch.device("cpu")) == "gloo"
    # more ranks on this node than it has GPUs: they share one
    sharing = World(rank=0, size=8, local_size=torch.cuda.device_count() + 1)
    assert backend_for(sharing, torch.device("cuda")) == "gloo"


def test_srun_step_of_several_tasks_meets_on_the_first_node():
    env = {"SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "1",
           "SLURM_STEP_NODELIST": "gpu[07-09,12]", "SLURM_JOB_ID": "123456"}
    world = world_from_env(env)
    assert (world.rank, world.size, world.local_rank) == (5, 8, 1)
    assert world.init_method == "tcp://gpu07:" + str(20000 + 123456 % 20000)
    env["MASTER_ADDR"], env["MASTER_PORT"] = "head", "29400"
    assert world_from_env(env).init_method == "tcp://head:29400"


def test_single_task_slurm_jobs_and_plain_runs_are_one_process():
    # A batch script of an allocation with several tasks is still one process.
    assert world_from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "1"}) \
        == SINGLE
    assert world_from_env({"SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "1"}) == SINGLE
    assert world_from_env({}) == SINGLE and SINGLE.main and not SINGLE.distributed


def test_node_lists():
    assert first_host("node1") == "node1"
    assert first_host("a[3-4],b2") == "a3"
    assert first_host("cn[0012,0020-0021]") == "cn0012"
    with pytest.raises(PipelineError, match="node list"):
        first_host("")


def test_bad_rank_variable_is_one_line():
    with pytest.raises(PipelineError, match="RANK='x'"):
        world_from_env({"RANK": "x", "WORLD_SIZE": "2"})


@pytest.mark.parametrize("rays,size", [(128, 2), (33, 2), (128, 8), (7, 3)])
def test_rank_shares_cover_every_ray_once_and_evenly(rays, size):
    shares = [ray_share(rays, World(rank=r, size=size)) for r in range(size)]
    assert shares[0][0] == 0 and shares[-1][1] == rays
    assert all(a[1] == b[0] for a, b in zip(shares, shares[1:], strict=False))
    lengths = [end - begin for begin, end in shares]
    assert max(lengths) - min(lengths) <= 1


def test_more_ranks_than_rays_is_refused():
    with pytest.raises(PipelineError, match="rays_per_object"):
        ray_share(3, World(rank=0, size=4))


def test_shares_render_what_the_whole_batch_renders():
    """Each rank's rays, rendered with its ``RowDraws``, get the coarse, importance and
    depth-noise draws of the whole batch: the pieces put together are the whole render."""
    model = tiny_model()
    encoded_scene(model, num_objects=2)
    renderer = Renderer.from_config({"n_coarse": 8, "n_fine": 6, "n_fine_depth": 2,
                                     "white_bkgd": True, "depth_std": 0.05})
    pose = look_at_origin(0.2, 0.3, 2.0)
    rays = image_rays(pose.expand(2, 4, 4), 8, 8, torch.tensor(9.6), 1.0, 3.0)  # (2, 64, 8)
    rays = rays.reshape(2, -1, 8)[:, :33]
    # Only the rays and targets of a batch are split; the source views stay whole.
    batch = RayBatch(src_images=torch.zeros(2, 1, 3, 8, 8),
                     src_poses=torch.eye(4).expand(2, 1, 4, 4), focal=torch.ones(2), c=None,
                     rays=rays, target=torch.zeros(2, 33, 3))

    def generator() -> torch.Generator:
        return torch.Generator().manual_seed(11)

    with torch.no_grad():
        whole = renderer(model, rays, generator=generator())
        parts = []
        for rank in range(2):
            part, draws = share_of_batch(batch, generator(), World(rank=rank, size=2))
            assert part.src_images is batch.src_images  # every rank encodes every view
            parts.append(renderer(model, part.rays, generator=draws))
    for pass_name in ("coarse", "fine"):
        for key in ("rgb", "depth"):
            joined = torch.cat([p[pass_name][key] for p in parts], dim=1)
            torch.testing.assert_close(joined, whole[pass_name][key], rtol=1e-6, atol=1e-7)
    # A plain generator per share would draw other numbers: the check can fail.
    with torch.no_grad():
        part, _ = share_of_batch(batch, generator(), World(rank=1, size=2))
        naive = renderer(model, part.rays, generator=generator())
    assert not torch.allclose(naive["fine"]["depth"], whole["fine"]["depth"][:, 17:])
