"""Zero-reference pretraining of a low-light enhancer on low-light images alone (notebook 04).

The networks are :mod:`lowlight.models.llie`; the losses :mod:`lowlight.losses.zero_reference`.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn as nn

from ..losses.zero_reference import ZeroReferenceLoss

__all__ = ["pretrain_llie"]


def pretrain_llie(model: nn.Module, batches, steps: int, lr: float = 1e-3, device=None,
                  loss: ZeroReferenceLoss | None = None, grad_clip: float = 1.0, log_every: int = 10):
    """Zero-reference pretraining of an LLIE on low-light images alone (notebook 04).

    ``model`` must have ``forward_with_map(x) -> (enhanced, map)`` (``ZeroDCEpp``,
    ``IlluminationEnhancer``): the map feeds the smoothness term. ``batches`` is an
    iterable (cycled) of N x 3 x H x W tensors in [0, 1], or of dicts with an ``"image"``
    entry, or one tensor (used every step). Returns the history: a list of dicts (step,
    total, each term, ``mean_out``). Raises ``FloatingPointError`` naming the step if the
    loss stops being finite. The model is left in eval mode.
    """
    if not callable(getattr(model, "forward_with_map", None)):
        raise TypeError(f"pretrain_llie: {type(model).__name__} has no forward_with_map(x) -> (enhanced, map); "
                        "use a network of lowlight.models.llie (ZeroDCEpp, IlluminationEnhancer)")
    device = torch.device(device or "cpu")
    loss = loss or ZeroReferenceLoss()
    model.to(device).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    history = []
    it = itertools.cycle(batches) if not isinstance(batches, torch.Tensor) else itertools.repeat(batches)
    for step in range(1, steps + 1):
        batch = next(it)
        x = (batch["image"] if isinstance(batch, dict) else batch).to(device)
        enhanced, curve = model.forward_with_map(x)
        total, terms = loss(enhanced, x, curve)
        if not torch.isfinite(total):
            raise FloatingPointError(f"pretrain_llie: loss is {total.item()} at step {step}; terms {terms}")
        opt.zero_grad(set_to_none=True)
        total.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        if step == 1 or step % log_every == 0 or step == steps:
            history.append({"step": step, "total": float(total.detach()), **terms,
                            "mean_out": float(enhanced.detach().mean())})
    model.eval()
    return history
