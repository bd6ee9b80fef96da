r"""Matting metrics SAD, MSE, Gradient and Connectivity, as the DIM MATLAB code defines them.

Introduced in notebook 07 (evaluation).

The numbers papers print for Composition-1k (and the article's §6 table) come from the
MATLAB evaluation code released with *Deep Image Matting* (Ning Xu, 2018):
``compute_sad_loss.m``, ``compute_mse_loss.m``, ``compute_gradient_loss.m`` (with
``gaussgradient.m`` by Guanglei Xiong) and ``compute_connectivity_error.m``, driven by
``evaluate.m``. This module reproduces that code, not one of its Python ports (which
differ in gradient normalisation, in which component counts as the largest, in
threshold ties, or overflow on ``uint8``). The copies read while writing it:
``poppinace/indexnet_matting`` ``evaluation_code/compute_connectivity_error.m``,
``compute_gradient_loss.m``, ``hleval.m``; ``Yaoyi-Li/HOP-Matting``
``DIM_evaluation_code/gaussgradient.m``, ``evaluate.m``; ``compute_sad_loss.m`` and
``compute_mse_loss.m`` in other repositories' copies of the same folder.

Inputs
------
``pred`` and ``gt``: HxW alpha mattes, ``uint8`` 0..255 (what MATLAB reads from a PNG)
or float in [0, 1]; ``trimap``: HxW with the values 0, 128 (unknown) and 255 only.
Every metric sums over the **unknown pixels** (``trimap == 128``) only.
A float alpha ``x`` plays the role of MATLAB's ``single(u)/255``: a float64 ``u/255``
gives exactly the SAD, MSE and Connectivity of the ``uint8`` ``u``, and its Gradient to
rounding (~1e-12); a float32 ``u/255`` gives the same Connectivity, the rest to ~1e-7.
To reproduce a PNG-based evaluation of float predictions, quantise them first:
``np.round(alpha * 255).astype(np.uint8)``.

Definitions (what the MATLAB code computes)
-------------------------------------------
**SAD** (``compute_sad_loss.m``): sum of ``abs(single(pred) - single(gt)) / 255`` over
unknown pixels, **divided by 1000** (inside the .m file).

**MSE** (``compute_mse_loss.m``): ``((single(pred) - single(gt)) / 255) .^ 2`` summed over
unknown pixels and divided by their number; no scaling. NaN when there is no unknown
pixel (MATLAB's 0/0).

**Gradient** (``compute_gradient_loss.m``; the /1000 is in ``evaluate.m``):

1. ``mat2gray``: each matte is normalised by **its own** minimum and maximum over the
   whole image, ``(A - min) / (max - min)`` in double, not divided by 255 (a prediction
   that peaks at 200 is stretched to 1). A constant matte has zero gradient.
2. ``gaussgradient(., 1.4)``: ``hx(i, j) = G(i) G'(j)`` with
   ``G(x) = exp(-x^2 / (2 sigma^2)) / (sigma sqrt(2 pi))``, ``G'(x) = -x G(x) / sigma^2``,
   ``sigma = 1.4``, half size ``ceil(sigma sqrt(-2 ln(sqrt(2 pi) sigma 0.01))) = 4``
   (9x9), scaled to unit L2 norm (not unit sum); ``hy = hx'``. Applied with
   ``imfilter(IM, h, 'replicate', 'conv')``: a true convolution with **replicated
   borders**.
3. ``amp = sqrt(gx^2 + gy^2)`` in double; the error is ``(single(amp_pred) -
   single(amp_gt))^2`` in single precision, summed over unknown pixels, divided by 1000.

**Connectivity** (``compute_connectivity_error.m``, step 0.1; /1000 in ``evaluate.m``):

1. ``alpha = single(alpha)/255``; thresholds ``0:0.1:1`` as MATLAB's colon operator
   builds them (the 4th is ``0.30000000000000004``, the 8th exactly ``0.7``). A pixel
   passes ``t`` when ``alpha >= t`` compared **exactly** (single against double), so the
   ``uint8`` values 51, 102, 153, 204 pass 0.2, 0.4, 0.6, 0.8 (a float64 port with
   ``np.arange`` thresholds drops 153 at 0.6).
2. For each threshold ``t_k``, k = 1..10: the intersection ``pred >= t_k & gt >= t_k`` is
   split into **4-connected** components (``bwconncomp(., 4)``, not bwlabel's default 8);
   ``omega_k`` is the largest. Among equally large components MATLAB's ``max`` takes
   the first in bwconncomp's list, whose objects come in the order of their first
   pixel in MATLAB's **column-major** linear indexing. An empty intersection skips the
   level (the ``isempty`` guard of the indexnet_matting copy; the unguarded original
   does not handle that case, mmediting assigns the previous threshold instead, which
   differs when a prediction never reaches some threshold).
3. ``l(p) = t_{k-1}`` for the first level ``k`` whose ``omega_k`` misses ``p``; a pixel in
   every ``omega_k`` (or whose remaining levels were all skipped) gets ``l = 1``.
4. ``d = alpha - l`` (single), ``phi = 1 - d .* (d >= 0.15)`` (theta = 0.15, p = 1:
   distances below 0.15 do not count); the error is ``sum |phi_pred - phi_gt|`` over
   unknown pixels, divided by 1000. (The MATLAB code also builds ``bwdist`` distance
   maps that it never uses; they are omitted.)

Exactness
---------
Per-pixel arithmetic follows MATLAB's precision: single where MATLAB uses single,
exact single-vs-double comparisons at every threshold, no ``uint8`` subtraction (so no
wrap-around). Sums are accumulated in double; MATLAB sums its single arrays in single
precision, in an order of its own, which can move its last digits (~1e-6 relative on
large images), so "identical" is defined against the line-by-line reference
``benchmarks/_reference_metrics.py``: SAD, MSE and Connectivity agree to <= 1e-12
relative (only the order of the double sums differs), Gradient to <= 1e-9 relative (its
filters run as two 1-D passes with paired taps, then MATLAB's single rounding).

Speed
-----
Filters and sums are confined to the bounding box of the unknown pixels (plus the
4-pixel filter margin: real data inside the image, replicated border outside it, so
the result is exact); components are global, so connectivity labels the bounding box
of the pixels where both mattes reach the first threshold. SAD and MSE of two ``uint8``
mattes come from one 256-bin histogram of ``|pred - gt|``. The Gaussian-derivative
filters are rank one and run as 1-D passes in double precision, row by row through a
ring of 9 filtered rows, fused with the amplitude and the error sum. Connectivity
encodes ``min(pred, gt)`` once as horizontal runs per level, joins overlapping runs of
consecutive rows with a union-find (the 4-connected components of every level), picks
the largest per level, and finds each pixel's ``l`` from the first run on its chain of
nested runs that leaves omega, in one final pass over the unknown box. The kernels use
numba (a dependency of pymatting), compiled on first use and cached on disk
(``lowlight/__pycache__``); without numba the same values come from OpenCV/numpy code
that is several times slower (``_NUMBA = False`` selects it).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

try:  # numba ships with pymatting; every kernel below has a numba-free fallback
    import numba as _numba
except ImportError:  # pragma: no cover - exercised by monkeypatching _NUMBA in the tests
    _numba = None

__all__ = [
    "sad", "mse", "gradient_error", "connectivity_error", "all_metrics",
    "check_inputs", "matlab_thresholds", "gaussgradient_kernel_1d",
    "GRADIENT_SIGMA", "CONNECTIVITY_STEP", "CONNECTIVITY_THETA",
]

GRADIENT_SIGMA = 1.4        # compute_gradient_loss.m: gaussgradient(pred, 1.4)
CONNECTIVITY_STEP = 0.1     # evaluate.m: compute_connectivity_error(pred, target, trimap, 0.1)
CONNECTIVITY_THETA = 0.15   # compute_connectivity_error.m: pred_d >= 0.15

_NUMBA = _numba is not None  # the tests switch this off to check the fallbacks
_F32_255 = np.float32(255.0)
_INT64_MAX = np.iinfo(np.int64).max


# =============================================================================== inputs
def _as_alpha(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        if a.ndim == 3:
            raise ValueError(
                f"{name}: expected a single-channel HxW alpha matte, got shape {a.shape} "
                f"with {a.shape[2]} channels; pass one channel, e.g. {name}[..., 0]")
        raise ValueError(f"{name}: expected a 2-D HxW alpha matte, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: empty array of shape {a.shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"{name}: expected dtype uint8 (0..255) or float (0..1), got {a.dtype}")
    lo, hi = a.min(), a.max()
    if np.isnan(lo) or np.isnan(hi):
        raise ValueError(f"{name}: contains NaN ({int(np.isnan(a).sum())} pixels)")
    if lo < 0 or hi > 1:
        hint = "; a 0..255 matte must have dtype uint8 (or be divided by 255)" if hi > 1 else ""
        raise ValueError(
            f"{name}: float alpha must lie in [0, 1], got values in [{lo:.6g}, {hi:.6g}]{hint}")
    return np.ascontiguousarray(a)


def _as_trimap(x, name: str = "trimap") -> np.ndarray:
    t = np.asarray(x)
    if t.ndim == 3 and t.shape[2] == 1:
        t = t[:, :, 0]
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D HxW trimap (0/128/255), got shape {t.shape}")
    if t.dtype == np.bool_ or not (np.issubdtype(t.dtype, np.integer)
                                   or np.issubdtype(t.dtype, np.floating)):
        raise ValueError(f"{name}: expected numeric values 0/128/255, got dtype {t.dtype}")
    bad = (t != 0) & (t != 128) & (t != 255)
    if bad.any():
        vals = np.unique(t[bad])[:5].tolist()
        raise ValueError(
            f"{name}: values must be 0 (background), 128 (unknown) or 255 (foreground); "
            f"found {int(bad.sum())} other pixels, e.g. {vals}")
    return np.ascontiguousarray(t if t.dtype == np.uint8 else t.astype(np.uint8))


def check_inputs(pred, gt, trimap):
    """Validate ``(pred, gt, trimap)`` and return them as the metrics use them.

    ``pred``/``gt``: HxW (or HxWx1) ``uint8`` 0..255 or float 0..1 (float16 is widened
    to float32); ``trimap``: HxW (or HxWx1) with values 0/128/255 only, returned as
    ``uint8``. Raises ``ValueError`` naming the argument for a wrong number of channels,
    a shape mismatch, another dtype, NaN, float values outside [0, 1] or trimap values
    other than 0/128/255. Introduced in notebook 07.
    """
    pred = _as_alpha(pred, "pred")
    gt = _as_alpha(gt, "gt")
    trimap = _as_trimap(trimap)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt: shapes differ, {pred.shape} vs {gt.shape}")
    if trimap.shape != pred.shape:
        raise ValueError(f"trimap: shape {trimap.shape} differs from pred/gt shape {pred.shape}")
    return pred, gt, trimap


# ================================================================== MATLAB building blocks
def matlab_thresholds(step: float = CONNECTIVITY_STEP) -> np.ndarray:
    """``0:step:1`` element by element as MATLAB's colon operator builds it.

    MATLAB does not accumulate ``k*step`` over the whole range: the first half is
    ``k*step``, the second half ``1 - (n-k)*step`` counted back from the end, and for an
    even count the middle is ``0.5``. So ``0:0.1:1`` holds ``0.30000000000000004`` and
    exactly ``0.7`` (``numpy.arange`` gives ``0.7000000000000001``). Notebook 07.
    """
    step = float(step)
    if not (0 < step <= 1):
        raise ValueError(f"step: expected 0 < step <= 1, got {step}")
    n = int(math.floor(1.0 / step + 1e-10))      # MATLAB tolerates rounding in (b-a)/d
    last = n * step
    if abs(last - 1.0) <= 3 * np.finfo(float).eps:
        last = 1.0
    out = np.empty(n + 1)
    for k in range(n // 2 + 1):
        out[k] = k * step
        out[n - k] = last - k * step
    if n % 2 == 0:
        out[n // 2] = last / 2
    return out


def gaussgradient_kernel_1d(sigma: float = GRADIENT_SIGMA):
    """The two 1-D factors of ``gaussgradient.m``'s kernel: ``hx[i, j] = g[i] * dg[j]``.

    ``g`` is the Gaussian (rows), ``dg`` its derivative (columns) with the unit-L2-norm
    scaling of ``hx`` folded in. For sigma 1.4 both have 9 taps. Notebook 07.
    """
    half = int(math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2))))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
    dg = -x * g / sigma ** 2
    norm = math.sqrt(float(np.sum(g ** 2)) * float(np.sum(dg ** 2)))  # ||outer(g, dg)||_F
    return g, dg / norm


_G, _DG = gaussgradient_kernel_1d(GRADIENT_SIGMA)
_HALF = (len(_G) - 1) // 2
# OpenCV and the kernels below correlate; MATLAB's 'conv' flips the kernel. The
# Gaussian is symmetric, its derivative antisymmetric (exactly, in floating point).
_GK = np.ascontiguousarray(_G)
_DK = np.ascontiguousarray(_DG[::-1])
assert _HALF == 4, "the unrolled gradient kernels assume sigma 1.4 (9 taps)"

# single-precision tables for uint8 inputs
_P32_LUT = (np.arange(256, dtype=np.float32) / _F32_255).astype(np.float32)   # single(u)/255
_P64_LUT = np.arange(256, dtype=np.float64) / 255.0                            # u/255 in double
_SAD_LUT = _P32_LUT.astype(np.float64)                     # abs(single(d))/255, d = |p - g|
_MSE_LUT = (_P32_LUT * _P32_LUT).astype(np.float32).astype(np.float64)          # its square
# smallest float32 >= 0.15: `d >= _THETA32` on singles is MATLAB's exact `d >= 0.15`
_THETA32 = np.float32(CONNECTIVITY_THETA)
if float(_THETA32) < CONNECTIVITY_THETA:
    _THETA32 = np.nextafter(_THETA32, np.float32(np.inf))


# ============================================================================ numba kernels
def _jit(fn):
    """numba.njit(cache=True) when numba is installed, else the plain function (unused)."""
    if _numba is None:
        return fn
    return _numba.njit(cache=True, nogil=True)(fn)   # no fastmath: IEEE semantics


@_jit
def _sum_f32(v):
    # double-precision sum of a float32 row, four independent accumulators
    n = v.shape[0]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    x = 0
    while x + 4 <= n:
        s0 += v[x]
        s1 += v[x + 1]
        s2 += v[x + 2]
        s3 += v[x + 3]
        x += 4
    while x < n:
        s0 += v[x]
        x += 1
    return (s0 + s1) + (s2 + s3)


@_jit
def _k_sad_mse(p, g, mask):
    # sums over mask of |e| and e*e, e = single(p - g) (p, g float alphas in [0, 1])
    h, w = p.shape
    ea = np.empty(w, np.float32)
    eq = np.empty(w, np.float32)
    zero = np.float32(0.0)
    sa = 0.0
    sq = 0.0
    for y in range(h):
        pr = p[y]
        gr = g[y]
        mr = mask[y]
        for x in range(w):
            e = np.float32(np.float64(pr[x]) - np.float64(gr[x]))
            on = mr[x] != 0
            ea[x] = abs(e) if on else zero
            eq[x] = e * e if on else zero
        sa += _sum_f32(ea)
        sq += _sum_f32(eq)
    return sa, sq


# --- Gradient ------------------------------------------------------------------------
# The 9-tap loops are written out so that LLVM turns them into SIMD code.
@_jit
def _k_row_pass(img, r, x0, xb, gk, dk, A, B):
    # Row r filtered horizontally by the Gaussian gk (-> A) and the flipped derivative
    # dk (-> B) for output columns x0 .. x0+len(A). Columns outside the image replicate
    # its border (MATLAB's 'replicate'); inside it they are real data.
    W = img.shape[1]
    n = A.shape[0]
    for j in range(n + 8):
        c = x0 - 4 + j
        if c < 0:
            c = 0
        elif c >= W:
            c = W - 1
        xb[j] = img[r, c]
    g0, g1, g2, g3, g4 = gk[0], gk[1], gk[2], gk[3], gk[4]
    d0, d1, d2, d3 = dk[0], dk[1], dk[2], dk[3]
    for x in range(n):
        a0 = xb[x]
        a1 = xb[x + 1]
        a2 = xb[x + 2]
        a3 = xb[x + 3]
        a4 = xb[x + 4]
        a5 = xb[x + 5]
        a6 = xb[x + 6]
        a7 = xb[x + 7]
        a8 = xb[x + 8]
        A[x] = g4 * a4 + g0 * (a0 + a8) + g1 * (a1 + a7) + g2 * (a2 + a6) + g3 * (a3 + a5)
        B[x] = d0 * (a0 - a8) + d1 * (a1 - a7) + d2 * (a2 - a6) + d3 * (a3 - a5)


@_jit
def _k_column_pass(Ap, Bp, Ag, Bg, sl, gk, dk, scale_p, scale_g, mrow, x0, erow):
    # Vertical pass over the 9 buffered rows (ring slots sl[0..8], top to bottom), then
    # (single(amp_p) - single(amp_g))^2 where the mask row is set, with
    # amp = scale * sqrt(gx^2 + gy^2) in double (scale: mat2gray's 1/(max - min)).
    g0, g1, g2, g3, g4 = gk[0], gk[1], gk[2], gk[3], gk[4]
    d0, d1, d2, d3 = dk[0], dk[1], dk[2], dk[3]
    P0, P1, P2, P3, P4 = Bp[sl[0]], Bp[sl[1]], Bp[sl[2]], Bp[sl[3]], Bp[sl[4]]
    P5, P6, P7, P8 = Bp[sl[5]], Bp[sl[6]], Bp[sl[7]], Bp[sl[8]]
    Q0, Q1, Q2, Q3 = Ap[sl[0]], Ap[sl[1]], Ap[sl[2]], Ap[sl[3]]
    Q5, Q6, Q7, Q8 = Ap[sl[5]], Ap[sl[6]], Ap[sl[7]], Ap[sl[8]]
    R0, R1, R2, R3, R4 = Bg[sl[0]], Bg[sl[1]], Bg[sl[2]], Bg[sl[3]], Bg[sl[4]]
    R5, R6, R7, R8 = Bg[sl[5]], Bg[sl[6]], Bg[sl[7]], Bg[sl[8]]
    S0, S1, S2, S3 = Ag[sl[0]], Ag[sl[1]], Ag[sl[2]], Ag[sl[3]]
    S5, S6, S7, S8 = Ag[sl[5]], Ag[sl[6]], Ag[sl[7]], Ag[sl[8]]
    zero = np.float32(0.0)
    for x in range(erow.shape[0]):
        gxp = (g4 * P4[x] + g0 * (P0[x] + P8[x]) + g1 * (P1[x] + P7[x])
               + g2 * (P2[x] + P6[x]) + g3 * (P3[x] + P5[x]))
        gyp = (d0 * (Q0[x] - Q8[x]) + d1 * (Q1[x] - Q7[x])
               + d2 * (Q2[x] - Q6[x]) + d3 * (Q3[x] - Q5[x]))
        gxg = (g4 * R4[x] + g0 * (R0[x] + R8[x]) + g1 * (R1[x] + R7[x])
               + g2 * (R2[x] + R6[x]) + g3 * (R3[x] + R5[x]))
        gyg = (d0 * (S0[x] - S8[x]) + d1 * (S1[x] - S7[x])
               + d2 * (S2[x] - S6[x]) + d3 * (S3[x] - S5[x]))
        ap = np.float32(scale_p * np.sqrt(gxp * gxp + gyp * gyp))
        ag = np.float32(scale_g * np.sqrt(gxg * gxg + gyg * gyg))
        e = ap - ag
        erow[x] = e * e if mrow[x0 + x] != 0 else zero


@_jit
def _k_gradient(p, g, mask, y0, y1, x0, x1, scale_p, scale_g, gk, dk):
    # Sum over unknown pixels of the box of (single(amp_p) - single(amp_g))^2, one row
    # at a time, with a ring of 9 horizontally filtered rows per image.
    H = p.shape[0]
    bw = x1 - x0
    Ap = np.empty((9, bw))
    Bp = np.empty((9, bw))
    Ag = np.empty((9, bw))
    Bg = np.empty((9, bw))
    xb = np.empty(bw + 8)
    erow = np.empty(bw, np.float32)
    sl = np.empty(9, np.int64)
    total = 0.0
    for v in range(y0 - 4, y0 + 4):                    # rows above y0 (row 0 replicated)
        rr = min(max(v, 0), H - 1)
        _k_row_pass(p, rr, x0, xb, gk, dk, Ap[(v + 18) % 9], Bp[(v + 18) % 9])
        _k_row_pass(g, rr, x0, xb, gk, dk, Ag[(v + 18) % 9], Bg[(v + 18) % 9])
    for y in range(y0, y1):
        v = y + 4
        rr = min(v, H - 1)                              # last row replicated
        _k_row_pass(p, rr, x0, xb, gk, dk, Ap[(v + 18) % 9], Bp[(v + 18) % 9])
        _k_row_pass(g, rr, x0, xb, gk, dk, Ag[(v + 18) % 9], Bg[(v + 18) % 9])
        mrow = mask[y]
        any_unknown = False
        for x in range(x0, x1):
            if mrow[x] != 0:
                any_unknown = True
                break
        if not any_unknown:
            continue
        for t in range(9):
            sl[t] = (y - 4 + t + 18) % 9
        _k_column_pass(Ap, Bp, Ag, Bg, sl, gk, dk, scale_p, scale_g, mrow, x0, erow)
        total += _sum_f32(erow)
    return total


# --- Connectivity ----------------------------------------------------------------------
@_jit
def _k_levels_f32(p, g, c32, out):
    # out = how many thresholds t_1..t_K min(p, g) reaches; c32[k] is the smallest float32
    # >= t_k, so the float32 comparison is MATLAB's exact single-vs-double one
    H, W = p.shape
    K = c32.shape[0] - 1
    m = np.empty(W, np.float32)
    cnt = np.empty(W, np.uint8)
    one = np.uint8(1)
    nil = np.uint8(0)
    for r in range(H):
        pr = p[r]
        gr = g[r]
        for c in range(W):
            m[c] = min(pr[c], gr[c])
            cnt[c] = 0
        for k in range(1, K + 1):
            ck = c32[k]
            for c in range(W):
                cnt[c] += one if m[c] >= ck else nil
        out[r] = cnt


@_jit
def _k_count_runs(lev, K):
    # number of maximal horizontal runs with lev >= k, per level k
    H, W = lev.shape
    cnt = np.zeros(K + 2, np.int64)
    for r in range(H):
        prev = 0
        for c in range(W):
            v = lev[r, c]
            if v != prev:
                if v < prev:
                    for k in range(v + 1, prev + 1):
                        cnt[k] += 1
                prev = v
        for k in range(1, prev + 1):
            cnt[k] += 1
    return cnt


@_jit
def _k_fill_runs(lev, K, off):
    # runs of level k occupy [off[k], off[k+1]) in (row, start) order, [rs, re) columns;
    # rowptr[k, r] is the first run of level k in row r
    H, W = lev.shape
    rs = np.empty(off[K + 1], np.int32)
    re = np.empty(off[K + 1], np.int32)
    rowptr = np.zeros((K + 1, H + 1), np.int64)
    wp = off.copy()
    start = np.zeros(K + 1, np.int32)
    for r in range(H):
        for k in range(1, K + 1):
            rowptr[k, r] = wp[k]
        prev = 0
        for c in range(W):
            v = lev[r, c]
            if v != prev:
                if v > prev:
                    for k in range(prev + 1, v + 1):
                        start[k] = c
                else:
                    for k in range(v + 1, prev + 1):
                        i = wp[k]
                        rs[i] = start[k]
                        re[i] = c
                        wp[k] = i + 1
                prev = v
        for k in range(1, prev + 1):
            i = wp[k]
            rs[i] = start[k]
            re[i] = W
            wp[k] = i + 1
    for k in range(1, K + 1):
        rowptr[k, H] = wp[k]
    return rs, re, rowptr


@_jit
def _k_find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@_jit
def _k_largest(rs, re, rowptr, off, K, H):
    # Per non-empty level: 4-connected components of its runs (union-find), the largest
    # one (ties: first pixel first in column-major order, as bwconncomp + max), and for
    # every run whether it belongs to it. Returns (in_omega per run, top non-empty level).
    total = off[K + 1]
    parent = np.arange(total)
    inomega = np.zeros(total, np.bool_)
    kmax = 0
    for k in range(1, K + 1):
        a = off[k]
        b = off[k + 1]
        if a == b:
            break                   # empty intersection: this and all higher levels skipped
        kmax = k
        for r in range(1, H):
            i = rowptr[k, r - 1]
            iend = rowptr[k, r]
            j = iend
            jend = rowptr[k, r + 1]
            while i < iend and j < jend:
                if re[i] <= rs[j]:
                    i += 1
                elif re[j] <= rs[i]:
                    j += 1
                else:               # the two runs share a column: 4-connected
                    ri = _k_find(parent, i)
                    rj = _k_find(parent, j)
                    if ri < rj:
                        parent[rj] = ri
                    elif rj < ri:
                        parent[ri] = rj
                    if re[i] < re[j]:
                        i += 1
                    else:
                        j += 1
        size = np.zeros(b - a, np.int64)
        first = np.full(b - a, _INT64_MAX, np.int64)
        for r in range(H):
            for i in range(rowptr[k, r], rowptr[k, r + 1]):
                q = _k_find(parent, i) - a
                size[q] += re[i] - rs[i]
                f = np.int64(rs[i]) * H + r             # column-major index of its first pixel
                if f < first[q]:
                    first[q] = f
        best = -1
        bsize = np.int64(0)
        bfirst = _INT64_MAX
        for q in range(b - a):
            if size[q] > bsize or (size[q] == bsize and size[q] > 0 and first[q] < bfirst):
                best = q
                bsize = size[q]
                bfirst = first[q]
        for i in range(a, b):
            inomega[i] = (_k_find(parent, i) - a) == best
    return inomega, kmax


@_jit
def _k_break_runs(rs, re, rowptr, inomega, kmax, H):
    # A run is "alive" when it and every run containing it at lower levels lie in the
    # largest components. A "break" run is the first dead run on its pixels' chain:
    # its pixels leave omega at its level k, so they get l = t_{k-1}.
    alive = inomega.copy()
    brk = np.zeros(inomega.shape[0], np.bool_)
    if kmax == 0:
        return brk
    for r in range(H):
        for i in range(rowptr[1, r], rowptr[1, r + 1]):
            brk[i] = not inomega[i]
    for k in range(2, kmax + 1):
        for r in range(H):
            j = rowptr[k - 1, r]
            for i in range(rowptr[k, r], rowptr[k, r + 1]):
                while re[j] <= rs[i]:
                    j += 1              # j: the level k-1 run that contains run i
                pa = alive[j]
                alive[i] = pa and inomega[i]
                brk[i] = pa and not inomega[i]
    return brk


@_jit
def _k_phi_row(p, g, mrow, lrow, theta32, erow):
    # |phi(p) - phi(g)| where the mask row is set; phi = 1 - d*(d >= theta), d = alpha - l,
    # in single precision as in MATLAB
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for x in range(erow.shape[0]):
        l = lrow[x]
        dp = p[x] - l
        dg = g[x] - l
        fp = one - dp if dp >= theta32 else one
        fg = one - dg if dg >= theta32 else one
        erow[x] = abs(fp - fg) if mrow[x] != 0 else zero


@_jit
def _k_phi_sum(lev, p, g, mask, oy, ox, rs, re, rowptr, brk, kmax, K, l32, theta32):
    # Sum over unknown pixels of |phi(p) - phi(g)|. lev and the runs share one (cropped)
    # frame; p, g, mask cover the unknown box, whose top-left is (oy, ox) in that frame.
    # Per pixel l = t_n, n = lev (K when lev is the top non-empty level), unless a break
    # run covers the pixel.
    bh, bw = p.shape
    H, W = lev.shape
    lrow = np.empty(bw, np.float32)
    erow = np.empty(bw, np.float32)
    lut = l32.copy()
    lut[kmax] = l32[K]
    l_out = lut[0]                      # pixels outside the frame have lev = 0
    xa = min(max(-ox, 0), bw)           # box columns [xa, xb) lie inside the frame
    xb = min(max(W - ox, xa), bw)
    total = 0.0
    for y in range(bh):
        r = y + oy
        if 0 <= r < H:
            for x in range(xa):
                lrow[x] = l_out
            for x in range(xa, xb):
                lrow[x] = lut[lev[r, x + ox]]
            for x in range(xb, bw):
                lrow[x] = l_out
            for k in range(1, kmax + 1):
                lk = l32[k - 1]
                for i in range(rowptr[k, r], rowptr[k, r + 1]):
                    if brk[i]:
                        for x in range(max(rs[i] - ox, 0), min(re[i] - ox, bw)):
                            lrow[x] = lk
        else:
            for x in range(bw):
                lrow[x] = l_out
        _k_phi_row(p[y], g[y], mask[y], lrow, theta32, erow)
        total += _sum_f32(erow)
    return total


# ============================================================================ shared setup
class _Prepared:
    """Validated inputs, the unknown mask (0/1), its pixel count and bounding box."""

    __slots__ = ("pred", "gt", "trimap", "mask", "n", "box")

    def __init__(self, pred, gt, trimap):
        self.pred, self.gt, self.trimap = check_inputs(pred, gt, trimap)
        self.mask = (self.trimap == 128).view(np.uint8)    # 0/1
        self.n = cv2.countNonZero(self.mask)
        if self.n:
            x, y, w, h = cv2.boundingRect(self.mask)
            self.box = (y, y + h, x, x + w)
        else:
            self.box = (0, 0, 0, 0)

    def crop(self, a):
        y0, y1, x0, x1 = self.box
        return a[y0:y1, x0:x1]


def _masked_sum(values, mask) -> float:
    """Double-precision sum of float32 ``values`` where ``mask`` (uint8) is non-zero."""
    return float(cv2.sumElems(cv2.copyTo(values, mask))[0])


def _single_alpha(a):
    """MATLAB's ``single(u)/255`` for uint8 (correctly rounded), ``single(x)`` for floats."""
    return cv2.LUT(a, _P32_LUT) if a.dtype == np.uint8 else a.astype(np.float32, copy=False)


