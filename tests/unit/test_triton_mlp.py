"""The fused Triton MLP kernel without a GPU: its arithmetic in Triton's interpreter, its
compilation for Hopper (sm_90) with the shared memory each autotune config needs, and the
renderer.mlp_kernel setting (resolution, self-check, one-line errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget

import pixelnerf.render.mlp_kernel as MK
from pixelnerf.errors import PipelineError
from pixelnerf.model.mlp import ResnetFC
from pixelnerf.model.triton_kernels import (
    AUTOTUNE_CONFIGS,
    H100_SHARED_MEMORY_BYTES,
    fused_linear_kernel,
)
from pixelnerf.render import Renderer

HELPERS = Path(__file__).resolve().parent.parent / "helpers"
FP32_ATOL = 1e-4
FP16_REL_L2 = 2e-3  # fp16 operands (11-bit mantissa) through 12 layers, fp32 accumulation
HOPPER = GPUTarget("cuda", 90, 32)


@pytest.fixture(scope="module")
def interpreted() -> dict:
    """The interpreter run (its own process: TRITON_INTERPRET must precede the import)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(HELPERS / "triton_interpreter.py")], env=env,
                          capture_output=True, text=True, timeout=600, cwd=HELPERS)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["fp32_folded", "fp32_unfolded", "layer_tma",
                                  "layer_pointers", "layer_strided"])
def test_fp32_kernel_matches_the_torch_path_at_the_published_size(interpreted, case):
    assert interpreted[case]["finite"]
    assert interpreted[case]["max_abs"] < FP32_ATOL, interpreted[case]


def test_fp16_kernel_stays_within_fp16_rounding(interpreted):
    result = interpreted["fp16_folded"]
    assert result["finite"] and 0 < result["rel_l2"] < FP16_REL_L2, result


def hopper_signature(tma: bool, block: tuple[int, int, int]) -> tuple[dict, dict]:
    """ASTSource signature and constexprs of the bf16 fc_1 launch of the unfolded path
    (fp32 activations and residual, bf16 weights, a second operand pair): the largest
    operand set the kernel takes in bf16."""
    block_m, block_n, block_k = block
    pointers = {"x_ptr": "*fp32", "w_ptr": "*bf16", "x2_ptr": "*fp32", "w2_ptr": "*bf16",
                "bias_ptr": "*fp32", "res_ptr": "*fp32", "out_ptr": "*fp32"}
    descriptors = {"x_desc": f"tensordesc<fp32[{block_m}, {block_k}]>",
                   "w_desc": f"tensordesc<bf16[{block_k}, {block_n}]>",
                   "x2_desc": f"tensordesc<fp32[{block_m}, {block_k}]>",
                   "w2_desc": f"tensordesc<bf16[{block_k}, {block_n}]>"}
    constexprs = dict(RELU_IN=False, RELU_OUT=False, HAS_X2=True, HAS_RES=True, HAS_Z=False,
                      DTYPE=tl.bfloat16, DOT_PRECISION="ieee", USE_TMA=tma, BLOCK_M=block_m,
                      BLOCK_N=block_n, BLOCK_K=block_k, z_ptr=None)
    signature = {}
    for name in fused_linear_kernel.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name in descriptors and tma:
            signature[name] = descriptors[name]
        elif name in pointers and not (tma and name[:-4] + "_desc" in descriptors):
            signature[name] = pointers[name]
        elif name in pointers or name in descriptors:
            signature[name] = "constexpr"
            constexprs[name] = None
        else:
            signature[name] = "i32"
    return signature, constexprs


@pytest.mark.parametrize("config", AUTOTUNE_CONFIGS, ids=lambda c: "x".join(map(str, c)))
def test_every_autotune_config_compiles_for_hopper_within_its_shared_memory(config):
    block_m, block_n, block_k, warps, stages = config
    signature, constexprs = hopper_signature(True, (block_m, block_n, block_k))
    source = triton.compiler.ASTSource(fn=fused_linear_kernel, signature=signature,
                                       constexprs=constexprs)
    kernel = triton.compile(source, target=HOPPER,
                            options={"num_warps": warps, "num_stages": stages})
    assert 0 < kernel.metadata.shared <= H100_SHARED_MEMORY_BYTES, kernel.metadata.shared
    assert "wgmma" in kernel.asm["ptx"]  # Hopper's warpgroup matrix instructions
    assert "cp.async.bulk.tensor" in kernel.asm["ptx"]  # the tensor-descriptor (TMA) loads


