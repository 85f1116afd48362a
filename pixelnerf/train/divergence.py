"""Stop a diverging run before it spoils anything.

``check_step`` runs between ``backward`` and ``optimizer.step``: a non-finite loss or gradient
stops training with one line naming the step, before the update, so the parameters (and the
checkpoints written from them) stay those of the last good step; ``check_weights`` is the
last guard before a checkpoint is written, so a non-finite model never replaces a good one.
"""

from __future__ import annotations

import math

import torch

from pixelnerf.errors import PipelineError

_ADVICE = "the last good checkpoint is kept; lower train.lr or use fp32, then run again"


def _first_nonfinite(named: dict[str, torch.Tensor]) -> str | None:
    """The name of the first tensor holding a NaN or infinity (a slow path, failures only)."""
    for name, tensor in named.items():
        if not bool(torch.isfinite(tensor).all()):
            return name
    return None


def check_step(step: int, loss: torch.Tensor, model: torch.nn.Module) -> None:
    """Raise one :class:`PipelineError` line when ``loss`` (0-dim) or a gradient is not finite.

    ``step`` is the 0-based step being taken. One reduction over all gradients (a single
    device synchronisation) in the good case.
    """
    value = float(loss.detach().float())
    if not math.isfinite(value):
        raise PipelineError(f"training diverged at step {step}: the loss is {value}; {_ADVICE}")
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    if not grads:
        return
    norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g.detach().float()) for g in grads.values()]))
    if not math.isfinite(float(norm)):
        # The norm of finite values can overflow; name a parameter only where one is at fault.
        name = _first_nonfinite(grads)
        where = f"the gradient of {name}" if name else "the gradient norm"
        raise PipelineError(f"training diverged at step {step}: {where} is not finite; {_ADVICE}")


def check_weights(step: int, model: torch.nn.Module) -> None:
    """Raise one :class:`PipelineError` line when a parameter or buffer is not finite."""
    state = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    name = _first_nonfinite(state)
    if name is not None:
        raise PipelineError(f"training diverged by step {step}: {name} is not finite and is "
                            f"not saved; {_ADVICE}")