# ================================================================================ SAD / MSE
def _sad_mse(P: _Prepared):
    if P.n == 0:
        return 0.0, float("nan")
    p, g, m = P.crop(P.pred), P.crop(P.gt), P.crop(P.mask)
    if p.dtype == np.uint8 and g.dtype == np.uint8:
        # |p - g| formed without uint8 wrap-around; one histogram gives both metrics
        d = cv2.absdiff(p, g)
        if d.size < (1 << 24):              # float32 bin counts are exact below 2^24
            hist = cv2.calcHist([d], [0], m, [256], [0, 256]).reshape(-1).astype(np.float64)
        else:
            hist = np.bincount(d[m.view(bool)], minlength=256).astype(np.float64)
        return float(hist @ _SAD_LUT) / 1000.0, float(hist @ _MSE_LUT) / P.n
    a = p if p.dtype != np.uint8 else cv2.LUT(p, _P64_LUT)
    b = g if g.dtype != np.uint8 else cv2.LUT(g, _P64_LUT)
    if _NUMBA:
        if a.dtype != b.dtype:
            a, b = a.astype(np.float64), b.astype(np.float64)
        sa, sq = _k_sad_mse(np.ascontiguousarray(a), np.ascontiguousarray(b),
                            np.ascontiguousarray(m))
    else:
        e = (a.astype(np.float64) - b.astype(np.float64)).astype(np.float32)
        sa, sq = _masked_sum(np.abs(e), m), _masked_sum(e * e, m)
    return sa / 1000.0, sq / P.n