def test_the_pointer_path_compiles_for_hopper_too():
    signature, constexprs = hopper_signature(False, AUTOTUNE_CONFIGS[0][:3])
    source = triton.compiler.ASTSource(fn=fused_linear_kernel, signature=signature,
                                       constexprs=constexprs)
    kernel = triton.compile(source, target=HOPPER, options={"num_warps": 8, "num_stages": 3})
    assert 0 < kernel.metadata.shared <= H100_SHARED_MEMORY_BYTES
    assert "cp.async.bulk.tensor" not in kernel.asm["ptx"]


def small_mlp(width: int = 32) -> ResnetFC:
    return ResnetFC(d_in=5, d_latent=8, d_out=4, n_blocks=3, d_hidden=width,
                    combine_layer=2).eval()


def test_torch_and_published_are_taken_as_asked():
    for kernel in ("torch", "published"):
        assert MK.resolve_mlp_kernel(kernel, [small_mlp()], torch.device("cpu")) == kernel


def test_auto_on_a_cpu_takes_the_torch_path_with_one_line_saying_why():
    lines: list[str] = []
    cpu = torch.device("cpu")
    assert MK.resolve_mlp_kernel("auto", [small_mlp()], cpu, lines.append) == "torch"
    assert len(lines) == 1 and "CUDA" in lines[0] and "torch path" in lines[0]


def test_triton_without_a_gpu_or_the_interpreter_is_one_error(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(PipelineError, match=r"^renderer.mlp_kernel: triton needs a CUDA device"):
        MK.resolve_mlp_kernel("triton", [small_mlp()], torch.device("cpu"))


def test_triton_on_an_unsupported_width_is_one_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(PipelineError, match="d_hidden a multiple of 16, not 40"):
        MK.resolve_mlp_kernel("triton", [small_mlp(width=40)], torch.device("cpu"))


def test_triton_on_the_plain_mlp_is_one_error(monkeypatch):
    from pixelnerf.model.implicit import ImplicitMLP

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    plain = ImplicitMLP.from_config({"type": "mlp"}, 5, 8, 4)
    with pytest.raises(PipelineError, match="type resnet only, not ImplicitMLP"):
        MK.resolve_mlp_kernel("triton", [plain], torch.device("cpu"))


def test_a_failed_self_check_stops_triton_and_sends_auto_to_torch(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(MK, "triton_unavailable", lambda device, mlps: None)
    monkeypatch.setattr(MK, "self_check", lambda mlps, device: "differs from the torch path")
    with pytest.raises(PipelineError, match="^renderer.mlp_kernel: triton differs"):
        MK.resolve_mlp_kernel("triton", [small_mlp()], cuda)
    lines: list[str] = []
    assert MK.resolve_mlp_kernel("auto", [small_mlp()], cuda, lines.append) == "torch"
    assert len(lines) == 1 and "differs from the torch path" in lines[0]
    monkeypatch.setattr(MK, "self_check", lambda mlps, device: None)
    assert MK.resolve_mlp_kernel("auto", [small_mlp()], cuda, lines.append) == "triton"


def test_the_self_check_catches_a_wrong_kernel(monkeypatch):
    import pixelnerf.model.triton_mlp as TM

    monkeypatch.setattr(TM, "triton_forward",
                        lambda mlp, latent, x, terms=None: torch.zeros(1, x.shape[2], 4))
    reason = MK.self_check([small_mlp()], torch.device("cpu"))
    assert reason is not None and "differs from the torch path" in reason


def test_an_unknown_kernel_is_one_error_naming_the_key():
    with pytest.raises(PipelineError, match="renderer.mlp_kernel must be one of"):
        Renderer.from_config({"mlp_kernel": "cuda"})
    assert Renderer.from_config({}).config.mlp_kernel == "auto"


def test_the_fused_torch_path_equals_the_published_graph():
    torch.manual_seed(3)
    mlp = small_mlp()
    with torch.no_grad():
        for p in mlp.parameters():
            p.normal_(0.0, 0.3)
        x, latent = torch.randn(2, 3, 50, 5), torch.randn(2, 3, 50, 8)
        mlp.kernel = "published"
        expected = mlp(latent, x)
        mlp.kernel = "torch"
        got = mlp(latent, x)
        folded = mlp(None, x, latent_terms=torch.cat([f(latent) for f in mlp.lin_z], -1))
    # fp32 rounding order only: outputs reach about 30 here, differences about 1e-5
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(folded, expected, rtol=1e-5, atol=1e-5)


def test_fp32_operands_take_one_config_and_bf16_tunes_over_all():
    from pixelnerf.model.triton_kernels import _prune

    configs = list(range(len(AUTOTUNE_CONFIGS)))
    assert _prune(configs, {}, DTYPE=tl.float32) == configs[:1]
    assert _prune(configs, {}, DTYPE=tl.bfloat16) == configs
