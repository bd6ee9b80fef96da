"""numba kernels shared by the metrics: input scans, per-row lane sums, SAD / MSE.

The gradient and connectivity kernels live in ``_kernels_gradient.py`` and
``_kernels_connectivity.py``. Every kernel is compiled on first use and cached on disk
(``lowlight/metrics/__pycache__``); none uses fastmath, so IEEE semantics hold and the
values do not depend on the machine's vector width.

Sums
----
Every per-pixel error is accumulated the same way: per row, four double-precision
"lanes" (pixel ``x`` of the unknown box goes to lane ``x % 4``, the ``width % 4``
last pixels to lane 0), combined as ``(l0 + l1) + (l2 + l3)``; the rows are then added
in order. :func:`_lanes_add` adds a chunk of a row to the lanes; because skipped
pixels only ever contribute ``+0.0``, summing only the chunks that hold unknown pixels
gives bit for bit the sum over the whole row.

Input dtypes
------------
The kernels read ``uint8``, ``float32`` and ``float64`` mattes as they are (numba
compiles one version per dtype combination); :func:`_alpha32` / :func:`_alpha64`
give a pixel's MATLAB ``single(u)/255`` (or ``single(x)``) and ``u/255`` (or ``x``).
"""
from __future__ import annotations

import numpy as np

try:  # numba ships with pymatting; every kernel has a numba-free fallback
    import numba as _numba
except ImportError:  # pragma: no cover - exercised by monkeypatching _NUMBA in the tests
    _numba = None

HAVE_NUMBA = _numba is not None
CHUNK = 32          # columns per chunk of the unknown box (a multiple of 4: lane-aligned)


def _jit(fn):
    """numba.njit(cache=True) when numba is installed, else the plain function (unused)."""
    if _numba is None:
        return fn
    return _numba.njit(cache=True, nogil=True)(fn)   # no fastmath: IEEE semantics


# ---------------------------------------------------------------- per-dtype pixel access
def _alpha32(v, lut32):
    """single(u)/255 for a uint8 ``u`` (``lut32[u]``), single(x) for a float ``x``."""
    return lut32[v] if isinstance(v, (int, np.integer)) else np.float32(v)


def _alpha64(v, lut64):
    """u/255 in double for a uint8 ``u`` (``lut64[u]``), the float ``x`` itself."""
    return lut64[v] if isinstance(v, (int, np.integer)) else np.float64(v)


def _min_alpha(pv, gv, lut32):
    """What the connectivity thresholds compare: min of the two uint8 values as they
    are, else min of the two single alphas."""
    if isinstance(pv, (int, np.integer)) and isinstance(gv, (int, np.integer)):
        return min(pv, gv)
    return min(_alpha32(pv, lut32), _alpha32(gv, lut32))


if _numba is not None:
    from numba import types as _types
    from numba.extending import overload as _overload

    @_overload(_alpha32)
    def _ov_alpha32(v, lut32):
        if isinstance(v, _types.Integer):
            return lambda v, lut32: lut32[v]
        return lambda v, lut32: np.float32(v)

    @_overload(_alpha64)
    def _ov_alpha64(v, lut64):
        if isinstance(v, _types.Integer):
            return lambda v, lut64: lut64[v]
        return lambda v, lut64: np.float64(v)

    @_overload(_min_alpha)
    def _ov_min_alpha(pv, gv, lut32):
        if isinstance(pv, _types.Integer) and isinstance(gv, _types.Integer):
            return lambda pv, gv, lut32: min(pv, gv)
        return lambda pv, gv, lut32: min(_alpha32(pv, lut32), _alpha32(gv, lut32))


# --------------------------------------------------------------------------------- sums
@_jit
def _lanes_add(v, a, b, n4, s0, s1, s2, s3):
    # add v[a:b] (a a multiple of 4) to the lanes: x -> lane x % 4 below n4 (the row
    # width rounded down to a multiple of 4), lane 0 from n4 on
    e = min(b, n4)
    x = a
    while x + 4 <= e:
        s0 += v[x]
        s1 += v[x + 1]
        s2 += v[x + 2]
        s3 += v[x + 3]
        x += 4
    while x < e:            # b < n4 and not a multiple of 4: cannot happen for chunks
        if x % 4 == 0:
            s0 += v[x]
        elif x % 4 == 1:
            s1 += v[x]
        elif x % 4 == 2:
            s2 += v[x]
        else:
            s3 += v[x]
        x += 1
    while x < b:
        s0 += v[x]
        x += 1
    return s0, s1, s2, s3


@_jit
def _chunk_span(flags):
    # first and last set chunk of a row of chunk flags, (-1, -1) if none
    lo = -1
    hi = -1
    for j in range(flags.shape[0]):
        if flags[j] != 0:
            if lo < 0:
                lo = j
            hi = j
    return lo, hi


