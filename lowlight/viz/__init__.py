"""Presentation: figures and widgets -- the only part of the package that imports matplotlib.

``save_fig``, ``brighten`` and ``show_images`` here; :mod:`.evaluation` draws the evaluation's
figures, :mod:`.widgets` is the exposure/noise explorer of notebook 01.
"""
from __future__ import annotations

from pathlib import Path

from .. import config
from ..io import atomic_path


def save_fig(fig, name: str, profile: config.Profile, dpi: int = 110) -> Path:
    """Save ``fig`` as ``<figures dir>/<name>.png`` atomically and return the path.

    The figures directory depends on the profile (see :func:`lowlight.config.figures_dir`):
    ``quick`` writes the committed ``figures/``; other profiles write under ``runs/``.
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"save_fig: name must be a plain file stem, got {name!r}")
    stem = name[:-4] if name.endswith(".png") else name
    path = config.figures_dir(profile) / f"{stem}.png"
    with atomic_path(path) as tmp:
        # fixed metadata so that the same figure gives the same bytes
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path


def brighten(img, target: float = 0.5, max_gain: float | None = None):
    """A dark image multiplied by a gain so its mean becomes ``target`` (in [0, 1] units),
    clipped, for display only -- it shows the noise a camera's night mode would have to undo.
    uint8 in -> uint8 out, float in [0, 1] -> float. Returns ``(image, gain)``; the gain is at
    least 1 and at most ``max_gain``."""
    import numpy as np

    a = np.asarray(img)
    is_u8 = a.dtype == np.uint8
    mean = float(a.mean()) / 255.0 if is_u8 else float(a.mean())
    gain = max(1.0, target / max(mean, (1.0 / 255.0) if is_u8 else 1e-4))
    if max_gain is not None:
        gain = min(gain, float(max_gain))
    if is_u8:
        return np.clip(a.astype(np.float32) * gain, 0, 255).astype(np.uint8), gain
    return np.clip(a * gain, 0, 1), gain


def show_images(images, titles=None, cols: int | None = None, size: float = 3.0, cmap=None):
    """A row/grid of images (HxW or HxWx3, uint8 or float in [0, 1]); returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    images = list(images)
    n = len(images)
    cols = cols or n
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = np.asarray(images[i])
        ax.imshow(img, cmap=cmap or ("gray" if img.ndim == 2 else None),
                  vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
        if titles:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig
