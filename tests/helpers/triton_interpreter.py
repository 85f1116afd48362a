"""Run as a script with TRITON_INTERPRET=1 (set before Triton is imported, hence its own
process; one process for all of it, as each start imports torch and Triton again): the Triton
kernels on the CPU. Prints one JSON object with three parts:

- ``tiles``: the one-program-a-tile ResnetFC path against the fused torch path at the
  published MLP size, and one layer through each load path;
- ``persistent``: the persistent GEMM against the same, and against the one-tile kernel;
- ``plans``: per Triton kernel name, the plan it resolves to (its self-check passes) and how
  far a model built with that plan renders from the torch path.

Per case: the max abs and relative L2 difference.
"""

from __future__ import annotations

import json
import os
import sys

import torch

import pixelnerf.render as R
from helpers.model import encoded_scene, look_at_origin, planned, tiny_config, tiny_model
from pixelnerf.model.fused_mlp import fused_forward
from pixelnerf.model.mlp import ResnetFC
from pixelnerf.model.triton_kernels import GROUP_M, INTERPRETER_CONFIG, fused_linear
from pixelnerf.model.triton_mlp import triton_forward
from pixelnerf.render.mlp_kernel import TRITON_KERNELS, random_resnet_fc

# The published sn64 MLP: point code 42 wide, latent 512, 512 wide, 5 blocks, 3 lin_z.
D_IN, D_LATENT, WIDTH, BLOCKS, COMBINE = 42, 512, 512, 5, 3
VIEWS, POINTS = 2, 128  # 256 rows before the views are averaged
# One layer with more row blocks than a group (the last group short) and a tile count that
# 4 programs do not divide: 9 row blocks x 2 column tiles = 18 tiles.
LAYER_ROWS, LAYER_PROGRAMS = 8 * INTERPRETER_CONFIG[0] + 77, 4


def published_size_mlp(seed: int) -> ResnetFC:
    """The published sn64 MLP with every weight random."""
    return random_resnet_fc(D_IN, D_LATENT, WIDTH, BLOCKS, COMBINE, seed)


def difference(got: torch.Tensor, expected: torch.Tensor) -> dict:
    got, expected = got.double(), expected.double()
    return {"max_abs": float((got - expected).abs().max()),
            "rel_l2": float((got - expected).norm() / expected.norm()),
            "finite": bool(torch.isfinite(got).all())}


