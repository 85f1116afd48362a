"""The ResnetFC forward for inference in fewer elementwise passes (eager PyTorch).

fused_forward -> _Plan (weights in the compute dtype) -> addmm / _addmm_activation.

The same function as ``ResnetFC.forward`` up to rounding order: bias and ReLU of each
block's first layer run inside its matmul (``torch._addmm_activation``), the residual is
accumulated by the second matmul itself (``addmm`` into the running activation, no bias),
and that layer's bias is carried to the next elementwise add (into the next ``lin_z``
layer's own bias where that term is computed per point, so it costs no pass there).
Under autocast the casts are made explicitly with the same dtypes autocast would pick,
so that the running activation keeps the dtype the eager graph gives it (fp32 where fp32
latent terms are added).
"""

from __future__ import annotations

import torch
from torch import nn

from pixelnerf.model.views import reduce_views


def compute_dtype(mlp: nn.Module, device: torch.device) -> torch.dtype:
    """The dtype the matmuls run in: autocast's where it is on for ``device``, else the weights'."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return mlp.lin_in.weight.dtype


class _Plan:
    """Each layer's weights cast to ``dtype`` as it is used (as autocast casts them);
    ``weight(layer)`` is (d_in, d_out), the layout addmm wants."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype

    def weight(self, layer: torch.nn.Linear) -> torch.Tensor:
        return layer.weight.to(self.dtype).t()

    def bias(self, layer: torch.nn.Linear) -> torch.Tensor:
        return layer.bias.to(self.dtype)

    def cast(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(..., d) -> (rows, d), a view where possible."""
    return t.reshape(-1, t.shape[-1])


def _add_pending(h: torch.Tensor, term: torch.Tensor | None, pending: torch.Tensor | None
                 ) -> torch.Tensor:
    """h + term + pending (either may be None) with the dtype promotion of eager adds;
    in place on ``h`` where the result keeps its dtype (``h`` is always this forward's own).
    Neither operand is 0-dim, so the promotion is that of the dtypes: ``promote_types``,
    which ``torch.compile`` folds, where ``result_type`` would split its graph in pieces."""
    for addend in (term, pending):
        if addend is None:
            continue
        if torch.promote_types(h.dtype, addend.dtype) == h.dtype:
            h.add_(addend)
        else:
            h = h + addend
    return h


def fused_forward(
    mlp: nn.Module,
    latent: torch.Tensor | None,
    x: torch.Tensor,
    latent_terms: torch.Tensor | None = None,
) -> torch.Tensor:
    """``ResnetFC.forward`` for inference: same arguments and shapes (``mlp`` a ResnetFC).

    latent: (SB, NS, B, d_latent) or None; x: (SB, NS, B, d_in); latent_terms:
    (SB, NS, B, n_lin_z * d_hidden) or None -> (SB, B, d_out).
    """
    plan = _Plan(compute_dtype(mlp, x.device))
    width = mlp.lin_in.out_features
    lead = x.shape[:-1]  # (SB, NS, B)
    with torch.autocast(x.device.type, enabled=False):
        h = torch.addmm(plan.bias(mlp.lin_in), _rows(plan.cast(x)), plan.weight(mlp.lin_in))
        h = h.reshape(*lead, width)
        folded = None if latent_terms is None else latent_terms.split(width, dim=-1)
        pending: torch.Tensor | None = None  # a bias not yet added to h
        reduced = False
        for index, block in enumerate(mlp.blocks):
            if index == mlp.combine_layer:
                # A per-feature constant commutes with the mean and the max over views.
                h = reduce_views(h, mlp.combine_type)
                reduced = True
            term = None
            if index < len(mlp.lin_z) and folded is not None:
                term = folded[index]
            elif index < len(mlp.lin_z) and latent is not None:
                layer = mlp.lin_z[index]
                bias = plan.bias(layer) if pending is None else plan.bias(layer) + pending
                term = torch.addmm(bias.to(plan.dtype), _rows(plan.cast(latent)),
                                   plan.weight(layer)).reshape(*latent.shape[:-1], width)
                pending = None
            h = _add_pending(h, term, pending)
            h, pending = _block(plan, block, h)
        if not reduced:
            h = reduce_views(_add_pending(h, None, pending), mlp.combine_type)
            pending = None
        h = _add_pending(h, None, pending)
        rows = torch.relu(_rows(h))
        out = torch.addmm(plan.bias(mlp.lin_out), plan.cast(rows), plan.weight(mlp.lin_out))
    return out.reshape(*h.shape[:-1], -1)[:, 0]


def _block(plan: _Plan, block: torch.nn.Module, h: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """One residual block without its last bias: h (..., D) -> (h + fc_1'(relu(fc_0(relu(h)))),
    fc_1's bias, still to be added)."""
    rows = _rows(h)
    hidden = torch._addmm_activation(
        plan.bias(block.fc_0), plan.cast(torch.relu(rows)), plan.weight(block.fc_0)
    )
    if rows.dtype == plan.dtype and rows.is_contiguous():
        rows.addmm_(hidden, plan.weight(block.fc_1))  # the residual accumulated by the matmul
        return h, plan.bias(block.fc_1)
    # A wider running activation (fp32 under bf16): the product rounds to bf16 first, as
    # the eager graph's fc_1 output does, then promotes.
    return (rows + torch.mm(hidden, plan.weight(block.fc_1))).reshape(h.shape), plan.bias(
        block.fc_1
    )
