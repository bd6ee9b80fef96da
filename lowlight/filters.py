"""Blurs and small image filters, one home for the simulator, the losses and the trimaps (notebooks 01, 05).

=========================  ==================================================================
Gaussian                   :func:`gaussian_radius` (the one truncation rule),
                           :func:`gaussian_kernel1d`, :func:`gaussian_blur` (numpy, OpenCV),
                           :func:`gaussian_blur_torch` (same size), :func:`gaussian_filter_valid`
                           ('valid' output: SSIM's local statistics)
Sobel                      :data:`PADDINGS`, :func:`sobel`, :func:`sobel_magnitude`
Laplacian pyramid          :data:`BINOMIAL5`, :func:`blur5`, :func:`laplacian_pyramid`
binary morphology          :func:`erode` (square neighbourhood), :func:`dilate` (any
                           structuring element) on {0, 1} float masks
autocast                   :func:`no_autocast`: filters run in their input's own dtype
=========================  ==================================================================

**One Gaussian.** Every Gaussian here is ``exp(-x^2 / 2 sigma^2)`` sampled on the integers
``-r..r``, normalised to sum 1 (computed in float64, then cast), truncated at the radius
``r = max(1, ceil(3 sigma))`` -- three standard deviations, 99.7 % of the mass. The camera
simulator's defocus blur, the phone's unsharp mask and SSIM's window all use it. For SSIM's
``sigma = 1.5`` it is ``r = 5`` (an 11 x 11 window), the same radius as scipy's and
scikit-image's rule ``int(3.5 sigma + 0.5)``, so SSIM matches ``skimage.metrics.structural_similarity``.
For other sigmas the two rules can differ (``sigma = 1``: 3 here, 4 in scikit-image).

The torch filters take float tensors ``N x C x H x W`` and filter every channel on its own.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["gaussian_radius", "gaussian_kernel1d", "gaussian_blur", "gaussian_blur_torch", "gaussian_filter_valid",
           "PADDINGS", "sobel", "sobel_magnitude", "BINOMIAL5", "blur5", "laplacian_pyramid", "erode", "dilate",
           "no_autocast"]

#: border handling of :func:`sobel` and :func:`erode`: OpenCV's BORDER_REFLECT_101, BORDER_REPLICATE,
#: BORDER_CONSTANT
PADDINGS = ("reflect", "replicate", "zeros")

#: the 5-tap binomial (Burt & Adelson) kernel, to be divided by 16
BINOMIAL5 = (1.0, 4.0, 6.0, 4.0, 1.0)


@contextlib.contextmanager
def no_autocast(t: torch.Tensor):
    """Run the filters in ``t``'s own dtype even inside an autocast region (autocast switched off
    on ``t``'s device for the block; nothing changes outside autocast)."""
    if torch.is_autocast_enabled(t.device.type):
        with torch.autocast(device_type=t.device.type, enabled=False):
            yield
    else:
        yield


def _check_image(x, fn: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"{fn}: x must be a float tensor N x C x H x W, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")


def _grouped_pass(x: torch.Tensor, k: torch.Tensor, axis: int) -> torch.Tensor:
    """Correlate every channel of ``x`` with the 1-D kernel ``k`` along ``axis`` (-1: rows, -2: columns),
    'valid' output."""
    c = x.shape[1]
    shape = (1, 1, 1, k.numel()) if axis == -1 else (1, 1, k.numel(), 1)
    return F.conv2d(x, k.view(shape).expand(c, *shape[1:]), groups=c)


# --------------------------------------------------------------------------- Gaussian


def gaussian_radius(sigma: float) -> int:
    """The radius at which every Gaussian of the package is cut: ``max(1, ceil(3 sigma))``
    (5 for sigma 1.5: an 11-tap kernel). See the module docstring for scikit-image's rule."""
    return max(1, int(math.ceil(3 * sigma)))


