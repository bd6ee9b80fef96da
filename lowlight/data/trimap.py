"""Trimaps and the *unknown band* of an alpha matte -- one definition, numpy and torch (notebooks 01b, 05, 07).

A trimap marks definite background (0), definite foreground (255) and an *unknown* band
(128) where the metrics of the matting benchmarks are computed (notebook 07) and where an
unknown-region loss looks (notebook 05, ``MattingLoss(region="unknown")``). The definition,
shared by every form below:

* the alpha is read in 8 bits, ``a8 = floor(255 * alpha + 0.5)`` (as it is stored, see
  :func:`~lowlight.data.compositing.to_alpha_uint8`); *definite foreground* is ``a8 == 255``,
  *definite background* is ``a8 == 0``;
* both are eroded by the same structuring element, :func:`trimap_kernel` -- OpenCV's
  ``MORPH_ELLIPSE`` of size ``(2 width + 1)``, a disc-like kernel that reaches ``width``
  pixels along the axes; pixels outside the image do not erode (identical to OpenCV's
  ``BORDER_REPLICATE`` for this kernel);
* everything else is *unknown*: every fractional pixel plus a band of about ``width``
  pixels on both sides of every hard edge -- as the Composition-1k and AlphaMatting.com
  trimaps are made.

``width=None`` means :func:`default_trimap_width` of the image (1.5 % of the short side).

=========================  ==========================================================
:func:`trimap_from_alpha`  numpy, uint8 ``H x W`` trimap (0 / 128 / 255) -- the data set's
:func:`unknown_band`       numpy, bool ``H x W`` unknown band
:func:`unknown_band_torch` torch, ``N x C x H x W`` {0, 1} float band -- the loss's weight
=========================  ==========================================================

The numpy and torch forms agree exactly (tested on random alphas); the torch form's morphology
is :func:`lowlight.filters.dilate`.
"""
from __future__ import annotations

import cv2
import numpy as np

from .compositing import to_alpha_uint8

__all__ = ["TRIMAP_BG", "TRIMAP_UNKNOWN", "TRIMAP_FG", "default_trimap_width", "trimap_kernel",
           "unknown_band", "unknown_band_torch", "trimap_from_alpha"]

TRIMAP_BG, TRIMAP_UNKNOWN, TRIMAP_FG = 0, 128, 255


def default_trimap_width(height: int, width: int) -> int:
    """Band half-width used when none is given: 1.5 % of the short side, at least 1 pixel
    (8 px at 512, 2 px at 128)."""
    return max(1, int(round(0.015 * min(height, width))))


def _resolve_width(width, h: int, w: int, fn: str) -> int:
    if width is None:
        return default_trimap_width(h, w)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 0:
        raise ValueError(f"{fn}: width must be an int >= 0, got {width!r}")
    return int(width)


def trimap_kernel(width: int) -> np.ndarray:
    """The structuring element of the unknown band: uint8 ``(2 width + 1)`` square holding
    OpenCV's ``MORPH_ELLIPSE`` (1 inside). Symmetric under a half turn, and each row is a
    centred run no longer than the middle row's."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))


def _definite(a8: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Eroded definite foreground and background (uint8 0/1) of an 8-bit alpha."""
    fg = (a8 == 255).astype(np.uint8)
    bg = (a8 == 0).astype(np.uint8)
    if width > 0:
        k = trimap_kernel(width)
        fg = cv2.erode(fg, k, borderType=cv2.BORDER_REPLICATE)
        bg = cv2.erode(bg, k, borderType=cv2.BORDER_REPLICATE)
    return fg, bg


def unknown_band(alpha, width: int | None = None) -> np.ndarray:
    """bool ``H x W``: the unknown band of an alpha (uint8 0..255 or float in [0, 1]; module docstring)."""
    a8 = to_alpha_uint8(alpha)
    fg, bg = _definite(a8, _resolve_width(width, *a8.shape, "unknown_band"))
    return (fg == 0) & (bg == 0)


def trimap_from_alpha(alpha, width: int | None = None) -> np.ndarray:
    """uint8 ``H x W`` trimap with values exactly 0 / 128 / 255.  Notebook 01b.

    ``width``: half-width in pixels of the unknown band grown around every fractional or
    boundary pixel (``None``: :func:`default_trimap_width`; ``0``: the band is exactly the
    fractional pixels). The band is :func:`unknown_band`.
    """
    a8 = to_alpha_uint8(alpha)
    fg, bg = _definite(a8, _resolve_width(width, *a8.shape, "trimap_from_alpha"))
    tri = np.full(a8.shape, TRIMAP_UNKNOWN, np.uint8)
    tri[bg == 1] = TRIMAP_BG
    tri[fg == 1] = TRIMAP_FG
    return tri


def unknown_band_torch(alpha, width: int | None = None):
    """The unknown band of a batch of alphas, as a loss weight (notebook 05).

    ``alpha``: tensor ``N x C x H x W``, float in [0, 1] (clamped, no check: this runs every
    training step) or uint8 0..255. Returns a tensor of ``alpha``'s shape with values in
    {0, 1} (``alpha``'s float dtype; float32 for uint8 input), without gradient. The same
    definition, kernel and parameters as :func:`unknown_band`: for an ``H x W`` alpha ``a``,
    ``unknown_band_torch(torch.from_numpy(a)[None, None])[0, 0]`` equals ``unknown_band(a)``.
    Use it as ``weight=`` to restrict a loss to the region where matting is hard
    (ViTMatte's ``unknown_l1_loss``); such a loss no longer sees background residue far
    from the subject.
    """
    import torch

    from ..filters import dilate

    if not isinstance(alpha, torch.Tensor) or alpha.ndim != 4 or not (
            alpha.is_floating_point() or alpha.dtype == torch.uint8):
        raise ValueError(f"unknown_band_torch: alpha must be a float (or uint8) tensor N x C x H x W, got "
                         f"{getattr(alpha, 'dtype', type(alpha).__name__)} {tuple(getattr(alpha, 'shape', ()))}")
    n, c, h, w = alpha.shape
    width = _resolve_width(width, h, w, "unknown_band_torch")
    out_dtype = alpha.dtype if alpha.is_floating_point() else torch.float32
    with torch.no_grad():
        if alpha.dtype == torch.uint8:
            a8 = alpha.float()
        else:   # the same float32 operations as to_alpha_uint8, so the two forms agree bit for bit
            a8 = torch.floor(alpha.detach().float().clamp(0.0, 1.0) * 255.0 + 0.5)
        a8 = a8.reshape(n * c, 1, h, w)
        # "outside" of definite fg and of definite bg, stacked as a batch of 2 N C masks
        outside = torch.cat([(a8 != 255), (a8 != 0)]).float()
        if width > 0:
            # a pixel stays definite iff no "outside" pixel lies under the kernel; pixels beyond
            # the border do not count (= BORDER_REPLICATE for this kernel)
            outside = dilate(outside, trimap_kernel(width))
        band = outside[: n * c] * outside[n * c:]      # neither definite fg nor definite bg
        return band.reshape(n, c, h, w).to(out_dtype)
