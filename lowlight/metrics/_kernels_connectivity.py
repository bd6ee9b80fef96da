"""numba kernels of the Connectivity error (see ``connectivity.py`` for the definition).

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

from ._kernels import _chunk_span, _jit, _lanes_add, _alpha32, _min_alpha

_INT64_MAX = np.iinfo(np.int64).max
_ONES8 = np.uint64(0x0101010101010101)


@_jit
def _k_level_row(p, g, r, a, b, lut32, thr, m, lev):
    # lev[x - off] for columns [a, b) of row r: how many of thr[1..K] min(p, g) reaches
    # (thr holds uint8 values for two uint8 mattes, the smallest float32 >= t_k else)
    K = thr.shape[0] - 1
    pr = p[r]
    gr = g[r]
    for x in range(a, b):
        m[x] = _min_alpha(pr[x], gr[x], lut32)
        lev[x] = 0
    one = np.uint8(1)
    nil = np.uint8(0)
    for k in range(1, K + 1):
        tk = thr[k]
        for x in range(a, b):
            lev[x] += one if m[x] >= tk else nil


@_jit
def _k_step(c, v, prev, r, start, ok, orow, ors, ore, n):
    # level changes from prev to v at column c of row r: open or close runs
    if v > prev:
        for k in range(prev + 1, v + 1):
            start[k] = c
    else:
        for k in range(v + 1, prev + 1):
            ok[n] = k
            orow[n] = r
            ors[n] = start[k]
            ore[n] = c
            n += 1
    return n


@_jit
def _k_level_runs(p, g, lut32, thr):
    # Maximal horizontal runs [rs, re) of lev >= k for every level k, in the order they
    # end (row by row, left to right): (level, row, rs, re) and their number.
    H, W = p.shape
    K = thr.shape[0] - 1
    nw = W // 8
    m = np.empty(W, thr.dtype)
    lev = np.zeros(nw * 8 + 8, np.uint8)
    words = lev.view(np.uint64)
    reserve = K * (W // 2 + 1)          # the most runs one row can close
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
        _k_level_row(p, g, r, 0, W, lut32, thr, m, lev)
        prev = 0
        pat = np.uint64(0)
        for wi in range(nw):
            if words[wi] == pat:        # 8 pixels at the current level: nothing changes
                continue
            for c in range(wi * 8, wi * 8 + 8):
                v = np.int64(lev[c])
                if v != prev:
                    n = _k_step(c, v, prev, r, start, ok, orow, ors, ore, n)
                    prev = v
            pat = np.uint64(prev) * _ONES8
        for c in range(nw * 8, W):
            v = np.int64(lev[c])
            if v != prev:
                n = _k_step(c, v, prev, r, start, ok, orow, ors, ore, n)
                prev = v
        n = _k_step(W, 0, prev, r, start, ok, orow, ors, ore, n)
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
def _k_phi_sum(p, g, t, y0, x0, x1, flags, ch, lut32, thr, rs, re, rowptr, brk, kmax,
               l32, theta32):
    # Sum over the unknown pixels of |phi(p) - phi(g)|, phi = 1 - d*(d >= theta),
    # d = alpha - l in single precision as in MATLAB. Per pixel l = t_n with n its level
    # (l = 1 when n = kmax, the top non-empty level), unless a break run covers it.
    K = thr.shape[0] - 1
    bw = x1 - x0
    n4 = bw - bw % 4
    bh, nch = flags.shape
    m = np.empty(x1, thr.dtype)
    lev = np.empty(x1, np.uint8)
    lrow = np.empty(bw, np.float32)
    erow = np.empty(bw, np.float32)
    lut = l32.copy()
    lut[kmax] = l32[K]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    total = 0.0
    for yi in range(bh):
        fr = flags[yi]
        jlo, jhi = _chunk_span(fr)
        if jlo < 0:
            continue
        y = y0 + yi
        a = jlo * ch
        b = min((jhi + 1) * ch, bw)
        _k_level_row(p, g, y, x0 + a, x0 + b, lut32, thr, m, lev)
        for x in range(a, b):
            lrow[x] = lut[lev[x0 + x]]
        for k in range(1, kmax + 1):
            lk = l32[k - 1]
            for i in range(rowptr[k, y], rowptr[k, y + 1]):
                if brk[i]:
                    for x in range(max(rs[i] - x0, a), min(re[i] - x0, b)):
                        lrow[x] = lk
        pr = p[y]
        gr = g[y]
        tr = t[y]
        s0 = s1 = s2 = s3 = 0.0
        for j in range(jlo, jhi + 1):
            if fr[j] == 0:
                continue
            ca = j * ch
            cb = min(ca + ch, bw)
            for x in range(ca, cb):
                X = x0 + x
                l = lrow[x]
                dp = _alpha32(pr[X], lut32) - l
                dg = _alpha32(gr[X], lut32) - l
                fp = one - dp if dp >= theta32 else one
                fg = one - dg if dg >= theta32 else one
                erow[x] = abs(fp - fg) if tr[X] == 128 else zero
            s0, s1, s2, s3 = _lanes_add(erow, ca, cb, n4, s0, s1, s2, s3)
        total += (s0 + s1) + (s2 + s3)
    return total
