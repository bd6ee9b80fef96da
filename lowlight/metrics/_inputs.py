"""Input checking, and the prepared inputs that the four metrics share."""
from __future__ import annotations

import cv2
import numpy as np

from . import _kernels as _k
from ._common import numba_enabled


def _as_alpha(x, name: str, fast: bool = False, refuse_01: bool = False):
    """``(alpha, (lo, hi) or None)``: the validated HxW matte, and for a float matte its
    minimum and maximum (found while checking them; mat2gray uses them).

    With ``refuse_01`` (the reference matte ``gt``) a ``uint8`` matte whose values are only 0 and
    1, with at least one 1, is refused as :func:`lowlight.data.read_alpha` refuses it: a 0/1 mask
    read as 0..255 alpha is almost transparent everywhere. A prediction is not refused: an 8-bit
    matte of a model that nearly gives up in the dark (every alpha below 0.006) has exactly those
    levels and is a legitimate (bad) result. An all-zero matte is accepted. With ``fast``
    (numba) the check stops at the first row that holds a value above 1."""
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
        a = np.ascontiguousarray(a)
        if refuse_01 and (_k._k_max_upto(a, 1) if fast else a.max()) == 1:
            raise ValueError(f"{name}: expected 0-255 (uint8) or [0, 1] float; "
                             "got a 0/1 uint8 mask — multiply by 255")
        return a, None
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"{name}: expected dtype uint8 (0..255) or float (0..1), got {a.dtype}")
    a = np.ascontiguousarray(a)
    lo, hi = a.min(), a.max()               # NaN if any pixel is NaN
    if np.isnan(lo) or np.isnan(hi):
        raise ValueError(f"{name}: contains NaN ({int(np.isnan(a).sum())} pixels)")
    if lo < 0 or hi > 1:
        hint = "; a 0..255 matte must have dtype uint8 (or be divided by 255)" if hi > 1 else ""
        raise ValueError(
            f"{name}: float alpha must lie in [0, 1], got values in [{lo:.6g}, {hi:.6g}]{hint}")
    return a, (float(lo), float(hi))


def _trimap_error(t, name):
    bad = (t != 0) & (t != 128) & (t != 255)
    vals = np.unique(t[bad])[:5].tolist()
    return ValueError(
        f"{name}: values must be 0 (background), 128 (unknown) or 255 (foreground); "
        f"found {int(bad.sum())} other pixels, e.g. {vals}")


def _as_trimap(x, name: str = "trimap", fast: bool = False):
    """``(trimap as uint8, scan or None)``: with ``fast`` (numba) the checking pass also
    gives ``(n, (y0, y1, x0, x1), flags)``: the number of unknown pixels, their bounding
    box and the per-row chunk flags (see ``_kernels._k_trimap_scan``)."""
    t = np.asarray(x)
    if t.ndim == 3 and t.shape[2] == 1:
        t = t[:, :, 0]
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D HxW trimap (0/128/255), got shape {t.shape}")
    if t.dtype == np.bool_ or not (np.issubdtype(t.dtype, np.integer)
                                   or np.issubdtype(t.dtype, np.floating)):
        raise ValueError(f"{name}: expected numeric values 0/128/255, got dtype {t.dtype}")
    if t.dtype != np.uint8 or not fast or t.size == 0:
        if ((t != 0) & (t != 128) & (t != 255)).any():
            raise _trimap_error(t, name)
        t = t if t.dtype == np.uint8 else t.astype(np.uint8)
    t = np.ascontiguousarray(t)
    if not fast or t.size == 0:
        return t, None
    bad, n, y0, y1, x0, x1, flags = _k._k_trimap_scan(t, _k.CHUNK)
    if bad:
        raise _trimap_error(t, name)
    return t, (int(n), (int(y0), int(y1), int(x0), int(x1)), flags)


def check_inputs(pred, gt, trimap):
    """Validate ``(pred, gt, trimap)`` and return them as the metrics use them.

    ``pred``/``gt``: HxW (or HxWx1) ``uint8`` 0..255 or float 0..1 (float16 is widened
    to float32); ``trimap``: HxW (or HxWx1) with values 0/128/255 only, returned as
    ``uint8``. Raises ``ValueError`` naming the argument for a wrong number of channels,
    a shape mismatch, another dtype, NaN, float values outside [0, 1], a ``uint8`` 0/1
    reference ``gt`` (values 0 and 1 only, some 1: multiply it by 255) or trimap values other than
    0/128/255. Introduced in notebook 07.
    """
    P = Prepared(pred, gt, trimap)
    return P.pred, P.gt, P.trimap


class Prepared:
    """Validated inputs and what the metrics share: the number ``n`` of unknown pixels,
    their bounding ``box`` (y0, y1, x0, x1), the chunk ``flags`` of the numba path,
    and on demand the unknown mask (0/1) and each matte's minimum and maximum. One
    instance serves all four metrics in :func:`lowlight.metrics.all_metrics`."""

    __slots__ = ("pred", "gt", "trimap", "n", "box", "fast", "flags", "_range", "_mask")

    def __init__(self, pred, gt, trimap):
        self.fast = fast = numba_enabled()
        self.pred, rp = _as_alpha(pred, "pred", fast)
        self.gt, rg = _as_alpha(gt, "gt", fast, refuse_01=True)
        self.trimap, scan = _as_trimap(trimap, fast=fast)
        if self.pred.shape != self.gt.shape:
            raise ValueError(f"pred and gt: shapes differ, {self.pred.shape} vs {self.gt.shape}")
        if self.trimap.shape != self.pred.shape:
            raise ValueError(f"trimap: shape {self.trimap.shape} differs from pred/gt "
                             f"shape {self.pred.shape}")
        self._range = [rp, rg]
        self._mask = None
        self.flags = None
        if scan is None:
            self.n = cv2.countNonZero(self.mask)
            if self.n:
                x, y, w, h = cv2.boundingRect(self.mask)
                self.box = (y, y + h, x, x + w)
            else:
                self.box = (0, 0, 0, 0)
        else:
            self.n, self.box, self.flags = scan

    @property
    def mask(self):
        """uint8 0/1 image of the unknown pixels (the numpy/OpenCV fallbacks use it)."""
        if self._mask is None:
            self._mask = (self.trimap == 128).view(np.uint8)
        return self._mask

    def value_range(self, i: int):
        """``(min, max)`` of ``pred`` (i = 0) or ``gt`` (i = 1), as Python floats."""
        if self._range[i] is None:
            lo, hi, _, _ = cv2.minMaxLoc(self.pred if i == 0 else self.gt)
            self._range[i] = (float(lo), float(hi))
        return self._range[i]

    def crop(self, a):
        y0, y1, x0, x1 = self.box
        return a[y0:y1, x0:x1]