def sad(pred, gt, trimap) -> float:
    """SAD over the unknown pixels, in thousands, as ``compute_sad_loss.m``. Notebook 07."""
    return _sad_mse(_Prepared(pred, gt, trimap))[0]


def mse(pred, gt, trimap) -> float:
    """MSE over the unknown pixels (alpha in [0, 1], no scaling), as
    ``compute_mse_loss.m``; NaN without unknown pixels. Notebook 07."""
    return _sad_mse(_Prepared(pred, gt, trimap))[1]


# ================================================================================= Gradient
def _same_dtype(a, b):
    """Give the gradient kernel one dtype (uint8, float32 or float64): the raw values
    are filtered and mat2gray's scale applied afterwards, so a uint8 matte may be
    widened to float as it is."""
    if a.dtype == b.dtype:
        return a, b
    common = np.float64 if np.float64 in (a.dtype, b.dtype) else np.float32
    return a.astype(common), b.astype(common)


def _mat2gray_scale(a):
    """``1 / (max - min)`` of mat2gray, or None for a constant matte (zero gradient)."""
    lo, hi, _, _ = cv2.minMaxLoc(a)
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


def _gradient(P: _Prepared) -> float:
    if P.n == 0:
        return 0.0
    # mat2gray(A) = A*s - min*s; the derivative filters annihilate constants, so the
    # raw matte is filtered and the amplitude scaled by s (equal up to rounding).
    sp, sg = _mat2gray_scale(P.pred), _mat2gray_scale(P.gt)
    y0, y1, x0, x1 = P.box
    if _NUMBA:
        # a constant matte gets scale 0: its amplitude is exactly 0
        pred, gt = _same_dtype(P.pred, P.gt)
        total = _k_gradient(pred, gt, P.mask, y0, y1, x0, x1, sp or 0.0, sg or 0.0, _GK, _DK)
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
    return _gradient(_Prepared(pred, gt, trimap))


