"""Losses for alpha mattes (notebook 05).

The article (§4) trains with ``L = λ1·MSE + λ2·SSIM-loss + λ3·edge`` and raises the edge
weight when the input is dark (§4.2). This module builds those terms, two more that
current matting models use, a composite :class:`MattingLoss` that logs every term, and
the dynamic edge weight -- the article's per-batch scalar reproduced, and per-sample
versions.

Sections (in this order; new families of losses get their own section at the end)

1. input checks and reductions (shared by every term)
2. pixel terms: :func:`mse_loss`, :func:`l1_loss`
3. structure: :func:`ssim_map`, :func:`ssim`, :func:`ssim_loss`
4. edges: :func:`sobel`, :func:`sobel_magnitude`, :func:`edge_loss`
5. Laplacian pyramid: :func:`laplacian_pyramid`, :func:`laplacian_loss`
6. regions: :func:`unknown_region`
7. dynamic weights: :func:`luminance`, :func:`dynamic_edge_weight`
8. the composite: :class:`MattingLoss`
9. teaching fixture: :func:`perturb_alpha` (controlled errors of a ground-truth alpha)

Conventions shared by every term
--------------------------------
* ``pred`` and ``target`` are float tensors ``N x C x H x W`` (alpha mattes: ``C = 1``,
  values in [0, 1]). Half-precision inputs are computed in float32 (SSIM's variances
  cancel catastrophically in fp16), with autocast switched off inside.
* ``valid`` (optional, ``N x 1 x H x W`` or the shape of ``pred``, values in {0, 1}; read
  as ``valid > 0.5``) marks pixels that exist -- ``CutoutWithAlpha`` sets 0 inside its
  holes. Masked pixels contribute *nothing*: their values are replaced by 0 before any
  filter runs, and a pixel of a loss map is counted only if every input pixel it reads
  is valid (its *support*: the pixel itself for MSE/L1, the 3x3 Sobel neighbourhood for
  the edge term, the 11x11 window for SSIM). The Laplacian term is linear in
  ``pred - target``, so there the difference is set to 0 at masked pixels instead.
  Means are normalised by the number of counted pixels.
* ``weight`` (optional, same shapes, values >= 0) weights the pixels of the loss map
  (for example :func:`unknown_region`); it does not change the local statistics.
* ``reduction="mean"`` returns one number: the sum of weighted per-pixel losses over
  the batch divided by the sum of weights (a pixel-pooled mean). ``reduction="none"``
  returns the per-sample means, shape ``(N,)``; a sample with no counted pixel gets 0.
  The composite weights samples through these per-sample values; with equal weights
  it reduces exactly to the pooled mean.

Luminance (for the dynamic weight) is **Rec. 709 luma of the gamma-encoded sRGB input
in [0, 1]**: ``0.2126 R' + 0.7152 G' + 0.0722 B'`` applied to the stored (not
linearised) values, the same definition as :func:`lowlight.simulate.luminance`. The
article does not say which it means; its snippet takes the plain channel mean
(``weights="mean"`` reproduces that).
"""
from __future__ import annotations

import contextlib
import math
import numbers
from typing import Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .simulate import LUMA_WEIGHTS  # Rec. 709 / sRGB primaries, applied to gamma-encoded values (one definition)

__all__ = [
    "mse_loss",
    "l1_loss",
    "ssim_map",
    "ssim",
    "ssim_loss",
    "sobel",
    "sobel_magnitude",
    "edge_loss",
    "laplacian_pyramid",
    "laplacian_loss",
    "unknown_region",
    "LUMA_WEIGHTS",
    "luminance",
    "dynamic_edge_weight",
    "DYNAMIC_MODES",
    "MattingLoss",
    "perturb_alpha",
    "PERTURBATIONS",
]

_TINY = 1e-12

# =========================================================================== 1. checks, reductions


