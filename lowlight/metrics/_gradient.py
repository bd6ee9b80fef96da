"""Gradient error (``compute_gradient_loss.m`` with ``gaussgradient.m``).

mat2gray(A) = A*s - min*s with s = 1/(max - min); the derivative filters annihilate
constants, so the raw mattes are filtered (each read in its own dtype, widened to
double per pixel) and the amplitudes scaled by s, equal up to rounding. Filters and
sums are confined to the bounding box of the unknown pixels plus the 4-pixel filter
margin (real data inside the image, replicated border outside it, so the result is
exact). The numba kernel is in ``_kernels_gradient.py``; with the kernels switched off
(:func:`lowlight.metrics.use_numba`) the same value comes from OpenCV's ``sepFilter2D``.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import _kernels as _k
from ._common import _DK, _GK, _HALF, _masked_sum
from ._inputs import Prepared
from ._kernels_gradient import _k_gradient

__all__ = ["gradient_error", "gradient_of"]


def _mat2gray_scale(P: Prepared, i: int):
    """``1 / (max - min)`` of mat2gray, or None for a constant matte (zero gradient)."""
    lo, hi = P.value_range(i)
    return None if hi == lo else 1.0 / (hi - lo)


def _gradient_amplitude_opencv(a, box, scale):
    """single(|gradient of mat2gray(a)|) inside ``box`` with OpenCV (fallback path)."""
    y0, y1, x0, x1 = box
    h, w = a.shape
    Y0, Y1 = max(y0 - _HALF, 0), min(y1 + _HALF, h)
    X0, X1 = max(x0 - _HALF, 0), min(x1 + _HALF, w)
    crop = np.ascontiguousarray(a[Y0:Y1, X0:X1])
    kg, kd = _GK.reshape(-1, 1), _DK.reshape(-1, 1)
    gx = cv2.sepFilter2D(crop, cv2.CV_64F, kd, kg, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.sepFilter2D(crop, cv2.CV_64F, kg, kd, borderType=cv2.BORDER_REPLICATE)
    amp = cv2.magnitude(gx, gy)[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0]
    return (amp * scale).astype(np.float32)


def gradient_of(P: Prepared) -> float:
    """Gradient error / 1000 of prepared inputs (numba kernel or OpenCV fallback)."""
    if P.n == 0:
        return 0.0
    sp, sg = _mat2gray_scale(P, 0), _mat2gray_scale(P, 1)
    y0, y1, x0, x1 = P.box
    if P.fast:
        # a constant matte gets scale 0: its amplitude is exactly 0
        total = _k_gradient(P.pred, P.gt, P.trimap, y0, y1, x0, x1, P.flags, _k.CHUNK,
                            sp or 0.0, sg or 0.0, _GK, _DK)
    else:
        zero = np.zeros((y1 - y0, x1 - x0), np.float32)
        ap = _gradient_amplitude_opencv(P.pred, P.box, sp) if sp is not None else zero
        ag = _gradient_amplitude_opencv(P.gt, P.box, sg) if sg is not None else zero
        e = cv2.subtract(ap, ag)
        total = _masked_sum(cv2.multiply(e, e), P.crop(P.mask))
    return total / 1000.0


def gradient_error(pred, gt, trimap) -> float:
    """Gradient error over the unknown pixels, in thousands, as
    ``compute_gradient_loss.m`` (mat2gray, Gaussian derivatives sigma 1.4, replicated
    borders, single-precision error). Notebook 07."""
    return gradient_of(Prepared(pred, gt, trimap))