def tile_kernel_cases() -> dict:
    mlp = published_size_mlp(seed=0)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, VIEWS, POINTS, D_IN, generator=generator)
    latent = torch.randn(1, VIEWS, POINTS, D_LATENT, generator=generator)
    results = {}
    with torch.no_grad():
        terms = mlp.latent_terms(latent.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        expected = fused_forward(mlp, None, x, terms)
        results["fp32_folded"] = difference(triton_forward(mlp, None, x, terms), expected)
        results["fp32_unfolded"] = difference(triton_forward(mlp, latent, x, None), expected)
        with torch.autocast("cpu", dtype=torch.float16):
            results["fp16_folded"] = difference(triton_forward(mlp, None, x, terms), expected)
        # One layer through tensor descriptors (the Hopper path's loads), with every
        # epilogue input: ReLU prologue, bias, residual, lin_z term, second operand pair.
        rows = torch.randn(96, WIDTH, generator=generator)
        w_t = torch.randn(WIDTH, WIDTH, generator=generator) / WIDTH**0.5
        w2_t = torch.randn(D_LATENT, WIDTH, generator=generator) / D_LATENT**0.5
        lat = torch.randn(96, D_LATENT, generator=generator)
        bias, res, z = (torch.randn(WIDTH, generator=generator), torch.randn(96, WIDTH),
                        torch.randn(96, WIDTH))
        reference = torch.relu(rows) @ w_t + lat @ w2_t + bias + res + z
        for tma in (True, False):
            got = fused_linear(rows, w_t, bias, torch.float32, relu_in=True, res=res, z=z,
                               x2=lat, w2_t=w2_t, use_tma=tma)
            results[f"layer_{'tma' if tma else 'pointers'}"] = difference(got, reference)
        # Sampled features can come transposed (grid_sample's (N, C, B) layout): columns
        # with a stride other than one.
        strided = lat.t().contiguous().t()
        got = fused_linear(rows, w_t, bias, torch.float32, relu_in=True, res=res, z=z,
                           x2=strided, w2_t=w2_t)
        results["layer_strided"] = difference(got, reference)
    return results


def persistent_kernel_cases() -> dict:
    mlp = published_size_mlp(seed=0)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, VIEWS, POINTS, D_IN, generator=generator)
    latent = torch.randn(1, VIEWS, POINTS, D_LATENT, generator=generator)
    results = {}
    with torch.no_grad():
        terms = mlp.latent_terms(latent.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        expected = fused_forward(mlp, None, x, terms)
        # 256 rows: 4 tiles over the interpreter's 3 programs, then 2 once views are averaged
        results["fp32_folded"] = difference(
            triton_forward(mlp, None, x, terms, persistent=True), expected)
        results["fp32_unfolded"] = difference(
            triton_forward(mlp, latent, x, None, persistent=True), expected)
        with torch.autocast("cpu", dtype=torch.float16):
            results["fp16_folded"] = difference(
                triton_forward(mlp, None, x, terms, persistent=True), expected)
        rows = torch.randn(LAYER_ROWS, WIDTH, generator=generator)
        w_t = torch.randn(WIDTH, WIDTH, generator=generator) / WIDTH**0.5
        w2_t = torch.randn(D_LATENT, WIDTH, generator=generator) / D_LATENT**0.5
        lat = torch.randn(LAYER_ROWS, D_LATENT, generator=generator)
        bias = torch.randn(WIDTH, generator=generator)
        res, z = torch.randn(LAYER_ROWS, WIDTH), torch.randn(LAYER_ROWS, WIDTH)
        reference = torch.relu(rows) @ w_t + lat @ w2_t + bias + res + z
        for tma in (True, False):
            layer = dict(relu_in=True, res=res, z=z, x2=lat, w2_t=w2_t, use_tma=tma)
            got = fused_linear(rows, w_t, bias, torch.float32, persistent=True,
                               num_sms=LAYER_PROGRAMS, **layer)
            tiles = fused_linear(rows, w_t, bias, torch.float32, **layer)
            name = f"layer_{'tma' if tma else 'pointers'}"
            results[name] = difference(got, reference)
            results[name]["bitwise_equal_to_tiles"] = bool(torch.equal(got, tiles))
    results["group_m"] = GROUP_M
    return results


def plan_cases() -> dict:
    """Per Triton kernel: the plan's kernel and the largest difference of its fine colours
    from the torch path's on a tiny scene."""
    results = {}
    for kernel in TRITON_KERNELS:
        config = {"n_coarse": 4, "n_fine": 2, "n_fine_depth": 1, "mlp_kernel": kernel}
        plan = R.resolve_plan(config, torch.device("cpu"), tiny_config())
        model = tiny_model(seed=2)
        images, poses, focal = encoded_scene(model, num_objects=1, num_views=2, size=16)
        with torch.no_grad():
            model.encode(images, poses, focal)
        rays = R.image_rays(look_at_origin(0.3, 0.2, 2.0)[None], 4, 4, 5.0, 0.8, 3.2)
        rays = rays.reshape(1, -1, 8)
        torch_plan = R.resolve_plan({**config, "mlp_kernel": "torch"}, torch.device("cpu"))
        fine = {}
        for name, net, net_plan in (("torch", model, torch_plan),
                                    ("triton", planned(model, tiny_config(), plan), plan)):
            model.sources.latent_terms.clear()
            with torch.no_grad():
                out = R.Renderer.from_config(config, net_plan)(
                    net, rays, torch.Generator().manual_seed(0))
            fine[name] = out["fine"]["rgb"]
        results[kernel] = {"kernel": plan.kernel,
                           "max_abs": float((fine["triton"] - fine["torch"]).abs().max())}
    return results


def main() -> int:
    if os.environ.get("TRITON_INTERPRET") != "1":
        print("set TRITON_INTERPRET=1", file=sys.stderr)
        return 2
    print(json.dumps({"tiles": tile_kernel_cases(), "persistent": persistent_kernel_cases(),
                      "plans": plan_cases()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
