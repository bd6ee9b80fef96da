"""Compositing ``I = alpha*F + (1-alpha)*B`` the way matting data sets do it (notebook 01b).

Matting data sets (Composition-1k, Distinctions-646, AM-2k, ...) composite in 8-bit sRGB
without linearising, with the alpha matte stored as an 8-bit PNG.  We do the same, and we
quantise alpha to 8 bits *before* compositing so that the stored ``alpha.png`` and the
stored composite satisfy the equation to within rounding (half a grey level).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "to_alpha_float",
    "to_alpha_uint8",
    "composite",
    "estimate_foreground",
    "recomposite",
    "fractional_fraction",
]


def _check_rgb(name: str, img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{name}: expected an RGB image HxWx3, got shape {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8, got {img.dtype}")
    return img


def to_alpha_float(alpha) -> np.ndarray:
    """Alpha as float32 HxW in [0, 1] from uint8 (0..255) or float input.  Notebook 01b."""
    a = np.asarray(alpha)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"alpha: expected a single-channel HxW matte, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if a.dtype.kind == "f":
        if a.size and (np.nanmin(a) < -1e-6 or np.nanmax(a) > 1 + 1e-6):
            raise ValueError("alpha: float alpha must lie in [0, 1]")
        return np.clip(a.astype(np.float32), 0.0, 1.0)
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    raise ValueError(f"alpha: expected uint8 or float, got dtype {a.dtype}")


def to_alpha_uint8(alpha) -> np.ndarray:
    """Alpha as uint8 HxW (round half up of ``255*alpha``).  Notebook 01b."""
    a = np.asarray(alpha)
    if a.dtype == np.uint8:
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        if a.ndim != 2:
            raise ValueError(f"alpha: expected a single-channel HxW matte, got shape {a.shape}")
        return a
    return np.floor(to_alpha_float(a) * 255.0 + 0.5).astype(np.uint8)


def composite(fg: np.ndarray, alpha, bg: np.ndarray) -> np.ndarray:
    """``round(alpha*F + (1-alpha)*B)`` in 8-bit sRGB; returns uint8 HxWx3.  Notebook 01b.

    ``alpha`` may be uint8 or float; it is quantised to 8 bits first (as it will be stored),
    so the result matches ``alpha.png`` exactly up to rounding of the composite.
    """
    fg = _check_rgb("fg", fg)
    bg = _check_rgb("bg", bg)
    a8 = to_alpha_uint8(alpha)
    if fg.shape != bg.shape or a8.shape != fg.shape[:2]:
        raise ValueError(
            f"composite: sizes differ: fg {fg.shape}, bg {bg.shape}, alpha {a8.shape}"
        )
    a = a8.astype(np.uint32)[..., None]
    out = (a * fg.astype(np.uint32) + (255 - a) * bg.astype(np.uint32) + 127) // 255
    return out.astype(np.uint8)


def estimate_foreground(image: np.ndarray, alpha, method: str = "ml") -> np.ndarray:
    """A clean foreground ``F`` (uint8 HxWx3) from a real photo and its alpha.  Notebook 01b.

    Re-compositing a real photo on a new background with ``F = image`` drags the old
    background's colour into every half-transparent pixel (colour bleeding: hair keeps a
    halo of the old scene).  Solving for ``F`` fixes that; ``method="ml"`` uses pymatting's
    multi-level foreground estimation (Germer et al. 2020), the standard tool for this.
    ``method="none"`` returns the image unchanged (for comparison).
    """
    image = _check_rgb("image", image)
    a = to_alpha_float(alpha)
    if a.shape != image.shape[:2]:
        raise ValueError(f"estimate_foreground: image {image.shape} and alpha {a.shape} differ in size")
    if method == "none":
        return image.copy()
    if method != "ml":
        raise ValueError(f"estimate_foreground: method must be 'ml' or 'none', got {method!r}")
    from pymatting import estimate_foreground_ml

    fg = estimate_foreground_ml(image.astype(np.float64) / 255.0, a.astype(np.float64))
    return np.clip(np.asarray(fg) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def recomposite(image: np.ndarray, alpha, background: np.ndarray, method: str = "ml") -> np.ndarray:
    """Put the subject of a real ``image`` (with its ``alpha``) on a new ``background``.

    Estimates the foreground first (see :func:`estimate_foreground`), then
    :func:`composite`.  Notebook 01b.
    """
    fg = estimate_foreground(image, alpha, method=method)
    return composite(fg, alpha, background)


def fractional_fraction(alpha, region: str = "all") -> float:
    """Fraction of pixels whose 8-bit alpha is strictly between 0 and 255.  Notebook 01b.

    ``region="all"`` divides by all pixels, ``region="object"`` by the pixels with alpha > 0
    (how much of the object is soft rather than how big it is).
    """
    a8 = to_alpha_uint8(alpha)
    frac = (a8 > 0) & (a8 < 255)
    if region == "all":
        return float(frac.mean())
    if region == "object":
        n = int((a8 > 0).sum())
        return float(frac.sum() / n) if n else 0.0
    raise ValueError(f"fractional_fraction: region must be 'all' or 'object', got {region!r}")
