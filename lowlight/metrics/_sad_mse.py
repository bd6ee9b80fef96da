"""SAD and MSE (``compute_sad_loss.m``, ``compute_mse_loss.m``), computed in one pass.

Both come from the same per-pixel error ``e = single(pred) - single(gt)`` (over 255 for
uint8), so :func:`sad_and_mse` computes the two together and :func:`sad`, :func:`mse` and
:func:`lowlight.metrics.all_metrics` all take their numbers from it. For two uint8
mattes one 256-bin histogram of ``|pred - gt|`` over the unknown pixels gives both sums
(weighted by the single-precision tables); otherwise one fused kernel reads the mattes
as they are (no float copies) and accumulates ``|e|`` and ``e*e`` per row.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import _kernels as _k
from ._common import _MSE_LUT, _P64_LUT, _SAD_LUT, _masked_sum
from ._inputs import Prepared

__all__ = ["sad", "mse", "sad_and_mse", "sad_mse_of"]


def sad_mse_of(P: Prepared):
    """``(SAD / 1000, MSE)`` of prepared inputs (what every public SAD / MSE function and
    :func:`lowlight.metrics.all_metrics` return)."""
    if P.n == 0:
        return 0.0, float("nan")
    y0, y1, x0, x1 = P.box
    if P.pred.dtype == np.uint8 and P.gt.dtype == np.uint8:
        # |p - g| formed without uint8 wrap-around; one histogram gives both metrics
        if P.fast:
            hist = _k._k_absdiff_hist(P.pred, P.gt, P.trimap, y0, y1, x0, x1, P.flags, _k.CHUNK)
            hist = hist.astype(np.float64)
        else:
            d = cv2.absdiff(P.crop(P.pred), P.crop(P.gt))
            m = P.crop(P.mask)
            if d.size < (1 << 24):              # float32 bin counts are exact below 2^24
                hist = cv2.calcHist([d], [0], m, [256], [0, 256]).reshape(-1).astype(np.float64)
            else:
                hist = np.bincount(d[m.view(bool)], minlength=256).astype(np.float64)
        return float(hist @ _SAD_LUT) / 1000.0, float(hist @ _MSE_LUT) / P.n
    if P.fast:
        sa, sq = _k._k_sad_mse(P.pred, P.gt, P.trimap, y0, y1, x0, x1, P.flags, _k.CHUNK)
    else:
        a, b, m = P.crop(P.pred), P.crop(P.gt), P.crop(P.mask)
        a = a if a.dtype != np.uint8 else cv2.LUT(a, _P64_LUT)
        b = b if b.dtype != np.uint8 else cv2.LUT(b, _P64_LUT)
        e = (a.astype(np.float64) - b.astype(np.float64)).astype(np.float32)
        sa, sq = _masked_sum(np.abs(e), m), _masked_sum(e * e, m)
    return sa / 1000.0, sq / P.n


def sad_and_mse(pred, gt, trimap):
    """``(sad, mse)`` in one pass over the unknown pixels: the same two numbers as
    :func:`sad` and :func:`mse`, for the cost of one. Notebook 07."""
    return sad_mse_of(Prepared(pred, gt, trimap))


def sad(pred, gt, trimap) -> float:
    """SAD over the unknown pixels, in thousands, as ``compute_sad_loss.m``. Notebook 07."""
    return sad_mse_of(Prepared(pred, gt, trimap))[0]


def mse(pred, gt, trimap) -> float:
    """MSE over the unknown pixels (alpha in [0, 1], no scaling), as
    ``compute_mse_loss.m``; NaN without unknown pixels. Notebook 07."""
    return sad_mse_of(Prepared(pred, gt, trimap))[1]
