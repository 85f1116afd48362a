"""Run as a script with TRITON_INTERPRET=1 (its own process, as triton_interpreter.py):
the persistent Triton GEMM against the fused torch path at the published MLP size, and
against the one-program-a-tile kernel, on the CPU. Prints one JSON object: per case, the
max abs and relative L2 difference."""

from __future__ import annotations

import json
import os
import sys

import torch
from triton_interpreter import D_IN, D_LATENT, POINTS, VIEWS, WIDTH, difference, published_size_mlp

from pixelnerf.model.fused_mlp import fused_forward
from pixelnerf.model.triton_kernels import GROUP_M, INTERPRETER_CONFIG, fused_linear
from pixelnerf.model.triton_mlp import triton_forward

# One layer with more row blocks than a group (the last group short) and a tile count that
# 4 programs do not divide: 9 row blocks x 2 column tiles = 18 tiles.
LAYER_ROWS, LAYER_PROGRAMS = 8 * INTERPRETER_CONFIG[0] + 77, 4


def main() -> int:
    if os.environ.get("TRITON_INTERPRET") != "1":
        print("set TRITON_INTERPRET=1", file=sys.stderr)
        return 2
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
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
