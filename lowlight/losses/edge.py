"""The article's edge term: MSE between Sobel magnitudes of pred and target (notebook 05).

Conventions (``valid``, ``weight``, ``reduction``) in :mod:`lowlight.losses`; the filter
itself is :func:`lowlight.filters.sobel`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..filters import PADDINGS, erode, sobel_magnitude
from ._reduce import _check_inputs, _finish, _weighted_means, _zero_fill

__all__ = ["edge_loss", "EdgeLoss"]


def _edge_terms(pred, target, valid=None, weight=None, padding="reflect", eps=1e-8):
    mp = sobel_magnitude(pred, eps, padding)
    mt = sobel_magnitude(target, eps, padding)
    m = None
    if valid is not None:
        m = erode(valid, 3, padding)                  # the whole 3x3 neighbourhood must be valid
    if weight is not None:
        m = weight if m is None else m * weight
    return _weighted_means((mp - mt) ** 2, m)


def edge_loss(pred, target, valid=None, weight=None, reduction: str = "mean", padding: str = "reflect",
              eps: float = 1e-8) -> torch.Tensor:
    """The article's edge term (notebook 05): MSE between Sobel magnitudes of pred and target.

    It compares *how strong* the edges are, not their direction, and it is zero for a
    constant offset (``pred = target + c``): pair it with MSE/L1. ``padding="zeros"``
    reproduces the article's snippet exactly.
    """
    fn = "edge_loss"
    pred, target, valid, weight = _check_inputs(pred, target, valid, weight, fn)
    pred, target = _zero_fill(pred, valid), _zero_fill(target, valid)
    return _finish(*_edge_terms(pred, target, valid, weight, padding, eps), reduction, fn)


class EdgeLoss(nn.Module):
    """Module form of :func:`edge_loss`; ``padding`` and ``eps`` are fixed at construction."""

    def __init__(self, reduction: str = "mean", padding: str = "reflect", eps: float = 1e-8):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"EdgeLoss: padding must be one of {PADDINGS}, got {padding!r}")
        self.reduction, self.padding, self.eps = reduction, padding, float(eps)

    def forward(self, pred, target, valid=None, weight=None):
        return edge_loss(pred, target, valid, weight, self.reduction, self.padding, self.eps)
