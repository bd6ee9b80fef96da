"""The filters the matting losses are built from -- filtering only, no loss (notebook 05).

* :func:`gaussian_window` / :func:`gaussian_radius` / :func:`gaussian_filter_valid`: the
  normalised, truncated Gaussian of SSIM, applied separably with 'valid' output;
* :func:`sobel` / :func:`sobel_magnitude`: OpenCV's 3x3 Sobel derivatives and the
  article's edge map;
* :func:`blur5` / :func:`laplacian_pyramid`: the 5-tap binomial (Burt & Adelson) blur and
  the band-pass pyramid ViTMatte's Laplacian loss is built on.

All take float tensors ``N x C x H x W`` and filter every channel on its own.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._reduce import _no_autocast

__all__ = ["PADDINGS", "gaussian_radius", "gaussian_window", "gaussian_filter_valid", "sobel",
           "sobel_magnitude", "BINOMIAL5", "blur5", "laplacian_pyramid"]

#: border handling of :func:`sobel`: OpenCV's BORDER_REFLECT_101, BORDER_REPLICATE, BORDER_CONSTANT (0)
PADDINGS = ("reflect", "replicate", "zeros")

#: the 5-tap binomial (Burt & Adelson) kernel, to be divided by 16
BINOMIAL5 = (1.0, 4.0, 6.0, 4.0, 1.0)


def _check_image(x, fn: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"{fn}: x must be a float tensor N x C x H x W, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")


# --------------------------------------------------------------------------- Gaussian (SSIM's window)


def gaussian_radius(sigma: float, truncate: float = 3.5) -> int:
    """The radius scipy.ndimage / skimage use for a Gaussian truncated at ``truncate * sigma``:
    ``int(truncate * sigma + 0.5)`` -- 5 for sigma 1.5 (an 11 x 11 window)."""
    return int(truncate * sigma + 0.5)


def gaussian_window(sigma: float, radius: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """The 1-D Gaussian ``exp(-x^2 / 2 sigma^2)`` on ``-radius..radius``, normalised to sum 1
    (computed in float64, then cast)."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=device)


def gaussian_filter_valid(x: torch.Tensor, sigma: float, truncate: float = 3.5) -> torch.Tensor:
    """Separable Gaussian filter of every channel of ``x`` (``N x C x H x W``), 'valid' output
    ``N x C x (H-2r) x (W-2r)``: only windows lying wholly inside the image (``r`` from
    :func:`gaussian_radius`). Runs in ``x``'s dtype, autocast off."""
    r = gaussian_radius(sigma, truncate)
    win = 2 * r + 1
    c = x.shape[1]
    with _no_autocast(x):
        g = gaussian_window(sigma, r, x.dtype, x.device)
        x = F.conv2d(x, g.view(1, 1, win, 1).expand(c, 1, win, 1), groups=c)
        return F.conv2d(x, g.view(1, 1, 1, win).expand(c, 1, 1, win), groups=c)


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
    return _sobel(x, padding)


def _sobel(x, padding):
    if padding not in PADDINGS:
        raise ValueError(f"sobel: padding must be one of {PADDINGS}, got {padding!r}")
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
    return _magnitude(gx, gy, eps)


def _magnitude(gx, gy, eps):
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
    with _no_autocast(x):
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
