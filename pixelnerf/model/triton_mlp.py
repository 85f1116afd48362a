"""The ResnetFC forward for inference through the fused Triton GEMM, one launch per layer.

triton_forward -> prepared_weights -> triton_kernels.fused_linear (per layer).

Per block two launches: ``fc_0`` with the block's ReLU applied to its input tile and bias
and ReLU in its epilogue (output in the compute dtype), and ``fc_1`` with bias, residual
and the next block's ``lin_z`` term in its epilogue (output fp32: the running activation
stays fp32, as under autocast with folded terms). The ``lin_z`` terms are either sampled
from the folded map (added in the epilogue) or, unfolded, computed by the same launch as a
second operand pair (K = d_hidden + d_latent against [W1; Wz]). Layers are not fused with
each other: at 512 wide a layer's weights alone fill a multiprocessor's shared memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pixelnerf.errors import PipelineError
from pixelnerf.model.fused_mlp import compute_dtype
from pixelnerf.model.triton_kernels import TRITON_DTYPES, fused_linear
from pixelnerf.model.views import reduce_views

TILE = 16  # the smallest tile side tl.dot takes: the width must be a multiple of it


@dataclass(frozen=True)
class PreparedWeights:
    """The MLP's weights transposed to (K, N), contiguous, in the compute dtype; biases fp32."""

    key: tuple
    w: dict[str, torch.Tensor]
    b: dict[str, torch.Tensor]


def _layers(mlp: nn.Module) -> dict[str, torch.nn.Linear]:
    layers = {"lin_in": mlp.lin_in, "lin_out": mlp.lin_out}
    for i, block in enumerate(mlp.blocks):
        layers[f"fc_0.{i}"], layers[f"fc_1.{i}"] = block.fc_0, block.fc_1
    for i, layer in enumerate(mlp.lin_z):
        layers[f"lin_z.{i}"] = layer
    return layers


def prepared_weights(mlp: nn.Module, dtype: torch.dtype) -> PreparedWeights:
    """Made once per dtype and kept on the module until a parameter changes (its version)."""
    key = (dtype, *((p.data_ptr(), p._version) for p in mlp.parameters()))
    cache = mlp.__dict__.setdefault("_triton_weights", {})
    if dtype in cache and cache[dtype].key == key:
        return cache[dtype]
    layers = _layers(mlp)
    prepared = PreparedWeights(
        key,
        {name: layer.weight.detach().t().to(dtype).contiguous() for name, layer in layers.items()},
        {name: layer.bias.detach().float().contiguous() for name, layer in layers.items()},
    )
    cache[dtype] = prepared
    return prepared


def triton_forward(
    mlp: nn.Module,
    latent: torch.Tensor | None,
    x: torch.Tensor,
    latent_terms: torch.Tensor | None = None,
    persistent: bool = False,
) -> torch.Tensor:
    """``ResnetFC.forward`` for inference: same arguments and shapes (``mlp`` a ResnetFC).

    latent: (SB, NS, B, d_latent) or None; x: (SB, NS, B, d_in); latent_terms:
    (SB, NS, B, n_lin_z * d_hidden) or None -> (SB, B, d_out) fp32. The compute dtype is
    autocast's where it is on, else fp32; fp32 uses TF32 where CUDA's matmul switch allows it.
    ``persistent``: every layer through the persistent GEMM (``fused_linear``): the plan's
    kernel ``triton-persistent``; ``triton`` is one program a tile.
    """
    width = mlp.lin_in.out_features
    if width % TILE:
        raise PipelineError(f"renderer.mlp_kernel: triton needs model.mlp_*.d_hidden a "
                            f"multiple of {TILE}, not {width}")
    dtype = compute_dtype(mlp, x.device)
    if dtype not in TRITON_DTYPES:
        raise PipelineError(f"renderer.mlp_kernel: triton computes fp32, fp16 or bf16, not {dtype}")
    tf32 = dtype == torch.float32 and x.is_cuda and torch.backends.cuda.matmul.allow_tf32
    precision = "tf32" if tf32 else "ieee"
    weights = prepared_weights(mlp, dtype)
    lead = x.shape[:-1]
    n_z = len(mlp.lin_z)
    terms = None
    if latent_terms is not None and n_z:
        rows = latent_terms.reshape(-1, latent_terms.shape[-1])
        terms = [rows[:, i * width:(i + 1) * width] for i in range(n_z)]
    latent_rows = latent.reshape(-1, latent.shape[-1]) if latent is not None and n_z else None

    def injection(index: int, bias: str) -> dict:
        """The ``lin_z[index]`` term for a launch whose own bias is ``bias``."""
        if index >= n_z or (terms is None and latent_rows is None):
            return {"bias": weights.b[bias]}
        if terms is not None:
            return {"bias": weights.b[bias], "z": terms[index]}
        return {"bias": weights.b[bias] + weights.b[f"lin_z.{index}"], "x2": latent_rows,
                "w2_t": weights.w[f"lin_z.{index}"]}

    def linear(inputs: torch.Tensor, name: str, out_dtype: torch.dtype, **extra
               ) -> torch.Tensor:
        extra.setdefault("bias", weights.b[name])
        return fused_linear(inputs, weights.w[name], out_dtype=out_dtype,
                            dot_precision=precision, persistent=persistent, **extra)

    h = linear(x.reshape(-1, x.shape[-1]), "lin_in", torch.float32, **injection(0, "lin_in"))
    reduced = False
    for index in range(mlp.n_blocks):
        if index == mlp.combine_layer:
            h = reduce_views(h.reshape(*lead, width), mlp.combine_type).reshape(-1, width)
            lead = (lead[0], 1, lead[2])
            reduced = True
        hidden = linear(h, f"fc_0.{index}", dtype, relu_in=True, relu_out=True)
        h = linear(hidden, f"fc_1.{index}", torch.float32, res=h,
                   **injection(index + 1, f"fc_1.{index}"))
    if not reduced:
        h = reduce_views(h.reshape(*lead, width), mlp.combine_type).reshape(-1, width)
        lead = (lead[0], 1, lead[2])
    out = linear(h, "lin_out", torch.float32, relu_in=True)
    return out.reshape(*lead, -1)[:, 0]