# --------------------------------------------------------------------------- input scans
@_jit
def _k_trimap_scan(t):
    # One pass over a uint8 trimap: number of values other than 0/128/255, number of
    # unknown (128) pixels and their bounding box (y0, y1, x0, x1), (0, 0, 0, 0) if none.
    H, W = t.shape
    bad = 0
    n = 0
    y0 = H
    y1 = 0
    x0 = W
    x1 = 0
    for y in range(H):
        row = t[y]
        c = 0
        b = 0
        for x in range(W):
            v = row[x]
            c += v == 128
            b += (v != 0) & (v != 128) & (v != 255)
        bad += b
        if c == 0:
            continue
        n += c
        if y < y0:
            y0 = y
        y1 = y + 1
        f = False                               # an unknown pixel left of x0?
        for x in range(x0):
            f |= row[x] == 128
        if f:
            for x in range(x0):
                if row[x] == 128:
                    x0 = x
                    break
        f = False                               # right of x1?
        for x in range(x1, W):
            f |= row[x] == 128
        if f:
            for x in range(W - 1, x1 - 1, -1):
                if row[x] == 128:
                    x1 = x + 1
                    break
    if n == 0:
        return bad, 0, 0, 0, 0, 0
    return bad, n, y0, y1, x0, x1


@_jit
def _k_range(a):
    # min, max and number of NaNs of a C-contiguous array
    v = a.reshape(-1)
    lo = v[0]
    hi = v[0]
    nan = 0
    for i in range(v.shape[0]):
        x = v[i]
        if x < lo:
            lo = x
        if x > hi:
            hi = x
        nan += x != x
    return lo, hi, nan


@_jit
def _k_unknown_chunks(t, y0, y1, x0, x1, ch):
    # flags[y - y0, j]: row y of the box has an unknown pixel in columns
    # [x0 + j*ch, x0 + (j+1)*ch)
    bw = x1 - x0
    nch = (bw + ch - 1) // ch
    flags = np.zeros((y1 - y0, nch), np.uint8)
    for y in range(y0, y1):
        row = t[y]
        fr = flags[y - y0]
        for j in range(nch):
            a = x0 + j * ch
            b = min(a + ch, x1)
            f = False
            for x in range(a, b):
                f |= row[x] == 128
            fr[j] = f
    return flags


# ---------------------------------------------------------------------------- SAD / MSE
@_jit
def _k_absdiff_hist(p, g, t, y0, x0, flags, ch):
    # histogram of |p - g| (uint8 mattes) over the unknown pixels of the box; four
    # sub-histograms so that runs of equal differences do not serialise the increments
    h4 = np.zeros((4, 256), np.int64)
    bh, nch = flags.shape
    for yi in range(bh):
        y = y0 + yi
        pr = p[y]
        gr = g[y]
        tr = t[y]
        fr = flags[yi]
        for j in range(nch):
            if fr[j] == 0:
                continue
            a = x0 + j * ch
            b = min(a + ch, tr.shape[0])
            for x in range(a, b):
                if tr[x] == 128:
                    d = abs(np.int32(pr[x]) - np.int32(gr[x]))
                    h4[x & 3, d] += 1
    hist = np.zeros(256, np.int64)
    for k in range(4):
        for d in range(256):
            hist[d] += h4[k, d]
    return hist


@_jit
def _k_sad_mse(p, g, t, y0, x0, x1, flags, ch, lut64):
    # sums over the unknown pixels of |e| and e*e, e = single(a - b) with a, b the
    # alphas in double (u/255 for uint8)
    bw = x1 - x0
    n4 = bw - bw % 4
    bh, nch = flags.shape
    ea = np.zeros(bw, np.float32)
    eq = np.zeros(bw, np.float32)
    zero = np.float32(0.0)
    sa = 0.0
    sq = 0.0
    for yi in range(bh):
        y = y0 + yi
        pr = p[y]
        gr = g[y]
        tr = t[y]
        fr = flags[yi]
        a0 = a1 = a2 = a3 = 0.0
        q0 = q1 = q2 = q3 = 0.0
        for j in range(nch):
            if fr[j] == 0:
                continue
            a = j * ch
            b = min(a + ch, bw)
            for x in range(a, b):
                X = x0 + x
                e = np.float32(_alpha64(pr[X], lut64) - _alpha64(gr[X], lut64))
                on = tr[X] == 128
                ea[x] = abs(e) if on else zero
                eq[x] = e * e if on else zero
            a0, a1, a2, a3 = _lanes_add(ea, a, b, n4, a0, a1, a2, a3)
            q0, q1, q2, q3 = _lanes_add(eq, a, b, n4, q0, q1, q2, q3)
        sa += (a0 + a1) + (a2 + a3)
        sq += (q0 + q1) + (q2 + q3)
    return sa, sq
