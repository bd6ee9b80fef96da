"""Colour: the sRGB transfer curves and luminance -- one definition each (notebooks 01, 05, 07).

Two forms of luminance exist because the course needs two shapes of answer:

* :func:`luminance` -- a per-pixel map ``H x W`` of a numpy image (uint8 or float RGB), used by
  the simulator, the data set statistics, the widgets and the brightness switch of
  :mod:`lowlight.predict`;
* :func:`mean_luminance` -- one number per image of a torch batch ``N x 3 x H x W`` in [0, 1],
  used by the brightness-weighted loss (the article's §4.2 threshold of 0.3 is read on it) and
  by the evaluation's exposure bins.

Both use Rec. 709 weights on the *gamma-encoded* values (no linearisation), which is what
"mean brightness" means in the article's code and in most deployment switches.
"""
from __future__ import annotations

import numpy as np

__all__ = ["LUMA_WEIGHTS", "srgb_to_linear", "linear_to_srgb", "check_image", "luminance", "mean_luminance"]

#: Rec. 709 / sRGB primaries
LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def srgb_to_linear(x):
    """The sRGB decoding curve (IEC 61966-2-1) for floats in [0, 1]; numpy or torch."""
    if _is_torch(x):
        import torch

        return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp(min=0) ** 2.4)
    x = np.asarray(x)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(y):
    """The sRGB encoding curve for linear floats in [0, 1]; numpy or torch."""
    if _is_torch(y):
        import torch

        return torch.where(y <= 0.0031308, y * 12.92, 1.055 * y.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)
    y = np.asarray(y)
    return np.where(y <= 0.0031308, y * 12.92, 1.055 * np.maximum(y, 0.0031308) ** (1 / 2.4) - 0.055)


def check_image(image, name: str = "image"):
    """Validate an RGB/RGBA numpy image; return ``(rgb, alpha or None, is_uint8)``.

    ``rgb`` is a view of the first three channels (dtype unchanged). uint8 is read as 0-255,
    float32/float64 must lie in [0, 1] and be finite -- the alpha channel of RGBA too (an error
    about it says "alpha channel"); anything else raises an error that names ``name`` and says
    what was expected.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array HxWx3 (RGB) or HxWx4 (RGBA), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(
            f"{name}: expected shape HxWx3 (RGB) or HxWx4 (RGBA), got {image.shape}; "
            "grayscale images must be stacked to 3 channels first"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name}: empty image of shape {image.shape}")
    if image.dtype == np.uint8:
        is_uint8 = True
    elif image.dtype in (np.float32, np.float64):
        is_uint8 = False
        # colour and alpha are checked apart, so the message says which one is wrong
        parts = [(name, image[..., :3])]
        if image.shape[2] == 4:
            parts.append((f"{name}: alpha channel (the 4th)", image[..., 3]))
        for what, part in parts:
            if not np.isfinite(part).all():
                raise ValueError(f"{what}: contains NaN or inf; expected floats in [0, 1]")
            lo, hi = float(part.min()), float(part.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(
                    f"{what}: float values must lie in [0, 1], found range [{lo:.4g}, {hi:.4g}] "
                    "(pass uint8 for 0-255 data)"
                )
    else:
        raise TypeError(f"{name}: expected dtype uint8 (0-255) or float32/float64 in [0, 1], got {image.dtype}")
    alpha = image[..., 3] if image.shape[2] == 4 else None
    return image[..., :3], alpha, is_uint8


def luminance(image) -> np.ndarray:
    """Per-pixel Rec. 709 luma of a gamma-encoded RGB(A) numpy image: float32 ``H x W`` in [0, 1]
    (uint8 input is divided by 255; an alpha channel is ignored). Notebook 01."""
    rgb, _, is_uint8 = check_image(image)
    x = rgb.astype(np.float32) / 255.0 if is_uint8 else rgb.astype(np.float32)
    return x @ np.asarray(LUMA_WEIGHTS, dtype=np.float32)


def mean_luminance(image, weights: str = "rec709"):
    """Mean luminance of each image of a torch batch ``N x 3 x H x W`` in [0, 1]: shape ``(N,)``.

    ``weights="rec709"``: Rec. 709 luma ``0.2126 R + 0.7152 G + 0.0722 B`` of the gamma-encoded
    values (the scale the article's 0.3 threshold is read on). ``weights="mean"``: the plain
    channel mean, as in the article's snippet (``torch.mean(image_batch, dim=1)``). The input must
    be the *un-normalised* image: a value outside [0, 1] raises, because after ImageNet
    normalisation a threshold of 0.3 means something else entirely. No gradient flows through
    it (it is a weight, not a loss term). Notebooks 05 and 07.
    """
    import torch

    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"mean_luminance: image must be a tensor N x 3 x H x W (RGB), got "
                         f"{getattr(image, 'shape', type(image).__name__)}")
    if not image.is_floating_point():
        raise TypeError(f"mean_luminance: image must be float RGB in [0, 1], got {image.dtype}")
    with torch.no_grad():
        x = image.detach().float()
        if x.numel():
            lo, hi = float(x.amin()), float(x.amax())
            if lo < -1e-3 or hi > 1.0 + 1e-3:
                raise ValueError(f"mean_luminance: image must be RGB in [0, 1] before any normalisation, got "
                                 f"values in [{lo:.3f}, {hi:.3f}] (ImageNet-normalised input? pass the raw image)")
        if weights == "rec709":
            wts = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            y = (x * wts).sum(1)
        elif weights == "mean":
            y = x.mean(1)
        else:
            raise ValueError(f"mean_luminance: weights must be 'rec709' or 'mean', got {weights!r}")
        return y.flatten(1).mean(1)
