"""numba kernels of the Gradient error (see ``_gradient.py`` for the definition).

The Gaussian-derivative filters are rank one and run as 1-D passes in double precision,
row by row through a ring of 9 horizontally filtered rows per matte (each matte read in
its own dtype: numba specialises the functions to it); each output row then gets the
two mattes' amplitudes (one function, called once per matte), their squared
single-precision difference and its lane sum. Only the runs of 32-column chunks of the
unknown box that hold unknown pixels are filtered (the horizontal pass also where a
chunk within 4 rows needs it); per pixel the arithmetic, and so every single-precision
error, is the same as filtering the whole box. The 9-tap loops are written out so that
LLVM turns them into SIMD code.
"""
from __future__ import annotations

import numpy as np

from ._kernels import _jit, _lanes_add, _next_span


# Inner loops run from 0 over views: an index that numba cannot prove non-negative
# gets a wrap-around check that keeps LLVM from vectorising the loop.
@_jit
def _k_fill_row(img, r, c0, xb):
    # xb[j] = img[r, c0 + j]; columns outside the image replicate its border (MATLAB's
    # 'replicate'), inside it they are real data
    W = img.shape[1]
    row = img[r]
    lo = min(max(-c0, 0), xb.shape[0])          # xb[lo:hi] lies inside the image
    hi = min(max(W - c0, lo), xb.shape[0])
    for j in range(lo):
        xb[j] = row[0]
    inner = xb[lo:hi]
    src = row[c0 + lo:c0 + hi]
    for j in range(hi - lo):
        inner[j] = src[j]
    for j in range(hi, xb.shape[0]):
        xb[j] = row[W - 1]


@_jit
def _k_row_pass(xb, gk, dk, A, B):
    # A, B filtered horizontally by the Gaussian gk (-> A) and the flipped derivative
    # dk (-> B); xb[x + 4] is the input at output column x
    g0, g1, g2, g3, g4 = gk[0], gk[1], gk[2], gk[3], gk[4]
    d0, d1, d2, d3 = dk[0], dk[1], dk[2], dk[3]
    for x in range(A.shape[0]):
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
def _k_amplitude(A, B, sl, a, b, gk, dk, scale, amp):
    # Vertical pass over columns [a, b) of one matte's 9 buffered rows (ring slots
    # sl[0..8], top to bottom; A: Gaussian-filtered rows, B: derivative-filtered rows):
    # amp[x] = single(scale * sqrt(gx^2 + gy^2)) in double, scale: mat2gray's
    # 1/(max - min); amp is a view of the same columns.
    g0, g1, g2, g3, g4 = gk[0], gk[1], gk[2], gk[3], gk[4]
    d0, d1, d2, d3 = dk[0], dk[1], dk[2], dk[3]
    P0, P1, P2, P3, P4 = (
        B[sl[0], a:b], B[sl[1], a:b], B[sl[2], a:b], B[sl[3], a:b], B[sl[4], a:b])
    P5, P6, P7, P8 = B[sl[5], a:b], B[sl[6], a:b], B[sl[7], a:b], B[sl[8], a:b]
    Q0, Q1, Q2, Q3 = A[sl[0], a:b], A[sl[1], a:b], A[sl[2], a:b], A[sl[3], a:b]
    Q5, Q6, Q7, Q8 = A[sl[5], a:b], A[sl[6], a:b], A[sl[7], a:b], A[sl[8], a:b]
    for x in range(amp.shape[0]):
        gx = (g4 * P4[x] + g0 * (P0[x] + P8[x]) + g1 * (P1[x] + P7[x])
              + g2 * (P2[x] + P6[x]) + g3 * (P3[x] + P5[x]))
        gy = (d0 * (Q0[x] - Q8[x]) + d1 * (Q1[x] - Q7[x])
              + d2 * (Q2[x] - Q6[x]) + d3 * (Q3[x] - Q5[x]))
        amp[x] = np.float32(scale * np.sqrt(gx * gx + gy * gy))


@_jit
def _k_squared_error(amp_p, amp_g, trow, erow):
    # erow[x] = (amp_p[x] - amp_g[x])^2 in single precision at unknown pixels, else 0
    zero = np.float32(0.0)
    for x in range(erow.shape[0]):
        e = amp_p[x] - amp_g[x]
        erow[x] = e * e if trow[x] == 128 else zero


@_jit
def _k_gradient(p, g, t, y0, y1, x0, x1, flags, ch, scale_p, scale_g, gk, dk):
    # Sum over the unknown pixels of (single(amp_p) - single(amp_g))^2, one box row at a
    # time; flags[y, j]: row y has unknown pixels in columns [j*ch, (j+1)*ch).
    H = p.shape[0]
    bw = x1 - x0
    n4 = bw - bw % 4
    bh = y1 - y0
    nch = flags.shape[1]
    # need[v - y0 + 4, j]: the horizontal pass of virtual row v is used in chunk j
    need = np.zeros((bh + 8, nch), np.uint8)
    for yi in range(bh):
        fr = flags[y0 + yi]
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
    amp_p = np.empty(bw, np.float32)
    amp_g = np.empty(bw, np.float32)
    erow = np.empty(bw, np.float32)
    sl = np.empty(9, np.int64)
    total = 0.0
    for vi in range(bh + 8):
        # horizontal pass of virtual row v = y0 - 4 + vi (rows outside the image
        # replicate its first / last row) into ring slot vi % 9, span by span
        nr = need[vi]
        rr = min(max(y0 - 4 + vi, 0), H - 1)
        s = vi % 9
        a, b, j = _next_span(nr, 0, ch, x0, x1)
        while a >= 0:
            _k_fill_row(p, rr, x0 - 4 + a, xbp[a:b + 8])
            _k_fill_row(g, rr, x0 - 4 + a, xbg[a:b + 8])
            _k_row_pass(xbp[a:b + 8], gk, dk, Ap[s, a:b], Bp[s, a:b])
            _k_row_pass(xbg[a:b + 8], gk, dk, Ag[s, a:b], Bg[s, a:b])
            a, b, j = _next_span(nr, j, ch, x0, x1)
        if vi < 8:
            continue
        # output row y = y0 + yi once the ring holds its rows y-4 .. y+4
        yi = vi - 8
        fr = flags[y0 + yi]
        a, b, j = _next_span(fr, 0, ch, x0, x1)
        if a < 0:
            continue
        for k in range(9):
            sl[k] = (yi + k) % 9
        trow = t[y0 + yi]
        s0 = s1 = s2 = s3 = 0.0
        while a >= 0:
            _k_amplitude(Ap, Bp, sl, a, b, gk, dk, scale_p, amp_p[a:b])
            _k_amplitude(Ag, Bg, sl, a, b, gk, dk, scale_g, amp_g[a:b])
            _k_squared_error(amp_p[a:b], amp_g[a:b], trow[x0 + a:x0 + b], erow[a:b])
            s0, s1, s2, s3 = _lanes_add(erow, a, b, n4, s0, s1, s2, s3)
            a, b, j = _next_span(fr, j, ch, x0, x1)
        total += (s0 + s1) + (s2 + s3)
    return total
