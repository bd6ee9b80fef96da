"""Connectivity error (``compute_connectivity_error.m``, step 0.1, theta 0.15).

Components are global, so the levels are computed over the whole image; the error is
summed over the unknown box only. The numba pipeline (``_kernels_connectivity.py``)
encodes the levels as horizontal runs and joins them with a union-find; with the kernels
switched off (:func:`lowlight.metrics.use_numba`) the same value comes from OpenCV
labelling, one call per level (slower).
"""
from __future__ import annotations

import cv2
import numpy as np

from . import _kernels as _k
from ._common import (CONNECTIVITY_STEP, _P32_LUT, _THETA32, _masked_sum, _single_alpha,
                      matlab_thresholds)
from ._inputs import Prepared
from ._kernels_connectivity import (_k_break_runs, _k_largest, _k_level_runs, _k_phi_sum,
                                    _k_sort_runs)

__all__ = ["connectivity_error", "connectivity_of", "EMPTY_LEVELS"]

#: what a threshold level whose intersection is empty does (see :func:`connectivity_error`)
EMPTY_LEVELS = ("skip", "disconnect")


def _threshold_tables(thresholds):
    """Per level k: the smallest float32 >= t_k, and the uint8 -> level lookup table."""
    c32 = thresholds.astype(np.float32)
    low = c32.astype(np.float64) < thresholds
    c32[low] = np.nextafter(c32[low], np.float32(np.inf))
    lut = np.searchsorted(c32[1:], _P32_LUT, side="right").astype(np.uint8)
    return c32, lut


def _uint8_thresholds(lut, K):
    """Per level k: the smallest uint8 ``u`` with ``single(u)/255 >= t_k`` (``lut[u] >= k``),
    so that two uint8 mattes pass level k exactly when ``min(pred, gt) >= u_k``; 256
    (in int16) for a level no uint8 value reaches."""
    u = np.searchsorted(lut, np.arange(K + 1), side="left")
    u[0] = 0
    return u.astype(np.uint8 if u.max() < 256 else np.int16)


def _l_table(thresholds):
    """single(l) indexed by n = number of leading levels whose omega holds the pixel:
    t_n for n < K (it left omega at level n+1), 1 for n = K (never left)."""
    l32 = thresholds.astype(np.float32)
    l32[-1] = 1.0
    return l32


def _levels(pred, gt, thresholds):
    """uint8 image: how many of t_1..t_K both alphas reach (i.e. min(pred, gt) >= t_k)."""
    c32, lut = _threshold_tables(thresholds)
    if pred.dtype == np.uint8 and gt.dtype == np.uint8:
        return cv2.LUT(cv2.min(pred, gt), lut)
    m = np.minimum(_single_alpha(pred), _single_alpha(gt))
    return np.searchsorted(c32[1:], m.ravel(), side="right").astype(np.uint8).reshape(m.shape)


def _connectivity_numba(P: Prepared, thresholds, skip: bool):
    K = len(thresholds) - 1
    c32, lut = _threshold_tables(thresholds)
    if P.pred.dtype == np.uint8 and P.gt.dtype == np.uint8:
        # levels straight from min(pred, gt) as uint8 (the first level at that value)
        thr = _uint8_thresholds(lut, K)
    else:
        thr = c32
    H = P.pred.shape[0]
    ok, orow, ors, ore, n = _k_level_runs(P.pred, P.gt, thr)
    rs, re, rowptr, off = _k_sort_runs(ok, orow, ors, ore, n, K, H)
    inomega, kmax = _k_largest(rs, re, rowptr, off, K, H)
    brk = _k_break_runs(rs, re, rowptr, inomega, kmax, H)
    y0, y1, x0, x1 = P.box
    return _k_phi_sum(P.pred, P.gt, P.trimap, y0, y1, x0, x1, P.flags, _k.CHUNK, thr,
                      rs, re, rowptr, brk, kmax, _l_table(thresholds), _THETA32, skip)


def _connectivity_opencv(P: Prepared, thresholds, skip: bool):
    """The same value without numba: OpenCV labelling, one call per level (slower)."""
    K = len(thresholds) - 1
    lev = _levels(P.pred, P.gt, thresholds)
    alive = np.ones(lev.shape, np.uint8)
    count = np.zeros(lev.shape, np.uint8)      # leading levels whose omega holds the pixel
    for k in range(1, K + 1):
        n, lab, stats, _ = cv2.connectedComponentsWithStats(
            (lev >= k).view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
        if n <= 1:                             # empty: this and the higher levels are empty too
            if skip:                           # skipped: the survivors never leave omega (l = 1)
                count += alive * np.uint8(K - k + 1)
            break                              # else they leave it here: l = t_(k-1)
        area = stats[1:, cv2.CC_STAT_AREA]
        tied = np.flatnonzero(area == area.max()) + 1
        best = int(tied[0])
        if len(tied) > 1:                      # first pixel in column-major order wins
            keys = [(int(stats[t, cv2.CC_STAT_LEFT]),
                     int(np.argmax(lab[:, stats[t, cv2.CC_STAT_LEFT]] == t))) for t in tied]
            best = int(tied[keys.index(min(keys))])
        alive &= (lab == best).view(np.uint8)
        count += alive
    l = _l_table(thresholds)[P.crop(count)]
    one = np.float32(1.0)
    dp = _single_alpha(P.crop(P.pred)) - l
    dg = _single_alpha(P.crop(P.gt)) - l
    fp = np.where(dp >= _THETA32, one - dp, one)
    fg = np.where(dg >= _THETA32, one - dg, one)
    return _masked_sum(np.abs(fp - fg).astype(np.float32), P.crop(P.mask))


def connectivity_of(P: Prepared, step: float = CONNECTIVITY_STEP, empty: str = "skip") -> float:
    """Connectivity error / 1000 of prepared inputs (numba pipeline or OpenCV fallback)."""
    if empty not in EMPTY_LEVELS:
        raise ValueError(f"empty: expected one of {EMPTY_LEVELS}, got {empty!r}")
    if P.n == 0:
        return 0.0
    thresholds = matlab_thresholds(step)
    if len(thresholds) > 255:
        raise ValueError(f"step: at most 254 thresholds are supported, got step={step}")
    impl = _connectivity_numba if P.fast else _connectivity_opencv
    return float(impl(P, thresholds, empty == "skip")) / 1000.0


def connectivity_error(pred, gt, trimap, step: float = CONNECTIVITY_STEP, empty: str = "skip") -> float:
    """Connectivity error over the unknown pixels, in thousands, as
    ``compute_connectivity_error.m`` (step 0.1, 4-connected largest component with
    MATLAB's tie rule, theta 0.15). Notebook 07.

    ``empty``: what a threshold level does where the two mattes share no pixel at all
    (a prediction that never reaches the level anywhere the truth does). ``"skip"`` (the
    default, the guard of the evaluation code everyone runs): the level and all above it are
    skipped, so pixels in every non-empty level's largest component get ``l = 1`` -- and an
    **all-zero prediction scores 0**, a perfect score. ``"disconnect"``: the definition of
    Rhemann et al. (2009) -- ``l`` is the level at which a pixel loses its connection to the
    source region, and at an empty level every pixel has lost it, so survivors get the previous
    threshold (mmediting's choice); an all-zero prediction then costs the truth's mass above
    theta. The two agree whenever the two mattes overlap at every threshold."""
    return connectivity_of(Prepared(pred, gt, trimap), step, empty)
