"""Laplacian-pyramid L1 loss, the loss ViTMatte trains with (notebook 05).

Conventions (``valid``, ``weight``, ``reduction``) in :mod:`lowlight.losses`; the pyramid
itself is :func:`lowlight.filters.laplacian_pyramid`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..filters import laplacian_pyramid
from ._reduce import _check_inputs, _combine, _finish, _weighted_means

__all__ = ["laplacian_loss", "LaplacianLoss"]


def _laplacian_terms(pred, target, valid=None, weight=None, levels=5):
    d = pred - target
    m = _combine(valid, weight)
    if valid is not None:
        d = torch.where(valid > 0, d, torch.zeros_like(d))
    bands = laplacian_pyramid(d, levels)
    if not bands:
        raise ValueError(f"laplacian_loss: images must be at least 4 x 4, got {tuple(pred.shape[-2:])}")
    n = pred.shape[0]
    total = torch.zeros(n, dtype=pred.dtype, device=pred.device)
    ml = m
    for lvl, band in enumerate(bands):
        if ml is not None:
            ml = ml[..., : band.shape[-2], : band.shape[-1]]
        vals, _ = _weighted_means(band.abs(), ml)
        total = total + (2.0 ** lvl) * vals
        if ml is not None:
            ml = F.avg_pool2d(ml.reshape(-1, 1, *ml.shape[-2:]), 2).reshape(*ml.shape[:2], ml.shape[-2] // 2,
                                                                          ml.shape[-1] // 2)
    counts = (torch.full((n,), float(pred[0].numel()), dtype=pred.dtype, device=pred.device)
              if m is None else m.reshape(n, -1).sum(1))
    return total / len(bands), counts


def laplacian_loss(pred, target, valid=None, weight=None, reduction: str = "mean", levels: int = 5) -> torch.Tensor:
    """Laplacian-pyramid L1 loss (notebook 05): ``sum_l 2^l * mean|band_l(pred - target)| / levels``.

    The loss ViTMatte trains with (``loss_pha_laplacian``): every scale of the error
    counts, coarse levels weighted up by ``2^l``. The pyramid is linear, so it is built
    once on ``pred - target``; with ``valid``, that difference is 0 at masked pixels and
    each level's mean is normalised by the (average-pooled) valid weight.
    """
    fn = "laplacian_loss"
    pred, target, valid, weight = _check_inputs(pred, target, valid, weight, fn)
    return _finish(*_laplacian_terms(pred, target, valid, weight, levels), reduction, fn)


class LaplacianLoss(nn.Module):
    """Module form of :func:`laplacian_loss`; ``levels`` is fixed at construction."""

    def __init__(self, reduction: str = "mean", levels: int = 5):
        super().__init__()
        self.reduction, self.levels = reduction, int(levels)

    def forward(self, pred, target, valid=None, weight=None):
        return laplacian_loss(pred, target, valid, weight, self.reduction, self.levels)
