"""Run as a script with TRITON_INTERPRET=1 (set before Triton is imported, hence its own
process): the Triton ResnetFC path against the fused torch path at the published MLP size
on the CPU. Prints one JSON object: per case, the max abs and relative L2 difference."""

from __future__ import annotations

import json
import os
import sys

import torch

from pixelnerf.model.fused_mlp import fused_forward
from pixelnerf.model.mlp import ResnetFC
from pixelnerf.model.triton_kernels import fused_linear
from pixelnerf.model.triton_mlp import triton_forward
from pixelnerf.render.mlp_kernel import random_resnet_fc

# The published sn64 MLP: point code 42 wide, latent 512, 512 wide, 5 blocks, 3 lin_z.
D_IN, D_LATENT, WIDTH, BLOCKS, COMBINE = 42, 512, 512, 5, 3
VIEWS, POINTS = 2, 128  # 256 rows before the views are averaged


def published_size_mlp(seed: int) -> ResnetFC:
    """The published sn64 MLP with every weight random."""
    return random_resnet_fc(D_IN, D_LATENT, WIDTH, BLOCKS, COMBINE, seed)


def difference(got: torch.Tensor, expected: torch.Tensor) -> dict:
    got, expected = got.double(), expected.double()
    return {"max_abs": float((got - expected).abs().max()),
            "rel_l2": float((got - expected).norm() / expected.norm()),
            "finite": bool(torch.isfinite(got).all())}


def main() -> int:
    if os.environ.get("TRITON_INTERPRET") != "1":
        print("set TRITON_INTERPRET=1", file=sys.stderr)
        return 2
    mlp = published_size_mlp(seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
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
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
