"""numba kernels of the Connectivity error (see ``_connectivity.py`` for the definition).

A pixel's *level* is how many of the thresholds t_1..t_K both alphas reach, i.e.
``min(pred, gt) >= t_k`` compared exactly. The levels are never stored: one pass
computes them row by row and encodes them as maximal horizontal runs per level
(skipping 8 equal levels at a time), a union-find joins overlapping runs of
consecutive rows (the 4-connected components of every level), the largest component
per level is picked with MATLAB's tie rule, and a final pass over the unknown box
recomputes each pixel's level and finds its ``l`` from the first run on its chain of
nested runs that leaves omega.
"""
from __future__ import annotations

import numpy as np

from ._kernels import _alpha32, _jit, _lanes_add, _min_alpha, _next_span, _span_views

_INT64_MAX = np.iinfo(np.int64).max
_ONES8 = np.uint64(0x0101010101010101)


@_jit
def _k_level_row(pr, gr, thr, m, lev):
    # lev[x]: how many of thr[1..K] min(pr[x], gr[x]) reaches (thr holds uint8 values
    # for two uint8 mattes, the smallest float32 >= t_k else); m: scratch, same length
    K = thr.shape[0] - 1
    for x in range(lev.shape[0]):
        m[x] = _min_alpha(pr[x], gr[x])
        lev[x] = 0
    one = np.uint8(1)
    nil = np.uint8(0)
    for k in range(1, K + 1):
        tk = thr[k]
        for x in range(lev.shape[0]):
            lev[x] += one if m[x] >= tk else nil