def gaussian_kernel1d(sigma: float, dtype=np.float64) -> np.ndarray:
    """The 1-D Gaussian ``exp(-x^2 / 2 sigma^2)`` on ``-r..r`` (``r`` = :func:`gaussian_radius`),
    normalised to sum 1 in float64, then cast to ``dtype``."""
    radius = gaussian_radius(sigma)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(dtype)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float32 ``H x W`` or ``H x W x C`` array, same size: OpenCV's separable
    filter (rows, then columns) with the float32 :func:`gaussian_kernel1d` and mirrored borders
    (``BORDER_REFLECT_101``). The radius must be smaller than the shorter side."""
    import cv2

    k = gaussian_kernel1d(sigma, np.float32)
    return cv2.sepFilter2D(img, -1, k, k, borderType=cv2.BORDER_REFLECT_101)


def gaussian_blur_torch(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """:func:`gaussian_blur` on a float32 tensor ``N x C x H x W`` (any device), same size: the
    float32 kernel along the rows, then the columns, each pass after reflect padding of its own
    axis (the edge pixel is not repeated, as OpenCV's ``BORDER_REFLECT_101``). The radius must be
    smaller than the shorter side."""
    k = torch.from_numpy(gaussian_kernel1d(sigma, np.float32)).to(x.device)
    r = k.numel() // 2
    x = _grouped_pass(F.pad(x, (r, r, 0, 0), mode="reflect"), k, -1)
    return _grouped_pass(F.pad(x, (0, 0, r, r), mode="reflect"), k, -2)


def gaussian_filter_valid(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian filter of every channel of ``x`` (``N x C x H x W``), 'valid' output
    ``N x C x (H-2r) x (W-2r)``: only windows lying wholly inside the image (``r`` from
    :func:`gaussian_radius`). Columns first, then rows; runs in ``x``'s dtype, autocast off."""
    with no_autocast(x):
        g = torch.from_numpy(gaussian_kernel1d(sigma)).to(dtype=x.dtype, device=x.device)
        return _grouped_pass(_grouped_pass(x, g, -2), g, -1)


# --------------------------------------------------------------------------- Sobel


def sobel(x, padding: str = "reflect") -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives ``(gx, gy)`` of ``N x C x H x W`` tensors, same size (notebook 05).

    Kernels ``[[-1,0,1],[-2,0,2],[-1,0,1]]`` and its transpose applied as a correlation,
    like ``cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3)`` (gx) and ``(0, 1)`` (gy), without
    normalisation (a unit step gives 4). ``padding``: ``"reflect"`` (default; mirror
    without repeating the edge pixel = OpenCV's default ``BORDER_REFLECT_101``),
    ``"replicate"``, or ``"zeros"`` (the article's ``F.conv2d(..., padding=1)``: a matte
    that touches the border gets a spurious edge there). Half precision is computed in float32.
    """
    _check_image(x, "sobel")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if padding not in PADDINGS:
        raise ValueError(f"sobel: padding must be one of {PADDINGS}, got {padding!r}")
    n, c, h, w = x.shape
    if padding == "reflect" and (h < 2 or w < 2):
        raise ValueError(f"sobel: reflect padding needs H, W >= 2, got {h} x {w}")
    with no_autocast(x):
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


# --------------------------------------------------------------------------- Laplacian pyramid


def blur5(x: torch.Tensor) -> torch.Tensor:
    """The separable 5-tap binomial blur ``[1, 4, 6, 4, 1] / 16`` with reflect padding, same size.
    ``x``: ``M x 1 x H x W`` (one channel; :func:`laplacian_pyramid` folds ``N x C`` into ``M``)."""
    k = torch.tensor(BINOMIAL5, dtype=x.dtype, device=x.device) / 16.0
    v = F.pad(x, (2, 2, 2, 2), mode="reflect")
    v = F.conv2d(v, k.view(1, 1, 5, 1))
    return F.conv2d(v, k.view(1, 1, 1, 5))


def laplacian_pyramid(x, levels: int = 5) -> list[torch.Tensor]:
    """Band-pass levels of a Laplacian pyramid (notebook 05), finest first.

    Each level: crop the current image to even size, ``down = blur(current)[::2, ::2]``,
    ``up = blur(zero-insert(down) * 4)``, band = ``current - up``; then recurse on
    ``down``. The blur is :func:`blur5` -- the construction ViTMatte's ``laplacian_loss``
    uses (and OpenCV's ``pyrDown``/``pyrUp``). The low-pass residual is *not* returned (as
    in ViTMatte), so the bands ignore a constant offset. Levels stop early once the current
    image is smaller than 4 x 4; the list may be shorter than ``levels``.
    """
    _check_image(x, "laplacian_pyramid")
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"laplacian_pyramid: levels must be a positive int, got {levels!r}")
    n, c, h, w = x.shape
    cur = x.reshape(n * c, 1, h, w)
    bands = []
    with no_autocast(x):
        for _ in range(levels):
            hh, ww = cur.shape[-2] - cur.shape[-2] % 2, cur.shape[-1] - cur.shape[-1] % 2
            if hh < 4 or ww < 4:
                break
            cur = cur[..., :hh, :ww]
            down = blur5(cur)[..., ::2, ::2]
            up = torch.zeros_like(cur)
            up[..., ::2, ::2] = down * 4.0
            up = blur5(up)
            bands.append((cur - up).reshape(n, c, hh, ww))
            cur = down
    return bands


# --------------------------------------------------------------------------- binary morphology


def erode(mask: torch.Tensor, size: int, padding: str | None = None) -> torch.Tensor:
    """1 where the whole ``size x size`` neighbourhood of a {0, 1} float mask ``N x C x H x W`` is 1
    (a min filter). ``padding=None``: 'valid' output, ``size - 1`` pixels smaller; ``"reflect"`` or
    ``"replicate"``: same size, border pixels see the mirrored mask; ``"zeros"``: same size, the
    padding counts as 1 (pixels beyond the border do not erode)."""
    n, c, h, w = mask.shape
    v = mask.reshape(n * c, 1, h, w)
    r = size // 2
    if padding == "zeros":
        v = F.pad(v, (r, r, r, r), value=1.0)
    elif padding is not None:
        v = F.pad(v, (r, r, r, r), mode=padding)
    out = -F.max_pool2d(-v, size, stride=1)
    return out.reshape(n, c, out.shape[-2], out.shape[-1])


def dilate(mask: torch.Tensor, kernel) -> torch.Tensor:
    """Binary dilation of a {0, 1} float mask ``M x 1 x H x W`` by a structuring element, same size.

    ``kernel``: a 2-D array of 0 and 1 with odd sides (numpy or torch), centred on the pixel; a
    pixel becomes 1 when any 1 of the mask lies under the kernel's 1s -- the maximum OpenCV's
    ``cv2.dilate`` takes. Pixels beyond the border count as 0. Returns 0.0 / 1.0 in ``mask``'s dtype.
    """
    k = torch.as_tensor(kernel).to(dtype=mask.dtype, device=mask.device)
    kh, kw = k.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"dilate: the kernel's sides must be odd, got {kh} x {kw}")
    counts = F.conv2d(mask, k.view(1, 1, kh, kw), padding=(kh // 2, kw // 2))
    return (counts > 0.5).to(mask.dtype)          # counts are integers; 0.5 absorbs any rounding
