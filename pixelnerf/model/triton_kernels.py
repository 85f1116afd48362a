"""A Triton GEMM with the ResnetFC's elementwise work fused: ``out = act(pre(X1) W1 + X2 W2 +
bias + res + z)``, cast to the output's dtype.

fused_linear -> fused_linear_kernel (one program a tile) or fused_linear_persistent_kernel
(one program a multiprocessor, looping over tiles); each autotuned on GPU, one fixed config
in the interpreter -> _linear_tile -> _accumulate (K loop over tensor descriptors or plain
pointers), _epilogue (bias, residual, lin_z term, ReLU, cast, store).

``pre`` is an optional ReLU of X1 (the block's first ReLU, applied to the tile as it is
loaded), ``act`` an optional ReLU of the result. The second operand pair (X2, W2) is the
published ``lin_z`` of the unfolded path: one GEMM over K = K1 + K2 against [W1; W2]
without building the concatenated input. Operands are cast to ``DTYPE`` (a constexpr:
fp32, fp16 or bf16) just before the dot; accumulation is always fp32. Weights come
transposed, (K, N) contiguous, already in ``DTYPE``.
"""

from __future__ import annotations

import inspect

import torch
import triton
import triton.language as tl

from pixelnerf.device import triton_interpreting

try:  # host-side tensor descriptors (TMA on Hopper): Triton 3.4 and later
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # pragma: no cover - older Triton: the pointer path only
    TensorDescriptor = None

TRITON_DTYPES = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16}
# (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages), shared by both kernels. Each fits
# Hopper's shared memory with fp32 activations and fp32 weights, the largest operands the
# kernel takes (a test compiles every one for sm_90 and checks; for the persistent kernel,
# whose flattened loop needs more, the largest tile and the one config fp32 takes).
AUTOTUNE_CONFIGS = (
    (128, 128, 32, 8, 3),
    (128, 256, 32, 8, 3),
    (64, 256, 32, 4, 4),
    (128, 128, 64, 8, 3),
    (64, 128, 64, 4, 4),
)
INTERPRETER_CONFIG = (128, 256, 128, 4, 1)  # large tiles: the interpreter pays per tile step
# The persistent kernel's programs in the interpreter: any count computes the same; 3 does
# not divide the tile counts of power-of-two row counts, so a program's share is uneven.
INTERPRETER_PROGRAMS = 3
GROUP_M = 8  # row blocks a group of the persistent kernel's tile order
# Row counts share one tuning from here up (every chunk of a render is at least this big).
LARGEST_M_BUCKET = 1 << 16
H100_SHARED_MEMORY_BYTES = 232448  # per block on Hopper (227 KiB)


@triton.jit
def _accumulate(acc, x_ptr, x_desc, w_ptr, w_desc, stride_xm, off_m, off_n, M, N, K,
                RELU_IN: tl.constexpr, DTYPE: tl.constexpr, DOT_PRECISION: tl.constexpr,
                USE_TMA: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                BLOCK_K: tl.constexpr):
    """acc (BLOCK_M, BLOCK_N) fp32 += pre(X[off_m:, :K]) @ W[:K, off_n:]."""
    offs_m = off_m + tl.arange(0, BLOCK_M)
    offs_n = off_n + tl.arange(0, BLOCK_N)
    for k in range(0, K, BLOCK_K):
        if USE_TMA:
            a = x_desc.load([off_m, k])
            b = w_desc.load([k, off_n])
        else:
            offs_k = k + tl.arange(0, BLOCK_K)
            a = tl.load(x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :],
                        mask=(offs_m[:, None] < M) & (offs_k[None, :] < K), other=0.0)
            b = tl.load(w_ptr + offs_k[:, None] * N + offs_n[None, :],
                        mask=(offs_k[:, None] < K) & (offs_n[None, :] < N), other=0.0)
        if RELU_IN:
            a = tl.maximum(a, 0.0)
        acc = tl.dot(a.to(DTYPE), b.to(DTYPE), acc, input_precision=DOT_PRECISION)
    return acc


