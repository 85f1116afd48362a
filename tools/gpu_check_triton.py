"""The Triton ResnetFC against the fused torch path on one device: error per precision and
latent mode, then the time of one MLP call per path at the published size. Both Triton
GEMMs are checked and timed side by side: ``triton`` (one program a tile, what the renderer
runs) and ``persistent`` (one program a multiprocessor looping over tiles), the latter in
fp32 (the strict bound) and bf16 (the default precision on GPUs) only, to keep its
compilation and tuning within the check's time limit.

Usage: python tools/gpu_check_triton.py [--device cuda] [--points N] [--tiny] [--budget S].
``--tiny`` (with TRITON_INTERPRET=1 on a CPU) takes a 32-wide MLP and 64 points: the dry
run. Work that would start after ``--budget`` seconds (the section's limit less a margin)
is skipped with a line saying so. Exit status 1 where an error exceeds its bound (the
renderer's self-check bounds).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import torch

from pixelnerf.model.fused_mlp import fused_forward
from pixelnerf.model.mlp import ResnetFC
from pixelnerf.model.triton_kernels import program_count
from pixelnerf.model.triton_mlp import triton_forward
from pixelnerf.render.mlp_kernel import SELF_CHECK_TOLERANCE
from pixelnerf.render.precision import network_precision


def random_mlp(width: int, blocks: int, combine: int, d_in: int, d_latent: int) -> ResnetFC:
    torch.manual_seed(0)
    mlp = ResnetFC(d_in, d_latent, 4, blocks, width, combine).eval()
    with torch.no_grad():
        for name, p in mlp.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.05)
            elif "fc_1" in name:
                p.normal_(0.0, 0.5 / width**0.5)
    return mlp


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


PERSISTENT_PRECISIONS = ("fp32", "bf16")


def main() -> int:
    start = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--points", type=int, default=1 << 18)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--budget", type=float, default=150.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    shape = (32, 3, 2, 5, 8) if args.tiny else (512, 5, 3, 42, 512)
    mlp = random_mlp(*shape).to(device)
    width, d_in, d_latent = shape[0], shape[3], shape[4]
    points = 64 if args.tiny else args.points
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, points, d_in, generator=generator).to(device)
    latent = torch.randn(1, 1, points, d_latent, generator=generator).to(device)
    kernels = {"torch": fused_forward, "triton": triton_forward,
               "persistent": functools.partial(triton_forward, persistent=True)}

    def tritons(precision: str) -> list[str]:
        return ["triton"] + (["persistent"] if precision in PERSISTENT_PRECISIONS else [])

    def in_budget(what: str) -> bool:
        elapsed = time.monotonic() - start
        if elapsed <= args.budget:
            return True
        print(f"triton: {what} skipped: {elapsed:.0f} s, past this check's "
              f"{args.budget:.0f} s budget")
        return False

    failed = False
    with torch.no_grad():
        terms = torch.cat([layer(latent) for layer in mlp.lin_z], dim=-1)
        expected = fused_forward(mlp, None, x, terms).double()
        precisions = ["fp32"] + (["tf32", "bf16"] if device.type == "cuda" else [])
        modes = (("folded", (None, x, terms)), ("unfolded", (latent, x, None)))
        print(f"triton: MLP {width} wide, {points} points, on {device}; persistent kernel: "
              f"{program_count(device)} programs")
        for precision in precisions:
            bound = {"fp32": SELF_CHECK_TOLERANCE["ieee"], "tf32": SELF_CHECK_TOLERANCE["tf32"],
                     "bf16": SELF_CHECK_TOLERANCE[torch.bfloat16]}[precision]
            with network_precision(precision, device):
                for kernel in tritons(precision):
                    for mode, inputs in modes:
                        label = f"{precision:<5} {kernel:<10} {mode:<9}"
                        if not in_budget(label):
                            continue
                        got = kernels[kernel](mlp, *inputs).double()
                        error = float((got - expected).norm() / expected.norm())
                        ok = error <= bound and bool(torch.isfinite(got).all())
                        failed |= not ok
                        print(f"triton: {label} relative L2 {error:.2e} "
                              f"(bound {bound:.0e}) {'ok' if ok else 'FAIL'}")
        if not args.tiny:
            flop = 2 * points * (d_in * width + 3 * d_latent * width + 10 * width * width)
            for precision in reversed(precisions):  # bf16 first: the default on GPUs
                with network_precision(precision, device):
                    for kernel in ["torch", *tritons(precision)]:
                        for mode, inputs in modes:
                            label = f"{precision:<5} {kernel:<10} {mode:<9}"
                            if not in_budget(f"time {label}"):
                                continue
                            seconds = timed(lambda f=kernels[kernel], i=inputs: f(mlp, *i),
                                            device, 10)
                            print(f"triton: time {label} {seconds * 1e3:8.2f} ms  "
                                  f"{points / seconds / 1e6:7.2f} M points/s  "
                                  f"{flop / seconds / 1e12:7.1f} TFLOP/s (unfolded FLOPs)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