# ============================================================================= Connectivity
def _threshold_tables(thresholds):
    """Per level k: the smallest float32 >= t_k, and the uint8 -> level lookup table."""
    c32 = thresholds.astype(np.float32)
    low = c32.astype(np.float64) < thresholds
    c32[low] = np.nextafter(c32[low], np.float32(np.inf))
    lut = np.searchsorted(c32[1:], _P32_LUT, side="right").astype(np.uint8)
    return c32, lut


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
    p = np.ascontiguousarray(_single_alpha(pred))
    g = np.ascontiguousarray(_single_alpha(gt))
    lev = np.empty(p.shape, np.uint8)
    if _NUMBA:
        _k_levels_f32(p, g, c32, lev)
    else:
        m = np.minimum(p, g)
        lev[:] = np.searchsorted(c32[1:], m.ravel(), side="right").reshape(m.shape)
    return lev


def _connectivity_numba(P: _Prepared, thresholds):
    K = len(thresholds) - 1
    lev = _levels(P.pred, P.gt, thresholds)
    # every level lies inside the bounding box of level 1: label only there
    x, y, w, h = cv2.boundingRect(lev)
    if w == 0 or h == 0:
        lev, x, y = np.zeros((1, 1), np.uint8), 0, 0
    else:
        lev = np.ascontiguousarray(lev[y:y + h, x:x + w])
    cnt = _k_count_runs(lev, K)
    off = np.zeros(K + 2, np.int64)
    off[2:] = np.cumsum(cnt[1:K + 1])
    rs, re, rowptr = _k_fill_runs(lev, K, off)
    inomega, kmax = _k_largest(rs, re, rowptr, off, K, lev.shape[0])
    brk = _k_break_runs(rs, re, rowptr, inomega, kmax, lev.shape[0])
    y0, y1, x0, x1 = P.box
    p = np.ascontiguousarray(_single_alpha(P.crop(P.pred)))
    g = np.ascontiguousarray(_single_alpha(P.crop(P.gt)))
    m = np.ascontiguousarray(P.crop(P.mask))
    l32 = _l_table(thresholds)
    return _k_phi_sum(lev, p, g, m, y0 - y, x0 - x, rs, re, rowptr, brk, kmax, K,
                      l32, _THETA32)