@triton.jit
def _tile_offsets(tile, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                  GROUP_M: tl.constexpr):
    """(off_m, off_n) of output tile number ``tile``: tiles go GROUP_M row blocks at a time,
    down the rows of the group and then across its columns, so that tiles running at the
    same time share X rows and W columns in L2. GROUP_M 1: the columns of one row block
    next to each other."""
    num_m = tl.cdiv(M, BLOCK_M)
    tiles_per_group = GROUP_M * tl.cdiv(N, BLOCK_N)
    first_m = (tile // tiles_per_group) * GROUP_M
    rows = tl.minimum(num_m - first_m, GROUP_M)  # the last group can be short
    in_group = tile % tiles_per_group
    return (first_m + in_group % rows) * BLOCK_M, (in_group // rows) * BLOCK_N


@triton.jit
def _epilogue(acc, off_m, off_n, M, N, bias_ptr, res_ptr, z_ptr, out_ptr,
              stride_rm, stride_zm, stride_om, RELU_OUT: tl.constexpr, HAS_RES: tl.constexpr,
              HAS_Z: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """out[off_m:, off_n:] = act(acc + bias + res + z), cast to out's dtype (masked at the
    edges of out (M, N))."""
    offs_m = off_m + tl.arange(0, BLOCK_M)
    offs_n = off_n + tl.arange(0, BLOCK_N)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    acc += tl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)[None, :]
    if HAS_RES:
        acc += tl.load(res_ptr + offs_m[:, None] * stride_rm + offs_n[None, :], mask=mask,
                       other=0.0).to(tl.float32)
    if HAS_Z:
        acc += tl.load(z_ptr + offs_m[:, None] * stride_zm + offs_n[None, :], mask=mask,
                       other=0.0).to(tl.float32)
    if RELU_OUT:
        acc = tl.maximum(acc, 0.0)
    tl.store(out_ptr + offs_m[:, None] * stride_om + offs_n[None, :],
             acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _linear_tile(
    off_m, off_n, x_ptr, x_desc, w_ptr, w_desc, x2_ptr, x2_desc, w2_ptr, w2_desc,
    bias_ptr, res_ptr, z_ptr, out_ptr, M, N, K, K2,
    stride_xm, stride_x2m, stride_rm, stride_zm, stride_om,
    RELU_IN: tl.constexpr, RELU_OUT: tl.constexpr, HAS_X2: tl.constexpr,
    HAS_RES: tl.constexpr, HAS_Z: tl.constexpr, DTYPE: tl.constexpr,
    DOT_PRECISION: tl.constexpr, USE_TMA: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """The (BLOCK_M, BLOCK_N) tile of out at (off_m, off_n): both K loops, then the epilogue."""
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc = _accumulate(acc, x_ptr, x_desc, w_ptr, w_desc, stride_xm, off_m, off_n, M, N, K,
                      RELU_IN, DTYPE, DOT_PRECISION, USE_TMA, BLOCK_M, BLOCK_N, BLOCK_K)
    if HAS_X2:
        acc = _accumulate(acc, x2_ptr, x2_desc, w2_ptr, w2_desc, stride_x2m, off_m, off_n, M,
                          N, K2, False, DTYPE, DOT_PRECISION, USE_TMA, BLOCK_M, BLOCK_N,
                          BLOCK_K)
    _epilogue(acc, off_m, off_n, M, N, bias_ptr, res_ptr, z_ptr, out_ptr, stride_rm,
              stride_zm, stride_om, RELU_OUT, HAS_RES, HAS_Z, BLOCK_M, BLOCK_N)


@triton.jit
def fused_linear_kernel(
    x_ptr, x_desc, w_ptr, w_desc, x2_ptr, x2_desc, w2_ptr, w2_desc,
    bias_ptr, res_ptr, z_ptr, out_ptr,
    M, N, K, K2, M_BUCKET,
    stride_xm, stride_x2m, stride_rm, stride_zm, stride_om,
    RELU_IN: tl.constexpr, RELU_OUT: tl.constexpr, HAS_X2: tl.constexpr,
    HAS_RES: tl.constexpr, HAS_Z: tl.constexpr, DTYPE: tl.constexpr,
    DOT_PRECISION: tl.constexpr, USE_TMA: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """One (BLOCK_M, BLOCK_N) tile of out (M, N) a program, one program a tile; column
    tiles of a row block run next to each other so that its X rows are read from L2.
    ``M_BUCKET`` only keys the autotuner."""
    off_m, off_n = _tile_offsets(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, 1)
    _linear_tile(off_m, off_n, x_ptr, x_desc, w_ptr, w_desc, x2_ptr, x2_desc, w2_ptr,
                 w2_desc, bias_ptr, res_ptr, z_ptr, out_ptr, M, N, K, K2,
                 stride_xm, stride_x2m, stride_rm, stride_zm, stride_om,
                 RELU_IN, RELU_OUT, HAS_X2, HAS_RES, HAS_Z, DTYPE, DOT_PRECISION, USE_TMA,
                 BLOCK_M, BLOCK_N, BLOCK_K)


@triton.jit
def fused_linear_persistent_kernel(
    x_ptr, x_desc, w_ptr, w_desc, x2_ptr, x2_desc, w2_ptr, w2_desc,
    bias_ptr, res_ptr, z_ptr, out_ptr,
    M, N, K, K2, M_BUCKET,
    stride_xm, stride_x2m, stride_rm, stride_zm, stride_om,
    RELU_IN: tl.constexpr, RELU_OUT: tl.constexpr, HAS_X2: tl.constexpr,
    HAS_RES: tl.constexpr, HAS_Z: tl.constexpr, DTYPE: tl.constexpr,
    DOT_PRECISION: tl.constexpr, USE_TMA: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    NUM_SMS: tl.constexpr, GROUP_M: tl.constexpr,
):
    """The same tiles from at most NUM_SMS programs, each looping over tiles pid,
    pid + NUM_SMS, ... in grouped order; the tensor descriptors are made once on the host
    and serve every tile. The tile loop is flattened with the K loops so that the compiler
    can pipeline the next tile's loads across this tile's epilogue."""
    num_tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
    for tile in tl.range(tl.program_id(0), num_tiles, NUM_SMS, flatten=True):
        off_m, off_n = _tile_offsets(tile, M, N, BLOCK_M, BLOCK_N, GROUP_M)
        _linear_tile(off_m, off_n, x_ptr, x_desc, w_ptr, w_desc, x2_ptr, x2_desc, w2_ptr,
                     w2_desc, bias_ptr, res_ptr, z_ptr, out_ptr, M, N, K, K2,
                     stride_xm, stride_x2m, stride_rm, stride_zm, stride_om,
                     RELU_IN, RELU_OUT, HAS_X2, HAS_RES, HAS_Z, DTYPE, DOT_PRECISION,
                     USE_TMA, BLOCK_M, BLOCK_N, BLOCK_K)


_DESCRIPTORS = (("x_desc", "BLOCK_M", "BLOCK_K"), ("w_desc", "BLOCK_K", "BLOCK_N"),
                ("x2_desc", "BLOCK_M", "BLOCK_K"), ("w2_desc", "BLOCK_K", "BLOCK_N"))


def _set_block_shapes(nargs: dict) -> None:
    """Autotune pre-hook: each descriptor's block is the config's tile."""
    for name, rows, cols in _DESCRIPTORS:
        if nargs.get(name) is not None:
            nargs[name].block_shape = [nargs[rows], nargs[cols]]


def _config(block_m: int, block_n: int, block_k: int, warps: int, stages: int
            ) -> triton.Config:
    return triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n, "BLOCK_K": block_k},
                         num_warps=warps, num_stages=stages, pre_hook=_set_block_shapes)


# Tuning results kept on disk where this Triton can (3.2 and later): a render process
# then skips the benchmarking the previous one did.
_CACHE = {"cache_results": True} if "cache_results" in inspect.signature(
    triton.autotune).parameters else {}


def _prune(configs: list, named_args: dict, **kwargs) -> list:
    """fp32 operands (the fp32 and TF32 precisions) take the first config alone: their
    compilation is slow and the default precision on GPUs is bf16."""
    dtype = {**named_args, **kwargs}.get("DTYPE")
    return configs[:1] if dtype == tl.float32 else configs


def _autotuned(kernel: triton.JITFunction, *extra_key: str) -> triton.runtime.Autotuner:
    """``kernel`` tuned over AUTOTUNE_CONFIGS, once per shape and variant."""
    return triton.autotune(
        configs=[_config(*c) for c in AUTOTUNE_CONFIGS],
        prune_configs_by={"early_config_prune": _prune},
        key=["M_BUCKET", "N", "K", "K2", "RELU_IN", "RELU_OUT", "HAS_X2", "HAS_RES", "HAS_Z",
             "DTYPE", "DOT_PRECISION", "USE_TMA", *extra_key],
        **_CACHE,
    )(kernel)


_TUNED = {False: _autotuned(fused_linear_kernel),
          True: _autotuned(fused_linear_persistent_kernel, "NUM_SMS", "GROUP_M")}


def program_count(device: torch.device) -> int:
    """Programs of the persistent kernel: one per multiprocessor on CUDA; in the
    interpreter (programs run one after another) INTERPRETER_PROGRAMS."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return INTERPRETER_PROGRAMS


def tma_supported(*tensors: torch.Tensor | None) -> bool:
    """Tensor descriptors pay on Hopper and later; each 2-D operand needs 16-byte aligned
    rows and base, unit column stride."""
    if TensorDescriptor is None or not all(t is None or t.is_cuda for t in tensors):
        return False
    if torch.cuda.get_device_capability(next(t for t in tensors if t is not None).device)[0] < 9:
        return False
    for t in tensors:
        if t is None:
            continue
        if t.stride(-1) != 1 or (t.stride(0) * t.element_size()) % 16 or t.data_ptr() % 16:
            return False
    return True


def fused_linear(
    x: torch.Tensor,
    w_t: torch.Tensor,
    bias: torch.Tensor,
    out_dtype: torch.dtype,
    relu_in: bool = False,
    relu_out: bool = False,
    res: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    x2: torch.Tensor | None = None,
    w2_t: torch.Tensor | None = None,
    dot_precision: str = "ieee",
    use_tma: bool | None = None,
    persistent: bool = False,
    num_sms: int | None = None,
) -> torch.Tensor:
    """x: (M, K) rows; w_t: (K, N) contiguous in the compute dtype;
    bias: (N,); res, z: (M, N) rows or None; x2: (M, K2) with w2_t (K2, N), or None
    -> (M, N) in ``out_dtype``. ``use_tma`` None: descriptors wherever they are supported.
    ``persistent``: at most ``num_sms`` programs (None: ``program_count``) loop over the
    tiles, instead of one program a tile; the same arithmetic either way."""
    # The loads step along columns one element at a time: rows must have unit column
    # stride (a sampled feature map can come transposed).
    x, x2, res, z = (t if t is None or t.stride(-1) == 1 else t.contiguous()
                     for t in (x, x2, res, z))
    M, K = x.shape
    N = w_t.shape[1]
    dtype = TRITON_DTYPES[w_t.dtype]
    out = torch.empty((M, N), dtype=out_dtype, device=x.device)
    if M == 0:
        return out
    tma = tma_supported(x, w_t, x2, w2_t) if use_tma is None else use_tma
    args = dict(
        x_ptr=x, x_desc=None, w_ptr=w_t, w_desc=None, x2_ptr=x2, x2_desc=None,
        w2_ptr=w2_t, w2_desc=None, bias_ptr=bias, res_ptr=res, z_ptr=z, out_ptr=out,
        M=M, N=N, K=K, K2=0 if x2 is None else x2.shape[1],
        M_BUCKET=min(max(16, triton.next_power_of_2(M)), LARGEST_M_BUCKET),
        stride_xm=x.stride(0), stride_x2m=0 if x2 is None else x2.stride(0),
        stride_rm=0 if res is None else res.stride(0), stride_zm=0 if z is None else z.stride(0),
        stride_om=out.stride(0),
        RELU_IN=relu_in, RELU_OUT=relu_out, HAS_X2=x2 is not None, HAS_RES=res is not None,
        HAS_Z=z is not None, DTYPE=dtype, DOT_PRECISION=dot_precision, USE_TMA=tma,
    )
    if tma:
        # Placeholder blocks; the autotune pre-hook or the fixed config sets the real ones.
        for name, tensor in (("x_desc", x), ("w_desc", w_t), ("x2_desc", x2), ("w2_desc", w2_t)):
            if tensor is not None:
                args[name] = TensorDescriptor.from_tensor(tensor, [16, 16])
    if persistent:
        args.update(NUM_SMS=program_count(x.device) if num_sms is None else num_sms,
                    GROUP_M=GROUP_M)

    def grid(meta: dict) -> tuple[int]:
        tiles = triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"])
        return (min(tiles, meta["NUM_SMS"]) if persistent else tiles,)

    if triton_interpreting() or not x.is_cuda:
        block_m, block_n, block_k, warps, stages = INTERPRETER_CONFIG
        meta = {"BLOCK_M": block_m, "BLOCK_N": block_n, "BLOCK_K": block_k}
        _set_block_shapes({**args, **meta})
        kernel = fused_linear_persistent_kernel if persistent else fused_linear_kernel
        kernel[grid({**args, **meta})](**args, **meta, num_warps=warps, num_stages=stages)
        return out
    _TUNED[persistent][grid](**args)
    return out
