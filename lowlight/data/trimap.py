"""Trimaps from alpha mattes, for evaluation (notebook 01; used in 07).

A trimap marks definite background (0), definite foreground (255) and an *unknown* band
(128) where the metrics of the matting benchmarks are computed.  The band is every pixel
that is not exactly 0 or 255 in alpha, widened by ``width`` pixels on both sides
(dilation of the non-background, erosion of the foreground), as the Composition-1k and
AlphaMatting.com trimaps are made.
"""
from __future__ import annotations

import cv2
import numpy as np

from .compositing import to_alpha_uint8

__all__ = ["TRIMAP_BG", "TRIMAP_UNKNOWN", "TRIMAP_FG", "default_trimap_width", "trimap_from_alpha"]

TRIMAP_BG, TRIMAP_UNKNOWN, TRIMAP_FG = 0, 128, 255


def default_trimap_width(height: int, width: int) -> int:
    """Band half-width used when none is given: 1.5 % of the short side, at least 1 pixel
    (8 px at 512, 2 px at 128)."""
    return max(1, int(round(0.015 * min(height, width))))


def trimap_from_alpha(alpha, width: int | None = None) -> np.ndarray:
    """uint8 HxW trimap with values exactly 0 / 128 / 255.  Notebook 01.

    ``width``: half-width in pixels of the unknown band grown around every fractional or
    boundary pixel (``None``: :func:`default_trimap_width`; ``0``: the band is exactly the
    fractional pixels).
    """
    a8 = to_alpha_uint8(alpha)
    h, w = a8.shape
    if width is None:
        width = default_trimap_width(h, w)
    if not isinstance(width, (int, np.integer)) or width < 0:
        raise ValueError(f"trimap_from_alpha: width must be an int >= 0, got {width!r}")
    fg = (a8 == 255).astype(np.uint8)
    not_bg = (a8 > 0).astype(np.uint8)
    if width > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
        fg = cv2.erode(fg, k, borderType=cv2.BORDER_REPLICATE)
        not_bg = cv2.dilate(not_bg, k, borderType=cv2.BORDER_REPLICATE)
    tri = np.full((h, w), TRIMAP_UNKNOWN, np.uint8)
    tri[not_bg == 0] = TRIMAP_BG
    tri[fg == 1] = TRIMAP_FG
    return tri