def _connectivity_opencv(P: _Prepared, thresholds):
    """The same value without numba: OpenCV labelling, one call per level (slower)."""
    K = len(thresholds) - 1
    lev = _levels(P.pred, P.gt, thresholds)
    alive = np.ones(lev.shape, np.uint8)
    count = np.zeros(lev.shape, np.uint8)      # leading levels whose omega holds the pixel
    for k in range(1, K + 1):
        n, lab, stats, _ = cv2.connectedComponentsWithStats(
            (lev >= k).view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
        if n <= 1:                             # empty: this and the higher levels skipped
            count += alive * np.uint8(K - k + 1)
            break
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


def _connectivity(P: _Prepared, step: float = CONNECTIVITY_STEP) -> float:
    if P.n == 0:
        return 0.0
    thresholds = matlab_thresholds(step)
    if len(thresholds) > 255:
        raise ValueError(f"step: at most 254 thresholds are supported, got step={step}")
    impl = _connectivity_numba if _NUMBA else _connectivity_opencv
    return float(impl(P, thresholds)) / 1000.0


def connectivity_error(pred, gt, trimap, step: float = CONNECTIVITY_STEP) -> float:
    """Connectivity error over the unknown pixels, in thousands, as
    ``compute_connectivity_error.m`` (step 0.1, 4-connected largest component with
    MATLAB's tie rule, theta 0.15). Notebook 07."""
    return _connectivity(_Prepared(pred, gt, trimap), step)


# ==================================================================================== all
def all_metrics(pred, gt, trimap) -> dict:
    """All four metrics in one call (inputs validated once), in the units papers print:
    ``{"sad", "mse", "gradient", "connectivity"}`` with SAD, Gradient and Connectivity
    divided by 1000 and MSE raw over the unknown pixels. Introduced in notebook 07.
    """
    P = _Prepared(pred, gt, trimap)
    s, m = _sad_mse(P)
    return {"sad": s, "mse": m, "gradient": _gradient(P), "connectivity": _connectivity(P)}
