"""A plain, line-by-line Python rendering of the DIM (Composition-1k) MATLAB evaluation code.

This module is the *oracle* for ``lowlight.metrics``: the tests compare the fast
implementation against it, and ``benchmarks/bench_metrics.py`` times both in one run.
It is written for readability, not speed: every step mirrors one MATLAB line of
``compute_sad_loss.m``, ``compute_mse_loss.m``, ``compute_gradient_loss.m``,
``gaussgradient.m`` and ``compute_connectivity_error.m`` (Ning Xu, 2018; copies read in
``poppinace/indexnet_matting/evaluation_code/`` and
``Yaoyi-Li/HOP-Matting/DIM_evaluation_code/``), including MATLAB's single-precision
steps. Comments name the MATLAB step each block renders (in our words).

Differences from MATLAB that cannot be avoided (see ``lowlight.metrics`` for the full
discussion): sums are accumulated in float64 (MATLAB accumulates ``single`` arrays in
single precision, in an order we cannot reproduce), and the 9x9 gradient filter is
applied as one 2-D convolution in float64 (MATLAB's ``imfilter`` may split it into two
1-D passes); both change results only at the level of floating-point rounding.

Inputs are validated by ``lowlight.metrics.check_inputs`` (so both implementations
accept and reject the same things); everything after that is independent code.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.ndimage as ndi

from lowlight.metrics import check_inputs

__all__ = ["sad", "mse", "gradient_error", "connectivity_error", "all_metrics",
           "matlab_colon", "gaussgradient_kernel"]


# ----------------------------------------------------------------------------- helpers
def _single_of_uint8_over_255(u):
    """MATLAB ``single(pred)/255`` for uint8 ``pred``: the correctly rounded single."""
    return (u.astype(np.float32) / np.float32(255.0)).astype(np.float32)


def _normalised_single(x):
    """The single-precision alpha in [0, 1] that the MATLAB code works with."""
    if x.dtype == np.uint8:
        return _single_of_uint8_over_255(x)
    return x.astype(np.float32)


def _signed_error_single(pred, gt):
    """MATLAB ``(single(pred) - single(target)) / 255`` as a single array.

    For uint8 inputs the integer difference is exact and the division rounds once to
    single. For float inputs (alpha in [0, 1]) the difference is formed in float64 and
    rounded once to single, which gives the same numbers for ``u / 255`` inputs.
    """
    if pred.dtype == np.uint8 and gt.dtype == np.uint8:
        d = pred.astype(np.float32) - gt.astype(np.float32)          # exact integers
        return (d / np.float32(255.0)).astype(np.float32)
    a = pred.astype(np.float64) / 255.0 if pred.dtype == np.uint8 else pred.astype(np.float64)
    b = gt.astype(np.float64) / 255.0 if gt.dtype == np.uint8 else gt.astype(np.float64)
    return (a - b).astype(np.float32)


def matlab_colon(a: float, d: float, b: float) -> np.ndarray:
    """MATLAB's ``a:d:b`` for a positive step, element by element as MATLAB builds it.

    MATLAB does not accumulate ``a + k*d`` over the whole range: the first half is
    ``a + k*d``, the second half is ``b' - k*d`` counted back from the last element
    ``b' = a + n*d``, and for even ``n`` the middle element is ``(a + b')/2``. So
    ``0:0.1:1`` contains exactly ``0.7`` (= ``1 - 0.30000000000000004``) where
    ``numpy.arange(0, 1.1, 0.1)`` has ``0.7000000000000001``.
    """
    n = int(math.floor((b - a) / d + 1e-10))     # number of intervals (MATLAB uses a tolerance)
    last = a + n * d
    if abs(last - b) <= 3 * np.finfo(float).eps * max(abs(a), abs(b)):
        last = b
    out = np.empty(n + 1, dtype=np.float64)
    half = n // 2
    for k in range(half + 1):
        out[k] = a + k * d
        out[n - k] = last - k * d
    if n % 2 == 0:
        out[half] = (a + last) / 2
    return out


def gaussgradient_kernel(sigma: float = 1.4) -> np.ndarray:
    """``hx`` of ``gaussgradient.m`` (row offset in the Gaussian, column offset in its derivative)."""
    # kernel radius: where the Gaussian falls below epsilon = 0.01 (4 for sigma 1.4)
    epsilon = 1e-2
    halfsize = int(math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon))))
    size = 2 * halfsize + 1

    def gauss(x):                      # the normalised 1-D Gaussian
        return math.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))

    def dgauss(x):                     # its first derivative
        return -x * gauss(x) / sigma ** 2

    hx = np.zeros((size, size), dtype=np.float64)
    # element (i, j), 1-based: Gaussian of the row offset times derivative of the column offset
    for i in range(1, size + 1):
        for j in range(1, size + 1):
            u = (i - halfsize - 1, j - halfsize - 1)
            hx[i - 1, j - 1] = gauss(u[0]) * dgauss(u[1])
    # scaled to unit Frobenius (L2) norm
    hx = hx / math.sqrt(np.sum(np.abs(hx) * np.abs(hx)))
    return hx


def _mat2gray(a):
    """``mat2gray(A)``: (A - min) / (max - min) in double via imlincomb, clipped to [0, 1]."""
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi == lo:                       # constant image: its gradient is zero whatever the scale
        return np.zeros_like(a)
    delta = 1.0 / (hi - lo)
    out = delta * a + (-lo * delta)    # mat2gray's linear combination, in double
    return np.clip(out, 0.0, 1.0)      # then clipped to [0, 1]


def _gaussgradient(im, sigma=1.4):
    hx = gaussgradient_kernel(sigma)
    hy = hx.T                          # the y kernel is the transpose
    # imfilter with 'replicate' and 'conv': true convolution, border pixels repeated
    gx = ndi.convolve(im, hx, mode="nearest")
    gy = ndi.convolve(im, hy, mode="nearest")
    return gx, gy


# ----------------------------------------------------------------------------- metrics
def sad(pred, gt, trimap) -> float:
    """compute_sad_loss.m (already divided by 1000 there)."""
    pred, gt, trimap = check_inputs(pred, gt, trimap)
    # per pixel: |single(pred) - single(gt)| / 255, in single precision
    error_map = np.abs(_signed_error_single(pred, gt))
    # summed over the unknown pixels (trimap 128), then divided by 1000 in the .m file
    loss = np.sum(error_map.astype(np.float64) * (trimap == 128))
    return float(loss / 1000)


def mse(pred, gt, trimap) -> float:
    """compute_mse_loss.m (mean over the unknown pixels, no scaling)."""
    pred, gt, trimap = check_inputs(pred, gt, trimap)
    # per pixel: (single(pred) - single(gt)) / 255, squared, in single precision
    error_map = _signed_error_single(pred, gt)
    sq = (error_map * error_map).astype(np.float32)
    # summed over the unknown pixels and divided by their number (0/0 -> NaN)
    n = np.sum(trimap == 128)
    return float(np.sum(sq.astype(np.float64) * (trimap == 128)) / n) if n else float("nan")


def gradient_error(pred, gt, trimap, sigma: float = 1.4) -> float:
    """compute_gradient_loss.m, divided by 1000 as evaluate.m does."""
    pred, gt, trimap = check_inputs(pred, gt, trimap)
    # each matte normalised by its own min and max (mat2gray)
    p = _mat2gray(pred)
    t = _mat2gray(gt)
    # Gaussian-derivative gradients, sigma 1.4
    px, py = _gaussgradient(p, sigma)
    tx, ty = _gaussgradient(t, sigma)
    # gradient magnitudes in double
    pred_amp = np.sqrt(px ** 2 + py ** 2)
    target_amp = np.sqrt(tx ** 2 + ty ** 2)
    # magnitudes rounded to single, difference squared in single
    diff = (pred_amp.astype(np.float32) - target_amp.astype(np.float32)).astype(np.float32)
    error_map = (diff * diff).astype(np.float32)
    # summed over the unknown pixels; evaluate.m divides by 1000
    loss = np.sum(error_map.astype(np.float64) * (trimap == 128))
    return float(loss / 1000)


def _bwconncomp4(mask):
    """``bwconncomp(mask, 4)`` as (label image, number of components)."""
    return ndi.label(mask, structure=[[0, 1, 0], [1, 1, 1], [0, 1, 0]])


def _matlab_largest(lab, n):
    """Label of the largest component, as MATLAB's ``max`` over bwconncomp's list picks it.

    ``max`` returns the first maximum, and MATLAB lists the components in the order
    of their first pixel in a column-major scan (its linear index order). So among
    equally large components the one whose first pixel comes first column-major wins.
    """
    size_vec = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    tied = np.flatnonzero(size_vec == size_vec.max()) + 1
    if len(tied) == 1:
        return int(tied[0])
    h = lab.shape[0]
    firsts = []
    for label in tied:
        rows, cols = np.nonzero(lab == label)
        firsts.append(int(np.min(cols * h + rows)))        # MATLAB linear index - 1
    return int(tied[int(np.argmin(firsts))])


def connectivity_error(pred, gt, trimap, step: float = 0.1, empty: str = "skip") -> float:
    """compute_connectivity_error.m (with the empty-intersection guard of the
    indexnet_matting copy), divided by 1000 as evaluate.m does. ``empty="disconnect"``:
    an empty intersection gives an empty omega instead of being skipped."""
    pred, gt, trimap = check_inputs(pred, gt, trimap)
    # alphas in single precision, uint8 divided by 255
    p = _normalised_single(pred)
    t = _normalised_single(gt)
    dimy, dimx = p.shape
    # thresholds 0, step, ..., 1 built by MATLAB's colon operator
    thresh_steps = matlab_colon(0.0, step, 1.0)
    # l starts "unassigned" (-1) everywhere, in double
    l_map = np.full((dimy, dimx), -1.0)
    # (the MATLAB code also fills distance maps with bwdist that it never uses; omitted)
    for ii in range(1, len(thresh_steps)):
        # both alphas at or above the threshold (single against double: exact comparison)
        pred_alpha_thresh = p.astype(np.float64) >= thresh_steps[ii]
        target_alpha_thresh = t.astype(np.float64) >= thresh_steps[ii]
        # 4-connected components of the intersection
        lab, n = _bwconncomp4(pred_alpha_thresh & target_alpha_thresh)
        # no component: the level is skipped (the guard of the indexnet_matting copy), or
        # (empty="disconnect") omega is empty and every unassigned pixel leaves it here
        if n == 0 and empty == "skip":
            continue
        omega = np.zeros((dimy, dimx))
        if n > 0:
            # omega: the largest component
            omega[lab == _matlab_largest(lab, n)] = 1
        # still-unassigned pixels outside omega get the previous threshold
        flag = (l_map == -1) & (omega == 0)
        l_map[flag] = thresh_steps[ii - 1]
    # pixels never assigned get 1
    l_map[l_map == -1] = 1
    # d = alpha - l: single minus double gives single in MATLAB
    l32 = l_map.astype(np.float32)
    pred_d = (p - l32).astype(np.float32)
    target_d = (t - l32).astype(np.float32)
    # phi = 1 - d where d >= 0.15 (exact comparison), else 1; single precision
    pred_phi = (np.float32(1) - pred_d * (pred_d.astype(np.float64) >= 0.15).astype(np.float32)).astype(np.float32)
    target_phi = (np.float32(1) - target_d * (target_d.astype(np.float64) >= 0.15).astype(np.float32)).astype(np.float32)
    # |phi_pred - phi_gt| summed over the unknown pixels; evaluate.m divides by 1000
    err = np.abs(pred_phi - target_phi).astype(np.float32)
    loss = np.sum(err.astype(np.float64) * (trimap == 128))
    return float(loss / 1000)


def all_metrics(pred, gt, trimap) -> dict:
    """The four metrics under the same keys as ``lowlight.metrics.all_metrics``."""
    return {
        "sad": sad(pred, gt, trimap),
        "mse": mse(pred, gt, trimap),
        "gradient": gradient_error(pred, gt, trimap),
        "connectivity": connectivity_error(pred, gt, trimap),
    }
