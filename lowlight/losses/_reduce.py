"""Input checks, masks and reductions shared by every matting loss term (notebook 05).

Private: the conventions they implement are documented once, in :mod:`lowlight.losses`.
A term is written as a ``_<name>_terms(pred, target, valid, weight, **options)`` function
returning ``(per-sample means, per-sample weight sums)``; :func:`_finish` turns that pair
into the ``reduction`` the caller asked for, and :class:`~lowlight.losses.MattingLoss`
pools the same pairs with per-sample weights.
"""
from __future__ import annotations

import torch

_TINY = 1e-12


def _check_pair(pred, target, fn: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``pred``/``target`` and return them in a common float dtype (>= float32)."""
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor N x C x H x W, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{fn}: {name} must be 4-D N x C x H x W, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{fn}: {name} must be a floating tensor (alpha in [0, 1]), got {t.dtype}")
    if pred.shape != target.shape:
        raise ValueError(f"{fn}: pred and target must have the same shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    dtype = torch.promote_types(pred.dtype, target.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    return pred.to(dtype), target.to(dtype)


def _check_mask(mask, ref: torch.Tensor, fn: str, name: str) -> torch.Tensor | None:
    """``None`` or a float tensor of ``ref``'s shape (a 1-channel mask is broadcast over C)."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor N x 1 x H x W, got {type(mask).__name__}")
    n, c, h, w = ref.shape
    if mask.ndim != 4 or mask.shape[0] != n or mask.shape[2:] != ref.shape[2:] or mask.shape[1] not in (1, c):
        raise ValueError(f"{fn}: {name} must have shape ({n}, 1, {h}, {w}) or {tuple(ref.shape)}, "
                         f"got {tuple(mask.shape)}")
    if name == "valid":
        mask = mask > 0.5
    else:
        mask = mask.to(ref.dtype)
        if not bool(torch.isfinite(mask).all()) or bool((mask < 0).any()):
            raise ValueError(f"{fn}: {name} must be finite and >= 0")
    return mask.expand(n, c, h, w).to(device=ref.device, dtype=ref.dtype)


def _check_inputs(pred, target, valid, weight, fn: str):
    """The four checks every public term starts with; returns ``(pred, target, valid, weight)``."""
    pred, target = _check_pair(pred, target, fn)
    return pred, target, _check_mask(valid, pred, fn, "valid"), _check_mask(weight, pred, fn, "weight")


def _zero_fill(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``x`` with masked pixels set to 0 (``where``, so NaN/inf there cannot leak)."""
    return x if valid is None else torch.where(valid > 0, x, torch.zeros_like(x))


def _combine(valid, weight):
    """The product of the two optional masks (``None`` if both are ``None``)."""
    if valid is None:
        return weight
    return valid if weight is None else valid * weight


def _weighted_means(loss_map: torch.Tensor, m: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample weighted mean of ``loss_map`` (N x C x h x w) and the per-sample weight sums."""
    n = loss_map.shape[0]
    if m is None:
        count = loss_map[0].numel()
        vals = loss_map.reshape(n, -1).mean(1)
        return vals, torch.full((n,), float(count), dtype=loss_map.dtype, device=loss_map.device)
    num = (loss_map * m).reshape(n, -1).sum(1)
    den = m.reshape(n, -1).sum(1)
    return num / den.clamp_min(_TINY), den


def _pool(vals: torch.Tensor, counts: torch.Tensor, sample_weight=None) -> torch.Tensor:
    """Pixel-pooled mean of per-sample values: ``sum(w_i c_i v_i) / sum(c_i)``."""
    if sample_weight is not None:
        vals = vals * sample_weight
    return (vals * counts).sum() / counts.sum().clamp_min(_TINY)


def _finish(vals: torch.Tensor, counts: torch.Tensor, reduction: str, fn: str) -> torch.Tensor:
    """``reduction="mean"``: the pooled mean; ``"none"``: the per-sample means ``(N,)``."""
    if reduction == "mean":
        return _pool(vals, counts)
    if reduction == "none":
        return vals
    raise ValueError(f"{fn}: reduction must be 'mean' or 'none', got {reduction!r}")
