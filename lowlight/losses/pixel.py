"""Pixel terms: mean squared error and mean absolute error (notebook 05).

The article's λ1 term is MSE; ViTMatte-style models train with L1. Both see each pixel on
its own: blind to *where* the error is. Conventions (``valid``, ``weight``, ``reduction``)
in :mod:`lowlight.losses`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ._reduce import _check_inputs, _combine, _finish, _weighted_means, _zero_fill

__all__ = ["mse_loss", "l1_loss", "MSELoss", "L1Loss"]


def _mse_terms(pred, target, valid=None, weight=None):
    return _weighted_means((pred - target) ** 2, _combine(valid, weight))


def _l1_terms(pred, target, valid=None, weight=None):
    return _weighted_means((pred - target).abs(), _combine(valid, weight))


def _pixel_loss(kind, pred, target, valid, weight, reduction):
    fn = f"{kind}_loss"
    pred, target, valid, weight = _check_inputs(pred, target, valid, weight, fn)
    pred, target = _zero_fill(pred, valid), _zero_fill(target, valid)
    terms = _mse_terms if kind == "mse" else _l1_terms
    return _finish(*terms(pred, target, valid, weight), reduction, fn)


def mse_loss(pred, target, valid=None, weight=None, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error over the counted pixels (notebook 05).

    The article's λ1 term: pixel-wise, "stabilises convergence", blind to *where* the
    error is (a missing hair strand costs as much as the same mass of background noise).
    """
    return _pixel_loss("mse", pred, target, valid, weight, reduction)


def l1_loss(pred, target, valid=None, weight=None, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error (notebook 05). ViTMatte-style models train with L1 (on the
    unknown and the known regions separately); it penalises small errors relatively
    more than MSE, so faint residue and thin strands weigh more."""
    return _pixel_loss("l1", pred, target, valid, weight, reduction)


class _PixelModule(nn.Module):
    """Module form of a pixel loss function ``loss`` (masks and ``reduction`` as there)."""

    loss = None

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, pred, target, valid=None, weight=None):
        return type(self).loss(pred, target, valid, weight, self.reduction)


class MSELoss(_PixelModule):
    """Module form of :func:`mse_loss` (masks and ``reduction`` as there)."""

    loss = staticmethod(mse_loss)


class L1Loss(_PixelModule):
    """Module form of :func:`l1_loss` (masks and ``reduction`` as there)."""

    loss = staticmethod(l1_loss)
