"""numba kernels of the Gradient error (see ``gradient.py`` for the definition).

The Gaussian-derivative filters are rank one and run as 1-D passes in double precision,
row by row through a ring of 9 horizontally filtered rows per matte, fused with the
amplitude and the error sum. Only the 32-column chunks of the unknown box that hold
unknown pixels are filtered (the horizontal pass also where a chunk within 4 rows
needs it); per pixel the arithmetic, and so every single-precision error, is the same
as filtering the whole box. The 9-tap loops are written out so that LLVM turns them
into SIMD code.
"""
from __future__ import annotations

import numpy as np

from ._kernels import _chunk_span, _jit, _lanes_add


@_jit
def _k_fill_row(img, r, x0, a, b, xb):
    # xb[j] = img[r, x0 - 4 + j] for j in [a, b), columns outside the image replicate
    # its border (MATLAB's 'replicate'); inside it they are real data
    W = img.shape[1]
    for j in range(a, b):
        c = x0 - 4 + j
        if c < 0:
            c = 0
        elif c >= W:
            c = W - 1
        xb[j] = img[r, c]


@_jit
def _k_row_pass(xb, a, b, gk, dk, A, B):
    # box columns [a, b) filtered horizontally by the Gaussian gk (-> A) and the flipped
    # derivative dk (-> B); xb[x + 4] is box column x
    g0, g1, g2, g3, g4 = gk[0], gk[1], gk[2], gk[3], gk[4]
    d0, d1, d2, d3 = dk[0], dk[1], dk[2], dk[3]
    for x in range(a, b):
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
def _k_column_pass(Ap, Bp, Ag, Bg, sl, gk, dk, scale_p, scale_g, trow, x0, a, b, erow):
    # Vertical pass over the 9 buffered rows (ring slots sl[0..8], top to bottom) for box
    # columns [a, b), then (single(amp_p) - single(amp_g))^2 at unknown pixels, with
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
    for x in range(a, b):
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
        erow[x] = e * e if trow[x0 + x] == 128 else zero


@_jit
def _k_gradient(p, g, t, y0, x0, x1, flags, ch, scale_p, scale_g, gk, dk):
    # Sum over the unknown pixels of (single(amp_p) - single(amp_g))^2, one box row at a
    # time; flags[y - y0, j]: row y has unknown pixels in chunk j (columns j*ch ...).
    H = p.shape[0]
    bw = x1 - x0
    n4 = bw - bw % 4
    bh, nch = flags.shape
    # need[v - y0 + 4, j]: the horizontal pass of virtual row v is used in chunk j
    need = np.zeros((bh + 8, nch), np.uint8)
    for yi in range(bh):
        fr = flags[yi]
        for j in range(nch):
            if fr[j] != 0:
                for v in range(yi, yi + 9):
                    need[v, j] = 1
    Ap = np.empty((9, bw))
    Bp = np.empty((9, bw))
    Ag = np.empty((9, bw))
    Bg = np.empty((9, bw))
    xbp = np.empty(bw + 8)
    xbg = np.empty(bw + 8)
    erow = np.empty(bw, np.float32)
    sl = np.empty(9, np.int64)
    total = 0.0
    for vi in range(bh + 8):
        # horizontal pass of virtual row v = y0 - 4 + vi (rows outside the image
        # replicate its first / last row) into ring slot vi % 9
        nr = need[vi]
        jlo, jhi = _chunk_span(nr)
        if jlo >= 0:
            rr = min(max(y0 - 4 + vi, 0), H - 1)
            a = jlo * ch
            b = min((jhi + 1) * ch, bw)
            _k_fill_row(p, rr, x0, a, b + 8, xbp)
            _k_fill_row(g, rr, x0, a, b + 8, xbg)
            s = vi % 9
            for j in range(jlo, jhi + 1):
                if nr[j] != 0:
                    a = j * ch
                    b = min(a + ch, bw)
                    _k_row_pass(xbp, a, b, gk, dk, Ap[s], Bp[s])
                    _k_row_pass(xbg, a, b, gk, dk, Ag[s], Bg[s])
        if vi < 8:
            continue
        # output row y = y0 + yi once the ring holds its rows y-4 .. y+4
        yi = vi - 8
        fr = flags[yi]
        jlo, jhi = _chunk_span(fr)
        if jlo < 0:
            continue
        for k in range(9):
            sl[k] = (yi + k) % 9
        trow = t[y0 + yi]
        s0 = s1 = s2 = s3 = 0.0
        for j in range(jlo, jhi + 1):
            if fr[j] != 0:
                a = j * ch
                b = min(a + ch, bw)
                _k_column_pass(Ap, Bp, Ag, Bg, sl, gk, dk, scale_p, scale_g, trow, x0, a, b, erow)
                s0, s1, s2, s3 = _lanes_add(erow, a, b, n4, s0, s1, s2, s3)
        total += (s0 + s1) + (s2 + s3)
    return total
