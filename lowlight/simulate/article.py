"""The article's §2.1 formula, reproduced in behaviour so the course can measure it (notebook 01)."""
from __future__ import annotations

import numpy as np

from ..color import check_image


from .params import _as_rng


# --------------------------------------------------------------------------- the article's formula


def article_low_light(image: np.ndarray, gamma: float = 0.4, scale: float = 0.3, rng=None) -> np.ndarray:
    """The article's §2.1 low-light formula, reproduced (notebook 01).

    ``image`` is RGB uint8 (0-255) or float in [0, 1]; the result is uint8, as in the
    article. The Poisson sample is drawn from ``rng`` (a ``numpy.random.Generator`` or a
    seed) in one call over the whole image. RGBA input keeps its alpha channel.

    This is the formula *as written*, flaws included -- use :func:`simulate` for data.
    """
    if not (isinstance(gamma, (int, float)) and gamma > 0):
        raise ValueError(f"gamma: expected a positive number, got {gamma!r}")
    if not (isinstance(scale, (int, float)) and scale >= 0):
        raise ValueError(f"scale: expected a non-negative number, got {scale!r}")
    rgb, alpha, is_uint8 = check_image(image)
    rng = _as_rng(rng)
    x = rgb.astype(np.float32) / np.float32(255.0) if is_uint8 else rgb.astype(np.float32)
    dark = x ** (1.0 / gamma) * scale
    noise = rng.poisson(dark * 255) / 255.0
    out = np.clip(dark + noise * 0.05, 0, 1)
    out = (out * 255).astype(np.uint8)  # truncation, as in the article
    if alpha is not None:
        a = alpha if alpha.dtype == np.uint8 else np.round(alpha * 255).astype(np.uint8)
        out = np.concatenate([out, a[..., None]], axis=2)
    return out
