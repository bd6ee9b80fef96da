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
in order. :func:`_lanes_add` adds a span of a row to the lanes; because skipped
pixels only ever contribute ``+0.0``, summing only the spans of 32-column chunks that
hold unknown pixels (flagged by the trimap scan) gives bit for bit the sum over the
whole row of the box.

Input dtypes
------------
Each algorithm is written once. The kernels read ``uint8``, ``float32`` and ``float64``
mattes as they are: numba compiles one specialisation per combination of argument
types, and the per-dtype arithmetic is chosen at compile time by :func:`_alpha32` /
:func:`_alpha64` (a pixel's MATLAB ``single(u)/255`` or ``single(x)``, and ``u/255`` or
``x``) and :func:`_min_alpha`.
"""
from __future__ import annotations

import os

import numba as _numba
import numpy as np
from numba import types as _types
from numba.extending import overload as _overload

CHUNK = 32          # columns per chunk of the unknown-pixel flags (a multiple of 8)


# numba's disk cache checks only the file that defines a kernel, not the helpers it
# calls from other files; every kernel's cache entry is therefore tied to all three
# kernel files (editing any of them recompiles all kernels on the next call).
_KERNEL_FILES = ("_kernels.py", "_kernels_gradient.py", "_kernels_connectivity.py")


def _kernel_files_stamp():
    here = os.path.dirname(os.path.abspath(__file__))
    stamp = []
    for name in _KERNEL_FILES:
        try:
            st = os.stat(os.path.join(here, name))
            stamp.append((name, st.st_mtime, st.st_size))
        except OSError:
            stamp.append((name, None, None))
    return tuple(stamp)


_STAMP = _kernel_files_stamp()


def _jit(fn):
    """``numba.njit(cache=True, nogil=True)``, its disk cache tied to all kernel files."""
    disp = _numba.njit(cache=True, nogil=True)(fn)   # no fastmath: IEEE semantics
    try:            # numba internals (0.5x-0.6x); without them, numba's own check only
        cache_file = disp._cache._cache_file
        cache_file._source_stamp = (cache_file._source_stamp, _STAMP)
    except AttributeError:  # pragma: no cover
        pass
    return disp


# ---------------------------------------------------------------- per-dtype pixel access
# single(u)/255 and u/255 are computed by IEEE division (no fastmath: never replaced by a
# multiplication), which gives exactly the tables _P32_LUT / _P64_LUT of _common.py. The
# Python bodies state the semantics; inside kernels the overloads below pick the branch
# from the argument's numba type when a specialisation is compiled.
def _alpha32(v):
    """single(u)/255 for a uint8 ``u``, single(x) for a float ``x``."""
    if isinstance(v, (int, np.integer)):
        return np.float32(v) / np.float32(255.0)
    return np.float32(v)


def _alpha64(v):
    """u/255 in double for a uint8 ``u``, the float ``x`` itself in double."""
    return np.float64(v) / 255.0 if isinstance(v, (int, np.integer)) else np.float64(v)


def _min_alpha(pv, gv):
    """What the connectivity thresholds compare: min of the two uint8 values as they
    are, else min of the two single alphas."""
    if isinstance(pv, (int, np.integer)) and isinstance(gv, (int, np.integer)):
        return min(pv, gv)
    return min(_alpha32(pv), _alpha32(gv))


@_overload(_alpha32)
def _ov_alpha32(v):
    if isinstance(v, _types.Integer):
        return lambda v: np.float32(v) / np.float32(255.0)
    return lambda v: np.float32(v)


@_overload(_alpha64)
def _ov_alpha64(v):
    if isinstance(v, _types.Integer):
        return lambda v: np.float64(v) / 255.0
    return lambda v: np.float64(v)


@_overload(_min_alpha)
def _ov_min_alpha(pv, gv):
    if isinstance(pv, _types.Integer) and isinstance(gv, _types.Integer):
        return lambda pv, gv: min(pv, gv)
    return lambda pv, gv: min(_alpha32(pv), _alpha32(gv))


# --------------------------------------------------------------------------------- sums
@_jit
def _lanes_add_each(v, a, b, n4, s0, s1, s2, s3):
    # add v[a:b] pixel by pixel: x -> lane x % 4 below n4, lane 0 from n4 on
    for x in range(a, b):
        lane = x % 4 if x < n4 else 0
        if lane == 0:
            s0 += v[x]
        elif lane == 1:
            s1 += v[x]
        elif lane == 2:
            s2 += v[x]
        else:
            s3 += v[x]
    return s0, s1, s2, s3


@_jit
def _lanes_add(v, a, b, n4, s0, s1, s2, s3):
    # add v[a:b] to the lanes: x -> lane x % 4 below n4 (the row width rounded down to a
    # multiple of 4), lane 0 from n4 on; each lane in increasing x. Pixel by pixel up to
    # the first multiple of 4, four at a time up to n4, pixel by pixel after.
    e = min(b, n4)
    x = min(a + (-a) % 4, max(a, e))
    s0, s1, s2, s3 = _lanes_add_each(v, a, x, n4, s0, s1, s2, s3)
    while x + 4 <= e:
        s0 += v[x]
        s1 += v[x + 1]
        s2 += v[x + 2]
        s3 += v[x + 3]
        x += 4
    return _lanes_add_each(v, x, b, n4, s0, s1, s2, s3)


@_jit
def _next_span(flags, j, ch, x0, x1):
    # The next run of set chunk flags at or after chunk j, as box columns [a, b) (the
    # chunks' columns clipped to the box [x0, x1)), and the chunk to go on from;
    # a = -1 when there is none. Kernels process a row span by span, each span one
    # vectorised loop.
    n = flags.shape[0]
    while j < n and flags[j] == 0:
        j += 1
    if j == n:
        return -1, -1, n
    ja = j
    while j < n and flags[j] != 0:
        j += 1
    return max(ja * ch, x0) - x0, min(j * ch, x1) - x0, j


@_jit
def _span_views(p, g, t, y, c0, c1):
    # row y of the two mattes and the trimap, columns [c0, c1)
    return p[y, c0:c1], g[y, c0:c1], t[y, c0:c1]


# --------------------------------------------------------------------------- input scans
@_jit
def _k_max_upto(a, limit):
    # The largest value of a 2-D image, scanned row by row; returns as soon as a row
    # holds a value above ``limit`` (a real matte: at its first non-trivial row).
    m = a[0, 0]
    for y in range(a.shape[0]):
        row = a[y]
        for x in range(row.shape[0]):
            m = max(m, row[x])
        if m > limit:
            break
    return m


@_jit
def _k_trimap_scan(t, ch):
    # One pass over a uint8 trimap: the number of values other than 0/128/255, the
    # number of unknown (128) pixels, their bounding box (y0, y1, x0, x1) ((0, 0, 0, 0)
    # if none) and flags[y, j] = 1 where row y has unknown pixels in columns
    # [j*ch, (j+1)*ch) (ch a multiple of 8).
    H, W = t.shape
    nch = (W + ch - 1) // ch
    flags = np.zeros((H, nch), np.uint8)
    u = np.zeros(nch * ch, np.uint8)
    words = u.view(np.uint64)
    wpc = ch // 8
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
            q = v == 128
            u[x] = q
            c += q
            b += (v != 0) & (v != 128) & (v != 255)
        bad += b
        if c == 0:
            continue
        n += c
        if y < y0:
            y0 = y
        y1 = y + 1
        fr = flags[y]
        jf = nch
        jl = -1
        for j in range(nch):
            w = words[j * wpc]
            for i in range(1, wpc):
                w |= words[j * wpc + i]
            if w != 0:
                fr[j] = 1
                jl = j
                if jf == nch:
                    jf = j
        if jf * ch < x0:                    # the first unknown column lies in chunk jf
            for x in range(jf * ch, min(jf * ch + ch, x0)):
                if u[x] != 0:
                    x0 = x
                    break
        if jl * ch + ch > x1:               # the last one in chunk jl
            for x in range(min(jl * ch + ch, W) - 1, max(jl * ch, x1) - 1, -1):
                if u[x] != 0:
                    x1 = x + 1
                    break
    if n == 0:
        return bad, 0, 0, 0, 0, 0, flags
    return bad, n, y0, y1, x0, x1, flags


# ---------------------------------------------------------------------------- SAD / MSE
@_jit
def _k_absdiff_hist(p, g, t, y0, y1, x0, x1, flags, ch):
    # histogram of |p - g| (uint8 mattes) over the unknown pixels; four sub-histograms
    # so that runs of equal differences do not serialise the increments
    h4 = np.zeros((4, 256), np.int64)
    for y in range(y0, y1):
        fr = flags[y]
        a, b, j = _next_span(fr, 0, ch, x0, x1)
        while a >= 0:
            pr, gr, tr = _span_views(p, g, t, y, x0 + a, x0 + b)
            for x in range(b - a):
                if tr[x] == 128:
                    d = abs(np.int32(pr[x]) - np.int32(gr[x]))
                    h4[x & 3, d] += 1
            a, b, j = _next_span(fr, j, ch, x0, x1)
    hist = np.zeros(256, np.int64)
    for k in range(4):
        for d in range(256):
            hist[d] += h4[k, d]
    return hist


@_jit
def _k_abs_sq_errors(p, g, t, y, c0, c1, er, qr):
    # er[x], qr[x] = |e|, e*e at the unknown pixels of row y, columns [c0, c1) (0 elsewhere),
    # e = single(a - b) with a, b the alphas in double (u/255 for uint8)
    pr, gr, tr = _span_views(p, g, t, y, c0, c1)
    zero = np.float32(0.0)
    for x in range(c1 - c0):
        e = np.float32(_alpha64(pr[x]) - _alpha64(gr[x]))
        on = tr[x] == 128
        er[x] = abs(e) if on else zero
        qr[x] = e * e if on else zero


@_jit
def _k_sad_mse(p, g, t, y0, y1, x0, x1, flags, ch):
    # sums over the unknown pixels of |e| and e*e (see _k_abs_sq_errors)
    bw = x1 - x0
    n4 = bw - bw % 4
    ea = np.zeros(bw, np.float32)
    eq = np.zeros(bw, np.float32)
    sa = 0.0
    sq = 0.0
    for y in range(y0, y1):
        fr = flags[y]
        a0 = a1 = a2 = a3 = 0.0
        q0 = q1 = q2 = q3 = 0.0
        a, b, j = _next_span(fr, 0, ch, x0, x1)
        while a >= 0:
            _k_abs_sq_errors(p, g, t, y, x0 + a, x0 + b, ea[a:b], eq[a:b])
            a0, a1, a2, a3 = _lanes_add(ea, a, b, n4, a0, a1, a2, a3)
            q0, q1, q2, q3 = _lanes_add(eq, a, b, n4, q0, q1, q2, q3)
            a, b, j = _next_span(fr, j, ch, x0, x1)
        sa += (a0 + a1) + (a2 + a3)
        sq += (q0 + q1) + (q2 + q3)
    return sa, sq