@_jit
def _k_level_runs(p, g, thr):
    # Maximal horizontal runs [rs, re) of lev >= k for every level k, in the order they
    # end (row by row, left to right): (level, row, rs, re) and their number.
    H, W = p.shape
    K = thr.shape[0] - 1
    m = np.empty(W, thr.dtype)
    lev = np.zeros((W // 8 + 2) * 8, np.uint8)  # lev[W] = 0 closes the runs open at the end
    words = lev.view(np.uint64)
    reserve = K * (W // 2 + 1)              # the most runs one row can close
    cap = 4 * reserve
    ok = np.empty(cap, np.uint8)
    orow = np.empty(cap, np.int32)
    ors = np.empty(cap, np.int32)
    ore = np.empty(cap, np.int32)
    n = 0
    start = np.zeros(K + 1, np.int32)
    for r in range(H):
        if n + reserve > cap:
            cap = 2 * cap
            ok2 = np.empty(cap, np.uint8)
            orow2 = np.empty(cap, np.int32)
            ors2 = np.empty(cap, np.int32)
            ore2 = np.empty(cap, np.int32)
            ok2[:n] = ok[:n]
            orow2[:n] = orow[:n]
            ors2[:n] = ors[:n]
            ore2[:n] = ore[:n]
            ok, orow, ors, ore = ok2, orow2, ors2, ore2
        _k_level_row(p[r], g[r], thr, m, lev[:W])
        prev = 0
        pat = np.uint64(0)
        c = 0
        while c <= W:
            if (c & 7) == 0 and c + 8 <= W and words[c >> 3] == pat:
                c += 8                      # 8 pixels at the current level: no change
                continue
            v = np.int64(lev[c])
            if v > prev:                    # runs of levels prev+1 .. v open at c
                for k in range(prev + 1, v + 1):
                    start[k] = c
            elif v < prev:                  # runs of levels v+1 .. prev end at c
                for k in range(v + 1, prev + 1):
                    ok[n] = k
                    orow[n] = r
                    ors[n] = start[k]
                    ore[n] = c
                    n += 1
            if v != prev:
                prev = v
                pat = np.uint64(prev) * _ONES8
            c += 1
    return ok, orow, ors, ore, n


@_jit
def _k_sort_runs(ok, orow, ors, ore, n, K, H):
    # Runs of level k to [off[k], off[k+1]) in (row, start) order; rowptr[k, r] is the
    # first run of level k in row r.
    rowptr = np.zeros((K + 1, H + 1), np.int64)
    for i in range(n):
        rowptr[ok[i], orow[i] + 1] += 1
    off = np.zeros(K + 2, np.int64)
    for k in range(1, K + 1):
        rowptr[k, 0] = off[k]
        for r in range(H):
            rowptr[k, r + 1] += rowptr[k, r]
        off[k + 1] = rowptr[k, H]
    wp = rowptr.copy()
    rs = np.empty(n, np.int32)
    re = np.empty(n, np.int32)
    for i in range(n):
        k = ok[i]
        r = orow[i]
        j = wp[k, r]
        rs[j] = ors[i]
        re[j] = ore[i]
        wp[k, r] = j + 1
    return rs, re, rowptr, off


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
        # roots are the smallest index of their component (unions keep the smaller), so
        # one forward pass points every run at its root
        for i in range(a, b):
            parent[i] = parent[parent[i]]
        size = np.zeros(b - a, np.int64)
        for i in range(a, b):
            size[parent[i] - a] += re[i] - rs[i]
        bsize = np.int64(0)
        for q in range(b - a):
            bsize = max(bsize, size[q])
        best = -1
        bfirst = _INT64_MAX
        for r in range(H):              # ties: first pixel first in column-major order
            for i in range(rowptr[k, r], rowptr[k, r + 1]):
                q = parent[i] - a
                if size[q] == bsize:
                    f = np.int64(rs[i]) * H + r     # column-major index of its first pixel
                    if f < bfirst:
                        best = q
                        bfirst = f
        for i in range(a, b):
            inomega[i] = (parent[i] - a) == best
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
def _k_phi_errors(p, g, t, y, c0, c1, lr, theta32, er):
    # er[x] = |phi(p) - phi(g)| at the unknown pixels of row y, columns [c0, c1) (0
    # elsewhere): phi = 1 - d*(d >= theta), d = alpha - l in single, l = lr[x]
    pr, gr, tr = _span_views(p, g, t, y, c0, c1)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for x in range(c1 - c0):
        l = lr[x]
        dp = _alpha32(pr[x]) - l
        dg = _alpha32(gr[x]) - l
        fp = one - dp if dp >= theta32 else one
        fg = one - dg if dg >= theta32 else one
        er[x] = abs(fp - fg) if tr[x] == 128 else zero


@_jit
def _k_phi_sum(p, g, t, y0, y1, x0, x1, flags, ch, thr, rs, re, rowptr, brk, kmax,
               l32, theta32, skip):
    # Sum over the unknown pixels of |phi(p) - phi(g)|, phi = 1 - d*(d >= theta),
    # d = alpha - l in single precision as in MATLAB. Per pixel l = t_n with n its level
    # (with ``skip``, l = 1 when n = kmax, the top non-empty level: the empty levels above are
    # skipped; without, l = t_kmax: they disconnect it), unless a break run covers it.
    # Box rows are processed span by span of chunks holding unknown pixels.
    K = thr.shape[0] - 1
    bw = x1 - x0
    n4 = bw - bw % 4
    m = np.empty(bw, thr.dtype)
    lev = np.empty(bw, np.uint8)
    lrow = np.empty(bw, np.float32)
    erow = np.empty(bw, np.float32)
    lut = l32.copy()
    if skip:
        lut[kmax] = l32[K]
    total = 0.0
    for y in range(y0, y1):
        fr = flags[y]
        a, b, j = _next_span(fr, 0, ch, x0, x1)
        if a < 0:
            continue
        lo = a
        hi = b
        while a >= 0:                       # l from the pixels' levels
            _k_level_row(p[y, x0 + a:x0 + b], g[y, x0 + a:x0 + b], thr, m[a:b], lev[a:b])
            la = lev[a:b]
            lr = lrow[a:b]
            for x in range(b - a):
                lr[x] = lut[la[x]]
            hi = b
            a, b, j = _next_span(fr, j, ch, x0, x1)
        for k in range(1, kmax + 1):        # pixels of break runs left omega at level k
            lk = l32[k - 1]
            for i in range(rowptr[k, y], rowptr[k, y + 1]):
                if brk[i]:
                    for x in range(max(rs[i] - x0, lo), min(re[i] - x0, hi)):
                        lrow[x] = lk
        s0 = s1 = s2 = s3 = 0.0
        a, b, j = _next_span(fr, 0, ch, x0, x1)
        while a >= 0:
            _k_phi_errors(p, g, t, y, x0 + a, x0 + b, lrow[a:b], theta32, erow[a:b])
            s0, s1, s2, s3 = _lanes_add(erow, a, b, n4, s0, s1, s2, s3)
            a, b, j = _next_span(fr, j, ch, x0, x1)
        total += (s0 + s1) + (s2 + s3)
    return total
