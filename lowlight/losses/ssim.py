"""Structure: the SSIM index of Wang et al. (2004) and the SSIM loss ``1 - SSIM`` (notebook 05).

The article's λ2 term, "protects texture detail". Computed exactly as scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)``. The window is the package's one Gaussian (:func:`lowlight.filters.gaussian_radius`):
at the default ``sigma=1.5`` it is scikit-image's 11 x 11 window; another ``sigma`` is allowed, but
its window may differ from scikit-image's (``sigma=1``: 7 x 7 here, 9 x 9 there), so only
``sigma=1.5`` is scikit-image's SSIM. Conventions (``valid``, ``weight``, ``reduction``) in
:mod:`lowlight.losses`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..filters import erode, gaussian_filter_valid, gaussian_radius
from ._reduce import _check_inputs, _check_pair, _finish, _weighted_means, _zero_fill

__all__ = ["ssim_map", "ssim", "ssim_loss", "SSIMLoss"]


def ssim_map(pred, target, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
             data_range: float = 1.0) -> torch.Tensor:
    """The local SSIM index of Wang et al. (2004), shape ``N x C x (H-2r) x (W-2r)`` (notebook 05).

    Gaussian window with ``sigma`` (1.5), truncated at :func:`lowlight.filters.gaussian_radius`
    (``r = 5``, an 11 x 11 window, normalised), population (co)variances, constants
    ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` with ``L = data_range``. Only windows that lie
    entirely inside the image are computed -- exactly the part of
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, full=True)[1]`` that skimage keeps when it
    averages (it crops ``(win_size - 1) // 2`` pixels of reflected border), so the mean of
    this map is skimage's SSIM (at ``sigma=1.5``; see the module docstring for other values).
    """
    pred, target = _check_pair(pred, target, "ssim_map")
    return _ssim_map(pred, target, sigma, k1, k2, data_range)


def _ssim_map(pred, target, sigma, k1, k2, data_range):
    if sigma <= 0 or data_range <= 0:
        raise ValueError(f"ssim: sigma and data_range must be > 0, got {sigma}, {data_range}")
    r = gaussian_radius(sigma)
    win = 2 * r + 1
    n, c, h, w = pred.shape
    if h < win or w < win:
        raise ValueError(f"ssim: images must be at least {win} x {win} for sigma={sigma} "
                         f"(an {win} x {win} window), got {h} x {w}")
    x = pred.reshape(n * c, 1, h, w)
    y = target.reshape(n * c, 1, h, w)
    stack = gaussian_filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), sigma)
    mx, my, exx, eyy, exy = stack.unbind(1)
    vx, vy, cxy = exx - mx * mx, eyy - my * my, exy - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.reshape(n, c, h - 2 * r, w - 2 * r)


def _ssim_terms(pred, target, valid=None, weight=None, sigma=1.5, k1=0.01, k2=0.03, data_range=1.0):
    """Per-sample means of ``1 - SSIM`` over the counted map pixels, and their weights."""
    s = _ssim_map(pred, target, sigma, k1, k2, data_range)
    r = gaussian_radius(sigma)
    h, w = pred.shape[-2:]
    m = None
    if valid is not None:
        m = erode(valid, 2 * r + 1)          # the whole window must be valid
    if weight is not None:
        wc = weight[..., r:h - r, r:w - r]
        m = wc if m is None else m * wc
    return _weighted_means(1.0 - s, m)


def _ssim_common(pred, target, valid, weight, fn, kw):
    pred, target, valid, weight = _check_inputs(pred, target, valid, weight, fn)
    pred, target = _zero_fill(pred, valid), _zero_fill(target, valid)
    return _ssim_terms(pred, target, valid, weight, **kw)


def ssim(pred, target, valid=None, weight=None, reduction: str = "mean", sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, data_range: float = 1.0) -> torch.Tensor:
    """The SSIM index (mean of :func:`ssim_map` over counted pixels), 1 for identical inputs (notebook 05).

    Without masks this equals scikit-image's ``structural_similarity`` with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``
    (tested to 1e-3; in float64 the match is ~1e-12). Images must be at least 11 x 11.
    With ``valid``, only windows lying entirely on valid pixels count; a sample without
    any such window gets SSIM 1 (no evidence of a difference).
    """
    kw = dict(sigma=sigma, k1=k1, k2=k2, data_range=data_range)
    vals, counts = _ssim_common(pred, target, valid, weight, "ssim", kw)
    return 1.0 - _finish(vals, counts, reduction, "ssim")


def ssim_loss(pred, target, valid=None, weight=None, reduction: str = "mean", sigma: float = 1.5,
              k1: float = 0.01, k2: float = 0.03, data_range: float = 1.0) -> torch.Tensor:
    """``1 - SSIM`` (notebook 05): the article's λ2 term, "protects texture detail".

    It compares local means, contrasts and correlations in 11 x 11 windows, so it reacts
    to lost *structure* (blur, broken strands, holes) more than to a uniform error. On
    alpha mattes its sensitivity depends on the window's content: in flat regions
    (all 0 or all 1) the variances are ~0 and the constants ``C1``, ``C2`` dominate.
    """
    kw = dict(sigma=sigma, k1=k1, k2=k2, data_range=data_range)
    return _finish(*_ssim_common(pred, target, valid, weight, "ssim_loss", kw), reduction, "ssim_loss")


class SSIMLoss(nn.Module):
    """Module form of :func:`ssim_loss`; the keyword options are fixed at construction."""

    def __init__(self, reduction: str = "mean", sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
                 data_range: float = 1.0):
        super().__init__()
        self.reduction = reduction
        self.options = dict(sigma=sigma, k1=k1, k2=k2, data_range=data_range)

    def forward(self, pred, target, valid=None, weight=None):
        return ssim_loss(pred, target, valid, weight, self.reduction, **self.options)
