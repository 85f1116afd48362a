"""The fused Triton MLP kernel without a GPU: its arithmetic in Triton's interpreter (one
program a tile, and the persistent kernel), its compilation for Hopper (sm_90) with the
shared memory each autotune config needs, and the renderer.mlp_kernel setting (resolution
into the plan, self-check, one-line errors)."""

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
from pixelnerf.model.config import MLPConfig
from pixelnerf.model.fused_mlp import fused_forward
from pixelnerf.model.mlp import ResnetFC
from pixelnerf.model.triton_kernels import (
    AUTOTUNE_CONFIGS,
    GROUP_M,
    H100_SHARED_MEMORY_BYTES,
    fused_linear_kernel,
    fused_linear_persistent_kernel,
)
from pixelnerf.render import Renderer

pytestmark = pytest.mark.heavy  # tens of seconds in all: run first (tests/conftest.py)

HELPERS = Path(__file__).resolve().parent.parent / "helpers"
FP32_ATOL = 1e-4
FP16_REL_L2 = 2e-3  # fp16 operands (11-bit mantissa) through 12 layers, fp32 accumulation
HOPPER = GPUTarget("cuda", 90, 32)


@pytest.fixture(scope="module")
def interpreter_results() -> dict:
    """tests/helpers/triton_interpreter.py's JSON: every kernel case and plan in Triton's
    interpreter, in one process of its own (TRITON_INTERPRET must precede the import)."""
    paths = [str(HELPERS.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run([sys.executable, str(HELPERS / "triton_interpreter.py")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def interpreted(interpreter_results) -> dict:
    """The one-program-a-tile kernel in the interpreter."""
    return interpreter_results["tiles"]


@pytest.fixture(scope="module")
def interpreted_persistent(interpreter_results) -> dict:
    """The persistent kernel in the interpreter: 3 programs over the MLP's 4 and 2 tiles;
    one layer of 18 tiles (9 row blocks: a full group and a short one) over 4 programs."""
    return interpreter_results["persistent"]


@pytest.mark.parametrize("case", ["fp32_folded", "fp32_unfolded", "layer_tma",
                                  "layer_pointers", "layer_strided"])
def test_fp32_kernel_matches_the_torch_path_at_the_published_size(interpreted, case):
    assert interpreted[case]["finite"]
    assert interpreted[case]["max_abs"] < FP32_ATOL, interpreted[case]


def test_fp16_kernel_stays_within_fp16_rounding(interpreted):
    result = interpreted["fp16_folded"]
    assert result["finite"] and 0 < result["rel_l2"] < FP16_REL_L2, result


@pytest.mark.parametrize("case", ["fp32_folded", "fp32_unfolded", "layer_tma",
                                  "layer_pointers"])
def test_the_persistent_fp32_kernel_matches_the_torch_path_at_the_published_size(
        interpreted_persistent, case):
    assert interpreted_persistent[case]["finite"]
    assert interpreted_persistent[case]["max_abs"] < FP32_ATOL, interpreted_persistent[case]


def test_the_persistent_fp16_kernel_stays_within_fp16_rounding(interpreted_persistent):
    result = interpreted_persistent["fp16_folded"]
    assert result["finite"] and 0 < result["rel_l2"] < FP16_REL_L2, result


@pytest.mark.parametrize("case", ["layer_tma", "layer_pointers"])
def test_the_persistent_kernel_computes_each_tile_as_the_one_tile_kernel(
        interpreted_persistent, case):
    # the same tile sizes and the one epilogue: the same bits, whichever program did a tile
    assert interpreted_persistent["group_m"] == GROUP_M < 9  # the layer's 9 row blocks
    assert interpreted_persistent[case]["bitwise_equal_to_tiles"]


def hopper_signature(tma: bool, block: tuple[int, int, int], kernel=fused_linear_kernel,
                     lin_z: str = "x2", weights: str = "bf16") -> tuple[dict, dict]:
    """ASTSource signature and constexprs of an fc_1 launch: fp32 activations and residual,
    ``weights`` bf16 (or fp32, with TF32 dots), and the lin_z term as a second operand pair
    (``lin_z`` "x2": the unfolded path, the largest operand set of the one-tile kernel) or
    added in the epilogue ("z": the folded path, where the persistent kernel's tile loop
    is flattened with its one K loop)."""
    block_m, block_n, block_k = block
    unfolded = lin_z == "x2"
    pointers = {"x_ptr": "*fp32", "w_ptr": f"*{weights}", "bias_ptr": "*fp32",
                "res_ptr": "*fp32", "out_ptr": "*fp32"}
    descriptors = {"x_desc": f"tensordesc<fp32[{block_m}, {block_k}]>",
                   "w_desc": f"tensordesc<{weights}[{block_k}, {block_n}]>"}
    if unfolded:
        pointers.update(x2_ptr="*fp32", w2_ptr=f"*{weights}")
        descriptors.update(x2_desc=f"tensordesc<fp32[{block_m}, {block_k}]>",
                           w2_desc=f"tensordesc<{weights}[{block_k}, {block_n}]>")
    else:
        pointers["z_ptr"] = "*fp32"
    constexprs = dict(RELU_IN=False, RELU_OUT=False, HAS_X2=unfolded, HAS_RES=True,
                      HAS_Z=not unfolded, DTYPE=tl.float32 if weights == "fp32" else tl.bfloat16,
                      DOT_PRECISION="tf32" if weights == "fp32" else "ieee", USE_TMA=tma,
                      BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k,
                      NUM_SMS=132, GROUP_M=GROUP_M)  # an H200's multiprocessors
    signature = {}
    for name in kernel.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name in descriptors and tma:
            signature[name] = descriptors[name]
        elif name in pointers and not (tma and name[:-4] + "_desc" in descriptors):
            signature[name] = pointers[name]
        elif name.endswith(("_ptr", "_desc")):
            signature[name] = "constexpr"
            constexprs[name] = None
        else:
            signature[name] = "i32"
    constexprs = {name: value for name, value in constexprs.items() if name in signature}
    return signature, constexprs


def compile_for_hopper(kernel, signature: dict, constexprs: dict, warps: int, stages: int):
    source = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
    return triton.compile(source, target=HOPPER,
                          options={"num_warps": warps, "num_stages": stages})


@pytest.mark.parametrize("config", AUTOTUNE_CONFIGS, ids=lambda c: "x".join(map(str, c)))
def test_every_autotune_config_compiles_for_hopper_within_its_shared_memory(config):
    block_m, block_n, block_k, warps, stages = config
    signature, constexprs = hopper_signature(True, (block_m, block_n, block_k))
    kernel = compile_for_hopper(fused_linear_kernel, signature, constexprs, warps, stages)
    assert 0 < kernel.metadata.shared <= H100_SHARED_MEMORY_BYTES, kernel.metadata.shared
    assert "wgmma" in kernel.asm["ptx"]  # Hopper's warpgroup matrix instructions
    assert "cp.async.bulk.tensor" in kernel.asm["ptx"]  # the tensor-descriptor (TMA) loads


# The persistent kernel with the folded term (its tile loop is flattened with the K loop,
# which holds the most shared memory) at the largest tile, and at the one config fp32
# operands take (it has no other); unfolded (two K loops, not flattened) at the first.
# Another bf16 config that overflowed would cost tuning time only: the autotuner skips a
# config that runs out of resources.
PERSISTENT_CASES = [(AUTOTUNE_CONFIGS[1], "z", "bf16"), (AUTOTUNE_CONFIGS[0], "z", "fp32"),
                    (AUTOTUNE_CONFIGS[0], "x2", "bf16")]


@pytest.mark.parametrize("config,lin_z,weights", PERSISTENT_CASES,
                         ids=lambda c: "x".join(map(str, c)) if isinstance(c, tuple) else c)
def test_the_persistent_kernel_compiles_for_hopper_within_its_shared_memory(
        config, lin_z, weights):
    block_m, block_n, block_k, warps, stages = config
    signature, constexprs = hopper_signature(True, (block_m, block_n, block_k),
                                             fused_linear_persistent_kernel, lin_z, weights)
    kernel = compile_for_hopper(fused_linear_persistent_kernel, signature, constexprs, warps,
                                stages)
    assert 0 < kernel.metadata.shared <= H100_SHARED_MEMORY_BYTES, kernel.metadata.shared
    assert "wgmma" in kernel.asm["ptx"] and "cp.async.bulk.tensor" in kernel.asm["ptx"]
    # one loop over this program's tiles, stepping by the program count
    assert f"step %c{constexprs['NUM_SMS']}_i32" in kernel.asm["ttgir"]


def test_the_pointer_path_compiles_for_hopper_too():
    signature, constexprs = hopper_signature(False, AUTOTUNE_CONFIGS[0][:3])
    kernel = compile_for_hopper(fused_linear_kernel, signature, constexprs, 8, 3)
    assert 0 < kernel.metadata.shared <= H100_SHARED_MEMORY_BYTES
    assert "cp.async.bulk.tensor" not in kernel.asm["ptx"]


def small_mlp(backend=None) -> ResnetFC:
    return ResnetFC(d_in=5, d_latent=8, d_out=4, n_blocks=3, d_hidden=32, combine_layer=2,
                    backend=backend).eval()


def small_config(width: int = 32, kind: str = "resnet") -> MLPConfig:
    return MLPConfig(type=kind, n_blocks=3, d_hidden=width, combine_layer=2)


def test_torch_and_published_are_taken_as_asked():
    for kernel in ("torch", "published"):
        assert MK.resolve_mlp_kernel(kernel, [small_config()], torch.device("cpu")) == kernel


def test_auto_takes_the_torch_path_on_every_device_without_a_check(monkeypatch):
    def no_check(*args):
        raise AssertionError("auto ran the Triton self-check")

    monkeypatch.setattr(MK, "self_check", no_check)
    monkeypatch.setattr(MK, "triton_unavailable", no_check)
    for device in ("cpu", "cuda"):
        assert MK.resolve_mlp_kernel("auto", [small_config()], torch.device(device)) == "torch"


@pytest.mark.parametrize("kernel", MK.TRITON_KERNELS)
def test_triton_without_a_gpu_or_the_interpreter_is_one_error(monkeypatch, kernel):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(PipelineError,
                       match=rf"^renderer.mlp_kernel: {kernel} needs a CUDA device"):
        MK.resolve_mlp_kernel(kernel, [small_config()], torch.device("cpu"))


def test_triton_on_an_unsupported_width_is_one_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(PipelineError, match="d_hidden a multiple of 16, not 40"):
        MK.resolve_mlp_kernel("triton", [small_config(width=40)], torch.device("cpu"))


def test_triton_on_the_plain_mlp_is_one_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(PipelineError, match="type resnet only, not mlp"):
        MK.resolve_mlp_kernel("triton", [small_config(kind="mlp")], torch.device("cpu"))


@pytest.mark.parametrize("kernel", MK.TRITON_KERNELS)
def test_a_failed_self_check_stops_a_triton_kernel(monkeypatch, kernel):
    cuda = torch.device("cuda")
    checked = []
    monkeypatch.setattr(MK, "triton_unavailable", lambda device, mlps: None)
    monkeypatch.setattr(MK, "self_check", lambda name, mlps, device: checked.append(name)
                        or "differs from the torch path")
    with pytest.raises(PipelineError, match=f"^renderer.mlp_kernel: {kernel} differs"):
        MK.resolve_mlp_kernel(kernel, [small_config()], cuda)
    monkeypatch.setattr(MK, "self_check", lambda name, mlps, device: checked.append(name))
    assert MK.resolve_mlp_kernel(kernel, [small_config()], cuda) == kernel
    assert checked == [kernel, kernel]


def test_the_self_check_catches_a_wrong_kernel(monkeypatch):
    import pixelnerf.model.triton_mlp as TM

    monkeypatch.setattr(TM, "triton_forward", lambda mlp, latent, x, terms=None,
                        persistent=False: torch.zeros(1, x.shape[2], 4))
    reason = MK.self_check("triton", [small_config()], torch.device("cpu"))
    assert reason is not None and "differs from the torch path" in reason


def test_the_self_check_passes_the_torch_path_itself(monkeypatch):
    import pixelnerf.model.triton_mlp as TM

    monkeypatch.setattr(TM, "triton_forward", lambda mlp, latent, x, terms=None,
                        persistent=False: fused_forward(mlp, latent, x, terms))
    assert MK.self_check("triton-persistent", [small_config()], torch.device("cpu")) is None


def test_an_unknown_kernel_is_one_error_naming_the_key():
    with pytest.raises(PipelineError, match="renderer.mlp_kernel must be one of"):
        Renderer.from_config({"mlp_kernel": "cuda"})
    assert Renderer.from_config({}).config.mlp_kernel == "auto"


def test_the_fused_torch_path_equals_the_published_graph():
    torch.manual_seed(3)
    published = small_mlp()
    with torch.no_grad():
        for p in published.parameters():
            p.normal_(0.0, 0.3)
        fused = small_mlp(backend=fused_forward)
        fused.load_state_dict(published.state_dict())
        x, latent = torch.randn(2, 3, 50, 5), torch.randn(2, 3, 50, 8)
        expected = published(latent, x)
        got = fused(latent, x)
        folded = fused(None, x, latent_terms=torch.cat([f(latent) for f in fused.lin_z], -1))
    # fp32 rounding order only: outputs reach about 30 here, differences about 1e-5
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(folded, expected, rtol=1e-5, atol=1e-5)
    assert not torch.equal(got, expected)  # the backend ran, not the published graph
    with torch.enable_grad():  # with gradients the published graph runs, backend or not
        assert torch.equal(fused(latent, x), expected)


def test_fp32_operands_take_one_config_and_bf16_tunes_over_all():
    from pixelnerf.model.triton_kernels import _prune

    configs = list(range(len(AUTOTUNE_CONFIGS)))
    assert _prune(configs, {}, DTYPE=tl.float32) == configs[:1]
    assert _prune(configs, {}, DTYPE=tl.bfloat16) == configs


@pytest.mark.parametrize("kernel", MK.TRITON_KERNELS)
def test_a_plan_naming_a_triton_kernel_self_checks_and_renders_in_the_interpreter(
        interpreter_results, kernel):
    """The plan's self-check passes, and a model built with the plan renders what the torch
    path renders."""
    result = interpreter_results["plans"][kernel]
    assert result["kernel"] == kernel
    assert result["max_abs"] < FP32_ATOL, result
