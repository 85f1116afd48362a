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


def mlp_cases(persistent: bool) -> tuple[dict, torch.Generator]:
    """The published-size MLP through the Triton path against the fused torch path: latent
    folded and not (fp32), and folded under fp16 autocast. Returns the results and the
    generator, for the layer cases that follow."""
    mlp = published_size_mlp(seed=0)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, VIEWS, POINTS, D_IN, generator=generator)
    latent = torch.randn(1, VIEWS, POINTS, D_LATENT, generator=generator)
    with torch.no_grad():
        terms = mlp.latent_terms(latent.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        expected = fused_forward(mlp, None, x, terms)
        # 256 rows: 4 tiles (2 once the views are averaged), over 3 programs when persistent
        results = {
            "fp32_folded": difference(
                triton_forward(mlp, None, x, terms, persistent=persistent), expected),
            "fp32_unfolded": difference(
                triton_forward(mlp, latent, x, None, persistent=persistent), expected),
        }
        with torch.autocast("cpu", dtype=torch.float16):
            results["fp16_folded"] = difference(
                triton_forward(mlp, None, x, terms, persistent=persistent), expected)
    return results, generator


def layer_operands(rows: int, generator: torch.Generator) -> tuple[dict, torch.Tensor]:
    """One fc layer with every epilogue input (ReLU prologue, bias, residual, lin_z term,
    second operand pair): the ``fused_linear`` arguments and the expected output."""
    x = torch.randn(rows, WIDTH, generator=generator)
    w_t = torch.randn(WIDTH, WIDTH, generator=generator) / WIDTH**0.5
    w2_t = torch.randn(D_LATENT, WIDTH, generator=generator) / D_LATENT**0.5
    x2 = torch.randn(rows, D_LATENT, generator=generator)
    bias = torch.randn(WIDTH, generator=generator)
    res = torch.randn(rows, WIDTH, generator=generator)
    z = torch.randn(rows, WIDTH, generator=generator)
    expected = torch.relu(x) @ w_t + x2 @ w2_t + bias + res + z
    args = {"x": x, "w_t": w_t, "bias": bias, "relu_in": True, "res": res, "z": z, "x2": x2,
            "w2_t": w2_t}
    return args, expected


def tile_kernel_cases() -> dict:
    """The one-program-a-tile kernel: the MLP, and one layer through tensor descriptors (the
    Hopper path's loads), through pointers, and with columns strided."""
    results, generator = mlp_cases(persistent=False)
    args, expected = layer_operands(96, generator)
    with torch.no_grad():
        for tma in (True, False):
            got = fused_linear(out_dtype=torch.float32, use_tma=tma, **args)
            results[f"layer_{'tma' if tma else 'pointers'}"] = difference(got, expected)
        # Sampled features can come transposed (grid_sample's (N, C, B) layout): columns
        # with a stride other than one.
        strided = {**args, "x2": args["x2"].t().contiguous().t()}
        results["layer_strided"] = difference(fused_linear(out_dtype=torch.float32, **strided),
                                              expected)
    return results


def persistent_kernel_cases() -> dict:
    """The persistent kernel: the MLP, and one layer of 18 tiles over 4 programs, which must
    also give the one-tile kernel's bits."""
    results, generator = mlp_cases(persistent=True)
    args, expected = layer_operands(LAYER_ROWS, generator)
    with torch.no_grad():
        for tma in (True, False):
            got = fused_linear(out_dtype=torch.float32, use_tma=tma, persistent=True,
                               num_sms=LAYER_PROGRAMS, **args)
            tiles = fused_linear(out_dtype=torch.float32, use_tma=tma, **args)
            name = f"layer_{'tma' if tma else 'pointers'}"
            results[name] = difference(got, expected)
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