def _check_pair(pred, target, fn: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``pred``/``target`` and return them in a common float dtype (>= float32)."""
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor N x C x H x W, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{fn}: {name} must be 4-D N x C x H x W, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{fn}: {name} must be a floating tensor (alpha in [0, 1]), got {t.dtype}")
    if pred.shape != target.shape:
        raise ValueError(f"{fn}: pred and target must have the same shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    dtype = torch.promote_types(pred.dtype, target.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    return pred.to(dtype), target.to(dtype)


def _check_mask(mask, ref: torch.Tensor, fn: str, name: str) -> torch.Tensor | None:
    """``None`` or a float tensor of ``ref``'s shape (a 1-channel mask is broadcast over C)."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor N x 1 x H x W, got {type(mask).__name__}")
    n, c, h, w = ref.shape
    if mask.ndim != 4 or mask.shape[0] != n or mask.shape[2:] != ref.shape[2:] or mask.shape[1] not in (1, c):
        raise ValueError(f"{fn}: {name} must have shape ({n}, 1, {h}, {w}) or {tuple(ref.shape)}, "
                         f"got {tuple(mask.shape)}")
    if name == "valid":
        mask = mask > 0.5
    else:
        mask = mask.to(ref.dtype)
        if not bool(torch.isfinite(mask).all()) or bool((mask < 0).any()):
            raise ValueError(f"{fn}: {name} must be finite and >= 0")
    return mask.expand(n, c, h, w).to(device=ref.device, dtype=ref.dtype)


def _zero_fill(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``x`` with masked pixels set to 0 (``where``, so NaN/inf there cannot leak)."""
    return x if valid is None else torch.where(valid > 0, x, torch.zeros_like(x))


def _erode(valid: torch.Tensor, k: int, pad: str | None) -> torch.Tensor:
    """1 where the whole ``k x k`` neighbourhood is valid. ``pad=None``: 'valid' output
    (size shrinks by ``k - 1``); ``"reflect"``/``"replicate"``: same size, border pixels
    see the mirrored mask; ``"zeros"``: same size, the zero padding counts as valid."""
    n, c, h, w = valid.shape
    v = valid.reshape(n * c, 1, h, w)
    r = k // 2
    if pad == "zeros":
        v = F.pad(v, (r, r, r, r), value=1.0)
    elif pad is not None:
        v = F.pad(v, (r, r, r, r), mode=pad)
    out = -F.max_pool2d(-v, k, stride=1)
    return out.reshape(n, c, out.shape[-2], out.shape[-1])


def _weighted_means(loss_map: torch.Tensor, m: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample weighted mean of ``loss_map`` (N x C x h x w) and the per-sample weight sums."""
    n = loss_map.shape[0]
    if m is None:
        count = loss_map[0].numel()
        vals = loss_map.reshape(n, -1).mean(1)
        return vals, torch.full((n,), float(count), dtype=loss_map.dtype, device=loss_map.device)
    num = (loss_map * m).reshape(n, -1).sum(1)
    den = m.reshape(n, -1).sum(1)
    return num / den.clamp_min(_TINY), den


def _pool(vals: torch.Tensor, counts: torch.Tensor, sample_weight=None) -> torch.Tensor:
    """Pixel-pooled mean of per-sample values: ``sum(w_i c_i v_i) / sum(c_i)``."""
    if sample_weight is not None:
        vals = vals * sample_weight
    return (vals * counts).sum() / counts.sum().clamp_min(_TINY)


def _finish(vals: torch.Tensor, counts: torch.Tensor, reduction: str, fn: str) -> torch.Tensor:
    if reduction == "mean":
        return _pool(vals, counts)
    if reduction == "none":
        return vals
    raise ValueError(f"{fn}: reduction must be 'mean' or 'none', got {reduction!r}")


@contextlib.contextmanager
def _no_autocast(t: torch.Tensor):
    """Run filters in the tensor's own dtype even inside an autocast region."""
    if torch.is_autocast_enabled(t.device.type):
        with torch.autocast(device_type=t.device.type, enabled=False):
            yield
    else:
        yield


# =========================================================================== 2. pixel terms


def _mse_terms(pred, target, valid=None, weight=None):
    return _weighted_means((pred - target) ** 2, _combine(valid, weight))


def _l1_terms(pred, target, valid=None, weight=None):
    return _weighted_means((pred - target).abs(), _combine(valid, weight))


def _combine(valid, weight):
    if valid is None:
        return weight
    return valid if weight is None else valid * weight


def _pixel_loss(kind, pred, target, valid, weight, reduction):
    fn = f"{kind}_loss"
    pred, target = _check_pair(pred, target, fn)
    valid = _check_mask(valid, pred, fn, "valid")
    weight = _check_mask(weight, pred, fn, "weight")
    pred, target = _zero_fill(pred, valid), _zero_fill(target, valid)
    terms = _mse_terms if kind == "mse" else _l1_terms
    return _finish(*terms(pred, target, valid, weight), reduction, fn)


def mse_loss(pred, target, valid=None, weight=None, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error over the counted pixels (notebook 05).

    The article's λ1 term: pixel-wise, "stabilises convergence", blind to *where* the
    error is (a missing hair strand costs as much as the same mass of background noise).
    """
    return _pixel_loss("mse", pred, target, valid, weight, reduction)


def l1_loss(pred, target, valid=None, weight=None, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error (notebook 05). ViTMatte-style models train with L1 (on the
    unknown and the known regions separately); it penalises small errors relatively
    more than MSE, so faint residue and thin strands weigh more."""
    return _pixel_loss("l1", pred, target, valid, weight, reduction)


# =========================================================================== 3. SSIM


def _gaussian_1d(sigma: float, radius: int, dtype, device) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=device)


def _ssim_radius(sigma: float, truncate: float) -> int:
    # the radius scipy.ndimage / skimage use: int(truncate * sigma + 0.5) -> 5 for sigma 1.5
    return int(truncate * sigma + 0.5)


def ssim_map(pred, target, sigma: float = 1.5, truncate: float = 3.5, k1: float = 0.01,
             k2: float = 0.03, data_range: float = 1.0) -> torch.Tensor:
    """The local SSIM index of Wang et al. (2004), shape ``N x C x (H-2r) x (W-2r)`` (notebook 05).

    Gaussian window with ``sigma`` (1.5), truncated at ``truncate * sigma`` (radius
    ``r = 5``, an 11 x 11 window, normalised), population (co)variances, constants
    ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` with ``L = data_range``. Only windows that lie
    entirely inside the image are computed -- exactly the part of
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, full=True)[1]`` that skimage keeps when it
    averages (it crops ``(win_size - 1) // 2`` pixels of reflected border), so the mean of
    this map is skimage's SSIM.
    """
    pred, target = _check_pair(pred, target, "ssim_map")
    return _ssim_map(pred, target, sigma, truncate, k1, k2, data_range)


def _ssim_map(pred, target, sigma, truncate, k1, k2, data_range):
    if sigma <= 0 or data_range <= 0:
        raise ValueError(f"ssim: sigma and data_range must be > 0, got {sigma}, {data_range}")
    r = _ssim_radius(sigma, truncate)
    win = 2 * r + 1
    n, c, h, w = pred.shape
    if h < win or w < win:
        raise ValueError(f"ssim: images must be at least {win} x {win} for sigma={sigma} "
                         f"(an {win} x {win} window), got {h} x {w}")
    with _no_autocast(pred):
        g = _gaussian_1d(sigma, r, pred.dtype, pred.device)
        x = pred.reshape(n * c, 1, h, w)
        y = target.reshape(n * c, 1, h, w)
        stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
        stack = F.conv2d(stack, g.view(1, 1, win, 1).expand(5, 1, win, 1), groups=5)
        stack = F.conv2d(stack, g.view(1, 1, 1, win).expand(5, 1, 1, win), groups=5)
        mx, my, exx, eyy, exy = stack.unbind(1)
        vx, vy, cxy = exx - mx * mx, eyy - my * my, exy - mx * my
        c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.reshape(n, c, h - 2 * r, w - 2 * r)


def _ssim_terms(pred, target, valid=None, weight=None, sigma=1.5, truncate=3.5, k1=0.01, k2=0.03,
                data_range=1.0):
    """Per-sample means of ``1 - SSIM`` over the counted map pixels, and their weights."""
    s = _ssim_map(pred, target, sigma, truncate, k1, k2, data_range)
    r = _ssim_radius(sigma, truncate)
    h, w = pred.shape[-2:]
    m = None
    if valid is not None:
        m = _erode(valid, 2 * r + 1, None)          # the whole window must be valid
    if weight is not None:
        wc = weight[..., r:h - r, r:w - r]
        m = wc if m is None else m * wc
    return _weighted_means(1.0 - s, m)


def _ssim_common(pred, target, valid, weight, fn, kw):
    pred, target = _check_pair(pred, target, fn)
    valid = _check_mask(valid, pred, fn, "valid")
    weight = _check_mask(weight, pred, fn, "weight")
    pred, target = _zero_fill(pred, valid), _zero_fill(target, valid)
    return _ssim_terms(pred, target, valid, weight, **kw)


def ssim(pred, target, valid=None, weight=None, reduction: str = "mean", sigma: float = 1.5,
         truncate: float = 3.5, k1: float = 0.01, k2: float = 0.03, data_range: float = 1.0) -> torch.Tensor:
    """The SSIM index (mean of :func:`ssim_map` over counted pixels), 1 for identical inputs (notebook 05).

    Without masks this equals scikit-image's ``structural_similarity`` with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``
    (tested to 1e-3; in float64 the match is ~1e-12). Images must be at least 11 x 11.
    With ``valid``, only windows lying entirely on valid pixels count; a sample without
    any such window gets SSIM 1 (no evidence of a difference).
    """
    kw = dict(sigma=sigma, truncate=truncate, k1=k1, k2=k2, data_range=data_range)
    vals, counts = _ssim_common(pred, target, valid, weight, "ssim", kw)
    return 1.0 - _finish(vals, counts, reduction, "ssim")


def ssim_loss(pred, target, valid=None, weight=None, reduction: str = "mean", sigma: float = 1.5,
              truncate: float = 3.5, k1: float = 0.01, k2: float = 0.03, data_range: float = 1.0) -> torch.Tensor:
    """``1 - SSIM`` (notebook 05): the article's λ2 term, "protects texture detail".

    It compares local means, contrasts and correlations in 11 x 11 windows, so it reacts
    to lost *structure* (blur, broken strands, holes) more than to a uniform error. On
    alpha mattes its sensitivity depends on the window's content: in flat regions
    (all 0 or all 1) the variances are ~0 and the constants ``C1``, ``C2`` dominate.
    """
    kw = dict(sigma=sigma, truncate=truncate, k1=k1, k2=k2, data_range=data_range)
    return _finish(*_ssim_common(pred, target, valid, weight, "ssim_loss", kw), reduction, "ssim_loss")


# =========================================================================== 4. edges

_PADDINGS = ("reflect", "replicate", "zeros")


def sobel(x, padding: str = "reflect") -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives ``(gx, gy)`` of ``N x C x H x W`` tensors, same size (notebook 05).

    Kernels ``[[-1,0,1],[-2,0,2],[-1,0,1]]`` and its transpose applied as a correlation,
    like ``cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3)`` (gx) and ``(0, 1)`` (gy), without
    normalisation (a unit step gives 4). ``padding``: ``"reflect"`` (default; mirror
    without repeating the edge pixel = OpenCV's default ``BORDER_REFLECT_101``),
    ``"replicate"``, or ``"zeros"`` (the article's ``F.conv2d(..., padding=1)``: a matte
    that touches the border gets a spurious edge there).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"sobel: x must be a float tensor N x C x H x W, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return _sobel(x, padding)


def _sobel(x, padding):
    if padding not in _PADDINGS:
        raise ValueError(f"sobel: padding must be one of {_PADDINGS}, got {padding!r}")
    n, c, h, w = x.shape
    if padding == "reflect" and (h < 2 or w < 2):
        raise ValueError(f"sobel: reflect padding needs H, W >= 2, got {h} x {w}")
    with _no_autocast(x):
        k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device)
        kernels = torch.stack([k, k.t()]).unsqueeze(1)               # (2, 1, 3, 3): gx, gy
        v = x.reshape(n * c, 1, h, w)
        v = F.pad(v, (1, 1, 1, 1)) if padding == "zeros" else F.pad(v, (1, 1, 1, 1), mode=padding)
        g = F.conv2d(v, kernels)
    return g[:, 0].reshape(n, c, h, w), g[:, 1].reshape(n, c, h, w)


def sobel_magnitude(x, eps: float = 1e-8, padding: str = "reflect") -> torch.Tensor:
    """``sqrt(gx^2 + gy^2 + eps)``, the article's edge map (notebook 05). ``eps`` keeps the
    gradient finite where the image is flat (there the magnitude is ``sqrt(eps) = 1e-4``)."""
    gx, gy = sobel(x, padding)
    return torch.sqrt(gx * gx + gy * gy + eps)


def _edge_terms(pred, target, valid=None, weight=None, padding="reflect", eps=1e-8):
    gpx, gpy = _sobel(pred, padding)
    gtx, gty = _sobel(target, padding)
    mp = torch.sqrt(gpx * gpx + gpy * gpy + eps)
    mt = torch.sqrt(gtx * gtx + gty * gty + eps)
    m = None
    if valid is not None:
        m = _erode(valid, 3, padding)                 # the whole 3x3 neighbourhood must be valid
    if weight is not None:
        m = weight if m is None else m * weight
    return _weighted_means((mp - mt) ** 2, m)


def edge_loss(pred, target, valid=None, weight=None, reduction: str = "mean", padding: str = "reflect",
              eps: float = 1e-8) -> torch.Tensor:
    """The article's edge term (notebook 05): MSE between Sobel magnitudes of pred and target.

    It compares *how strong* the edges are, not their direction, and it is zero for a
    constant offset (``pred = target + c``): pair it with MSE/L1. ``padding="zeros"``
    reproduces the article's snippet exactly.
    """
    fn = "edge_loss"
    pred, target = _check_pair(pred, target, fn)
    valid = _check_mask(valid, pred, fn, "valid")
    weight = _check_mask(weight, pred, fn, "weight")
    pred, target = _zero_fill(pred, valid), _zero_fill(target, valid)
    return _finish(*_edge_terms(pred, target, valid, weight, padding, eps), reduction, fn)


# =========================================================================== 5. Laplacian pyramid

_BINOMIAL5 = (1.0, 4.0, 6.0, 4.0, 1.0)   # /16: the 5-tap binomial (Burt & Adelson) kernel


def _blur5(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor(_BINOMIAL5, dtype=x.dtype, device=x.device) / 16.0
    v = F.pad(x, (2, 2, 2, 2), mode="reflect")
    v = F.conv2d(v, k.view(1, 1, 5, 1))
    return F.conv2d(v, k.view(1, 1, 1, 5))


def laplacian_pyramid(x, levels: int = 5) -> list[torch.Tensor]:
    """Band-pass levels of a Laplacian pyramid (notebook 05), finest first.

    Each level: crop the current image to even size, ``down = blur(current)[::2, ::2]``,
    ``up = blur(zero-insert(down) * 4)``, band = ``current - up``; then recurse on
    ``down``. The blur is the 5-tap binomial kernel with reflect padding -- the
    construction ViTMatte's ``laplacian_loss`` uses. The low-pass residual is *not*
    returned (as in ViTMatte), so the bands ignore a constant offset. Levels stop early
    once the current image is smaller than 4 x 4; the list may be shorter than ``levels``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"laplacian_pyramid: x must be a float tensor N x C x H x W, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"laplacian_pyramid: levels must be a positive int, got {levels!r}")
    n, c, h, w = x.shape
    cur = x.reshape(n * c, 1, h, w)
    bands = []
    with _no_autocast(x):
        for _ in range(levels):
            hh, ww = cur.shape[-2] - cur.shape[-2] % 2, cur.shape[-1] - cur.shape[-1] % 2
            if hh < 4 or ww < 4:
                break
            cur = cur[..., :hh, :ww]
            down = _blur5(cur)[..., ::2, ::2]
            up = torch.zeros_like(cur)
            up[..., ::2, ::2] = down * 4.0
            up = _blur5(up)
            bands.append((cur - up).reshape(n, c, hh, ww))
            cur = down
    return bands


def _laplacian_terms(pred, target, valid=None, weight=None, levels=5):
    d = pred - target
    m = _combine(valid, weight)
    if valid is not None:
        d = torch.where(valid > 0, d, torch.zeros_like(d))
    bands = laplacian_pyramid(d, levels)
    if not bands:
        raise ValueError(f"laplacian_loss: images must be at least 4 x 4, got {tuple(pred.shape[-2:])}")
    n = pred.shape[0]
    total = torch.zeros(n, dtype=pred.dtype, device=pred.device)
    ml = m
    for lvl, band in enumerate(bands):
        if ml is not None:
            ml = ml[..., : band.shape[-2], : band.shape[-1]]
        vals, _ = _weighted_means(band.abs(), ml)
        total = total + (2.0 ** lvl) * vals
        if ml is not None:
            ml = F.avg_pool2d(ml.reshape(-1, 1, *ml.shape[-2:]), 2).reshape(*ml.shape[:2], ml.shape[-2] // 2,
                                                                          ml.shape[-1] // 2)
    counts = (torch.full((n,), float(pred[0].numel()), dtype=pred.dtype, device=pred.device)
              if m is None else m.reshape(n, -1).sum(1))
    return total / len(bands), counts


def laplacian_loss(pred, target, valid=None, weight=None, reduction: str = "mean", levels: int = 5) -> torch.Tensor:
    """Laplacian-pyramid L1 loss (notebook 05): ``sum_l 2^l * mean|band_l(pred - target)| / levels``.

    The loss ViTMatte trains with (``loss_pha_laplacian``): every scale of the error
    counts, coarse levels weighted up by ``2^l``. The pyramid is linear, so it is built
    once on ``pred - target``; with ``valid``, that difference is 0 at masked pixels and
    each level's mean is normalised by the (average-pooled) valid weight.
    """
    fn = "laplacian_loss"
    pred, target = _check_pair(pred, target, fn)
    valid = _check_mask(valid, pred, fn, "valid")
    weight = _check_mask(weight, pred, fn, "weight")
    return _finish(*_laplacian_terms(pred, target, valid, weight, levels), reduction, fn)


# =========================================================================== 6. regions


def unknown_region(alpha, width: int = 5, eps: float = 1.0 / 255.0) -> torch.Tensor:
    """The trimap's *unknown* band of a ground-truth alpha, ``N x 1 x H x W`` in {0, 1} (notebook 05).

    Definite foreground (``alpha >= 1 - eps``) and definite background (``alpha <= eps``)
    are each eroded by a ``(2 width + 1)`` square; everything else -- fractional pixels,
    hair, and a ``width``-pixel band on both sides of every hard edge -- is unknown. Use it
    as ``weight=`` to restrict a loss to the region where matting is hard (ViTMatte's
    ``unknown_l1_loss``); note that such a loss no longer sees background residue far
    from the subject. (For numpy trimaps with the data set's convention see
    ``lowlight.data``.)
    """
    if not isinstance(alpha, torch.Tensor) or alpha.ndim != 4 or not alpha.is_floating_point():
        raise ValueError(f"unknown_region: alpha must be a float tensor N x C x H x W, got "
                         f"{getattr(alpha, 'shape', type(alpha).__name__)}")
    if not isinstance(width, int) or width < 0:
        raise ValueError(f"unknown_region: width must be an int >= 0, got {width!r}")
    with torch.no_grad():
        a = alpha.detach().float()
        fg = (a >= 1.0 - eps).float()
        bg = (a <= eps).float()
        if width > 0:
            k = 2 * width + 1
            # max_pool pads with -inf, so the image border does not erode the regions
            fg = -F.max_pool2d(-fg, k, stride=1, padding=width)
            bg = -F.max_pool2d(-bg, k, stride=1, padding=width)
        return (1.0 - fg - bg).clamp(0.0, 1.0).to(alpha.dtype)


# =========================================================================== 7. dynamic weights


#: ``None``: fixed λ. ``"batch"``: the article's snippet as written (per-sample 3.0/1.5 by
#: threshold, then averaged to ONE scalar for the whole batch). ``"batch_mean"``: the
#: prose reading (one scalar from the whole batch's mean luminance). ``"sample"``: each
#: sample its own 3.0/1.5. ``"smooth"``: each sample a sigmoid ramp between them.
DYNAMIC_MODES = (None, "batch", "batch_mean", "sample", "smooth")


def luminance(image, weights: str = "rec709") -> torch.Tensor:
    """Mean luminance of each image of an ``N x 3 x H x W`` batch in [0, 1], shape ``(N,)`` (notebook 05).

    ``weights="rec709"``: Rec. 709 luma ``0.2126 R + 0.7152 G + 0.0722 B`` of the
    gamma-encoded sRGB values (no linearisation; the scale the 0.3 threshold is read on).
    ``weights="mean"``: the plain channel mean, as in the article's snippet
    (``torch.mean(image_batch, dim=1)``). The input must be the *un-normalised* image: a
    value outside [0, 1] raises, because after ImageNet normalisation (the article's
    pipeline ends with ``A.Normalize``) a threshold of 0.3 means something else entirely.
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"luminance: image must be a tensor N x 3 x H x W (RGB), got "
                         f"{getattr(image, 'shape', type(image).__name__)}")
    if not image.is_floating_point():
        raise TypeError(f"luminance: image must be float RGB in [0, 1], got {image.dtype}")
    with torch.no_grad():
        x = image.detach().float()
        lo, hi = float(x.amin()), float(x.amax())
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            raise ValueError(f"luminance: image must be RGB in [0, 1] before any normalisation, got values in "
                             f"[{lo:.3f}, {hi:.3f}] (ImageNet-normalised input? pass the raw image)")
        if weights == "rec709":
            wts = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            y = (x * wts).sum(1)
        elif weights == "mean":
            y = x.mean(1)
        else:
            raise ValueError(f"luminance: weights must be 'rec709' or 'mean', got {weights!r}")
        return y.flatten(1).mean(1)


def dynamic_edge_weight(image, mode: str = "sample", low: float = 1.5, high: float = 3.0,
                        threshold: float = 0.3, width: float = 0.03, weights: str = "rec709") -> torch.Tensor:
    """Edge weight per sample, shape ``(N,)``, from the input's mean luminance (notebook 05).

    The article (§4.2): dark input (mean luminance < ``threshold`` = 0.3) -> ``high`` (3.0),
    else ``low`` (1.5). Modes:

    * ``"batch"`` -- the article's snippet as written: ``where(lum_i < 0.3, 3.0, 1.5)``
      averaged over the batch into one scalar (``.mean().item()``); every sample gets it.
      In a half-dark batch everyone gets 2.25.
    * ``"batch_mean"`` -- the prose reading: one scalar from the mean luminance of the
      whole batch (3.0 if it is < 0.3, else 1.5). In a mixed batch the dark samples may
      get the bright weight, or the other way round.
    * ``"sample"`` -- each sample its own 3.0 / 1.5.
    * ``"smooth"`` -- ``low + (high - low) * sigmoid((threshold - lum_i) / width)``: the
      same rule without a jump at 0.3 (2.25 at exactly 0.3; within 1 % of the step
      values once ``|lum - 0.3| > 4.6 width``).

    On a uniform batch (all dark or all bright) ``batch``, ``batch_mean`` and ``sample``
    agree exactly. The weights are constants (no gradient flows through them).
    """
    if mode not in DYNAMIC_MODES or mode is None:
        raise ValueError(f"dynamic_edge_weight: mode must be one of {DYNAMIC_MODES[1:]}, got {mode!r}")
    if not (width > 0):
        raise ValueError(f"dynamic_edge_weight: width must be > 0, got {width!r}")
    lum = luminance(image, weights)
    lo = torch.full_like(lum, float(low))
    hi = torch.full_like(lum, float(high))
    step = torch.where(lum < threshold, hi, lo)
    if mode == "sample":
        return step
    if mode == "batch":
        return step.mean().expand_as(step).clone()
    if mode == "batch_mean":
        return (hi if bool(lum.mean() < threshold) else lo)
    return lo + (hi - lo) * torch.sigmoid((threshold - lum) / width)


# =========================================================================== 8. composite

_TERMS = {
    "mse": _mse_terms,
    "l1": _l1_terms,
    "ssim": _ssim_terms,
    "edge": _edge_terms,
    "laplacian": _laplacian_terms,
}


class MattingLoss(nn.Module):
    """``total = sum_t λ_t · term_t`` with named terms, logging each one (notebooks 05, 06).

    ``lambdas``: a mapping from term names to weights >= 0; terms: ``"mse"``, ``"l1"``,
    ``"ssim"`` (the SSIM *loss*, 1 - SSIM), ``"edge"`` (Sobel magnitudes), ``"laplacian"``.
    Terms with λ = 0 are not computed. Default ``{"mse": 1, "ssim": 1, "edge": 2}``: the
    article's snippet (``mse + 2.0 * edge``) plus the SSIM term of its formula, whose λ2
    the article never gives.

    ``dynamic``: one of :data:`DYNAMIC_MODES` (see :func:`dynamic_edge_weight`). When it is
    not ``None`` the edge weight comes from the rule (``edge_weights = (low, high)``,
    ``threshold``, ``smooth_width``, ``luma``) and ``lambdas["edge"]`` is ignored; the
    edge term is computed even if ``lambdas`` omits it (``self.lambdas["edge"]`` then holds
    NaN as a marker). ``forward`` then needs ``image``.

    ``region="unknown"`` restricts every term to :func:`unknown_region` of the target
    (``unknown_width`` pixels on each side of the fractional band).

    ``forward(pred, target, image=None, valid=None, weight=None)`` returns
    ``(total, logs)``: ``total`` a scalar tensor with gradient; ``logs`` a dict of
    detached 0-d tensors -- each term's *unweighted* pooled value, ``"edge_weight"`` (the
    mean edge weight used) and ``"total"`` (call ``float()`` on them to log; keeping them
    as tensors avoids a GPU sync per step).

    With a per-sample weight ``w_i`` a term contributes ``sum_i w_i c_i L_i / sum_i c_i``
    (``L_i`` the sample's mean, ``c_i`` its counted pixels), so on a batch where all
    ``w_i`` are equal it is exactly ``w · term`` -- the per-batch formula.
    """

    def __init__(self, lambdas: Mapping[str, float] | None = None, dynamic: str | None = None, *,
                 edge_weights: tuple[float, float] = (1.5, 3.0), threshold: float = 0.3,
                 smooth_width: float = 0.03, luma: str = "rec709", region: str | None = None,
                 unknown_width: int = 5, edge_padding: str = "reflect", edge_eps: float = 1e-8,
                 ssim_sigma: float = 1.5, laplacian_levels: int = 5):
        super().__init__()
        lambdas = dict({"mse": 1.0, "ssim": 1.0, "edge": 2.0} if lambdas is None else lambdas)
        for k, v in lambdas.items():
            if k not in _TERMS:
                raise ValueError(f"MattingLoss: unknown term {k!r} in lambdas; terms: {', '.join(_TERMS)}")
            if not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
                raise ValueError(f"MattingLoss: lambdas[{k!r}] must be a finite number >= 0, got {v!r}")
        if dynamic not in DYNAMIC_MODES:
            raise ValueError(f"MattingLoss: dynamic must be one of {DYNAMIC_MODES}, got {dynamic!r}")
        if region not in (None, "unknown"):
            raise ValueError(f"MattingLoss: region must be None or 'unknown', got {region!r}")
        if edge_padding not in _PADDINGS:
            raise ValueError(f"MattingLoss: edge_padding must be one of {_PADDINGS}, got {edge_padding!r}")
        if luma not in ("rec709", "mean"):
            raise ValueError(f"MattingLoss: luma must be 'rec709' or 'mean', got {luma!r}")
        low, high = (float(v) for v in edge_weights)
        self.lambdas = {k: float(v) for k, v in lambdas.items()}
        if dynamic is not None:
            self.lambdas["edge"] = float("nan")     # placeholder: the rule decides
        self.dynamic = dynamic
        self.edge_weights = (low, high)
        self.threshold = float(threshold)
        self.smooth_width = float(smooth_width)
        self.luma = luma
        self.region = region
        self.unknown_width = int(unknown_width)
        self._opts = {
            "ssim": {"sigma": float(ssim_sigma)},
            "edge": {"padding": edge_padding, "eps": float(edge_eps)},
            "laplacian": {"levels": int(laplacian_levels)},
        }

    def extra_repr(self) -> str:
        lam = ", ".join(f"{k}=dynamic" if math.isnan(v) else f"{k}={v:g}" for k, v in self.lambdas.items())
        s = f"lambdas=({lam}), dynamic={self.dynamic!r}"
        if self.dynamic is not None:
            s += f", edge_weights={self.edge_weights}, threshold={self.threshold}, luma={self.luma!r}"
        if self.region:
            s += f", region={self.region!r}"
        return s

    def edge_weight(self, image, n: int | None = None) -> torch.Tensor | None:
        """Per-sample edge weights ``(N,)`` the rule gives for ``image`` (``None`` if not dynamic)."""
        if self.dynamic is None:
            return None
        if image is None:
            raise ValueError(f"MattingLoss(dynamic={self.dynamic!r}): forward needs the input image "
                             "(N x 3 x H x W, RGB in [0, 1]) to compute the edge weight")
        if n is not None and image.shape[0] != n:
            raise ValueError(f"MattingLoss: image has {image.shape[0]} samples, pred has {n}")
        low, high = self.edge_weights
        return dynamic_edge_weight(image, self.dynamic, low=low, high=high, threshold=self.threshold,
                                   width=self.smooth_width, weights=self.luma)

    def forward(self, pred, target, image=None, valid=None, weight=None):
        fn = "MattingLoss"
        pred, target = _check_pair(pred, target, fn)
        valid = _check_mask(valid, pred, fn, "valid")
        weight = _check_mask(weight, pred, fn, "weight")
        if self.region == "unknown":
            band = unknown_region(target, self.unknown_width).expand_as(pred)
            weight = band if weight is None else weight * band
        w_edge = self.edge_weight(image, pred.shape[0])
        if w_edge is not None:
            w_edge = w_edge.to(device=pred.device, dtype=pred.dtype)
        pz, tz = _zero_fill(pred, valid), _zero_fill(target, valid)
        total = pred.new_zeros(())
        logs: dict[str, torch.Tensor] = {}
        for name, lam in self.lambdas.items():
            dyn = name == "edge" and w_edge is not None
            if not dyn and lam == 0:
                continue
            vals, counts = _TERMS[name](pz, tz, valid, weight, **self._opts.get(name, {}))
            logs[name] = _pool(vals, counts).detach()
            total = total + (_pool(vals, counts, w_edge) if dyn else lam * _pool(vals, counts))
        if "edge" in self.lambdas:
            logs["edge_weight"] = (w_edge.mean() if w_edge is not None
                                   else pred.new_tensor(self.lambdas["edge"])).detach()
        logs["total"] = total.detach()
        return total, logs


# =========================================================================== 9. teaching fixture


PERTURBATIONS = ("blur", "shift", "noise", "holes", "hair_removed", "background_residue")


def perturb_alpha(alpha: np.ndarray, kind: str, strength: float | None = None, seed: int = 0) -> np.ndarray:
    """A controlled error of a ground-truth alpha (HxW float in [0, 1]) (notebook 05).

    ``kind`` and ``strength`` (its default):

    * ``"blur"`` -- Gaussian blur, sigma in pixels (1.5): a soft, low-resolution output.
    * ``"shift"`` -- translation right and down by ``strength`` pixels (2), edges replicated.
    * ``"noise"`` -- additive Gaussian noise of that std (0.05), clipped to [0, 1].
    * ``"holes"`` -- that many discs (3) of radius ``size / 20`` set to 0 inside the
      definite foreground: the subject partly "disappears" (dark clothing on a dark
      background).
    * ``"hair_removed"`` -- grey-level morphological opening with a ``strength`` x
      ``strength`` ellipse (5): every structure thinner than that vanishes, the body
      stays -- the "broken hair" of the article's §6.2.
    * ``"background_residue"`` -- smooth blobs of peak opacity ``strength`` (0.25) added
      in the background away from the subject: the article's "background residue".

    Deterministic by ``seed``; returns float32.
    """
    import cv2

    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"perturb_alpha: alpha must be H x W, got shape {a.shape}")
    if kind not in PERTURBATIONS:
        raise ValueError(f"perturb_alpha: kind must be one of {PERTURBATIONS}, got {kind!r}")
    rng = np.random.default_rng([seed, PERTURBATIONS.index(kind)])
    h, w = a.shape
    if kind == "blur":
        out = cv2.GaussianBlur(a, (0, 0), 1.5 if strength is None else float(strength))
    elif kind == "shift":
        s = 2.0 if strength is None else float(strength)
        m = np.float32([[1, 0, s], [0, 1, s]])
        out = cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    elif kind == "noise":
        out = a + rng.normal(0.0, 0.05 if strength is None else float(strength), a.shape).astype(np.float32)
    elif kind == "holes":
        n = 3 if strength is None else int(strength)
        out = a.copy()
        r = max(2, min(h, w) // 20)
        inner = cv2.erode((a >= 0.99).astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8))
        ys, xs = np.nonzero(inner)
        if len(ys) == 0:
            raise ValueError("perturb_alpha: no definite foreground large enough for holes")
        for i in rng.choice(len(ys), size=min(n, len(ys)), replace=False):
            cv2.circle(out, (int(xs[i]), int(ys[i])), r, 0.0, -1, cv2.LINE_AA)
    elif kind == "hair_removed":
        k = 5 if strength is None else int(strength)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        out = cv2.morphologyEx(a, cv2.MORPH_OPEN, kernel)
    else:  # background_residue
        amp = 0.25 if strength is None else float(strength)
        far = cv2.erode((a <= 1e-3).astype(np.uint8), np.ones((9, 9), np.uint8))
        ys, xs = np.nonzero(far)
        if len(ys) == 0:
            raise ValueError("perturb_alpha: no background to put residue on")
        blobs = np.zeros_like(a)
        sig = max(1.5, min(h, w) / 25)
        yy, xx = np.mgrid[0:h, 0:w]
        for i in rng.choice(len(ys), size=min(4, len(ys)), replace=False):
            blobs += np.exp(-((yy - ys[i]) ** 2 + (xx - xs[i]) ** 2) / (2 * sig * sig)).astype(np.float32)
        far = cv2.GaussianBlur(far.astype(np.float32), (0, 0), 2.0)   # no hard cut-off near the subject
        out = np.maximum(a, amp * np.clip(blobs, 0, 1) * far)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# =========================================================================== 10. zero-reference LLIE losses
# (notebook 04; to be added here: exposure, colour constancy, spatial consistency,
#  illumination smoothness. Same conventions: N x C x H x W float tensors, docstring
#  naming the notebook.)
