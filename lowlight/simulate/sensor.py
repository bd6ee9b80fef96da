"""The physical camera model on numpy images: linear light, cast, blur, exposure, shot + read noise,
ADC, sRGB (notebook 01)."""
from __future__ import annotations

import math

import numpy as np

from ..color import check_image, linear_to_srgb, srgb_to_linear
from ..filters import gaussian_blur, gaussian_radius
from .params import SimParams, _as_rng


# precomputed tables: uint8 sRGB -> linear float32, 12-bit linear -> uint8 sRGB
_SRGB8_TO_LIN = srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)


def _lin_to_srgb8_table(bits: int) -> np.ndarray:
    levels = (1 << bits) - 1
    return np.round(linear_to_srgb(np.arange(levels + 1, dtype=np.float64) / levels) * 255.0).astype(np.uint8)


_LUT_CACHE: dict[int, np.ndarray] = {}


def _lin_to_srgb8(bits: int) -> np.ndarray:
    if bits not in _LUT_CACHE:
        _LUT_CACHE[bits] = _lin_to_srgb8_table(bits)
    return _LUT_CACHE[bits]


# --------------------------------------------------------------------------- blur kernels


def motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A normalised line kernel of ``length`` pixels at ``angle_deg`` (odd square size)."""
    if length <= 1:
        return np.ones((1, 1), np.float32)
    size = length if length % 2 == 1 else length + 1
    k = np.zeros((size, size), np.float64)
    c = (size - 1) / 2.0
    t = np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, 4 * length)
    th = math.radians(angle_deg)
    xs, ys = c + t * math.cos(th), c - t * math.sin(th)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = np.clip(x0 + dx, 0, size - 1), np.clip(y0 + dy, 0, size - 1)
        np.add.at(k, (yi, xi), w)
    return (k / k.sum()).astype(np.float32)


def largest_fitting_sigma(side: int) -> float | None:
    """The largest Gaussian sigma whose kernel radius (:func:`~lowlight.filters.gaussian_radius`)
    is smaller than ``side`` pixels, rounded down to 3 decimals so that the value as printed fits
    too; ``None`` for a 1-pixel side, where no kernel fits (the radius is at least 1)."""
    if side < 2:
        return None
    return math.floor((side - 1) / 3 * 1000) / 1000


def check_kernel_fits(p: SimParams, h: int, w: int, name: str = "image") -> None:
    """Refuse blur kernels that do not fit an ``h`` x ``w`` image: a kernel's radius must be
    smaller than the image's shorter side (what reflect padding can supply). A larger kernel
    would smear the whole image into its mean -- and a huge one takes minutes to build.
    The error names the parameter, the image size and the largest value that fits."""
    side = min(int(h), int(w))
    if p.blur_sigma > 0 and gaussian_radius(p.blur_sigma) >= side:
        best = largest_fitting_sigma(side)
        advice = (f"i.e. blur_sigma <= {best}" if best else
                  "and no Gaussian fits a 1-pixel side: use blur_sigma=0 (no blur)")
        raise ValueError(
            f"SimParams.blur_sigma={p.blur_sigma:g}: the Gaussian kernel (radius {gaussian_radius(p.blur_sigma)} px) "
            f"does not fit this {w}x{h} (WxH) {name}; the radius must be smaller than the shorter side "
            f"({side} px), {advice}")
    if p.motion_length > 1:
        size = p.motion_length if p.motion_length % 2 == 1 else p.motion_length + 1
        if size // 2 >= side:
            raise ValueError(
                f"SimParams.motion_length={p.motion_length}: the motion kernel ({size} px) does not fit this "
                f"{w}x{h} (WxH) {name}; its radius must be smaller than the shorter side ({side} px), i.e. "
                f"motion_length <= {2 * side - 1}")


def _blur_numpy(lin: np.ndarray, p: SimParams) -> np.ndarray:
    import cv2

    if p.blur_sigma > 0:
        lin = gaussian_blur(lin, p.blur_sigma)
    if p.motion_length > 1:
        lin = cv2.filter2D(lin, -1, motion_kernel(p.motion_length, p.motion_angle), borderType=cv2.BORDER_REFLECT_101)
    return lin


# --------------------------------------------------------------------------- the physical model (numpy)


def _standard_normal(shape, rng: np.random.Generator) -> np.ndarray:
    """float32 standard normals, seeded from ``rng``.

    torch's CPU sampler is 2-3x faster than numpy's here; it is seeded from ``rng`` so the
    result is still a pure function of the caller's Generator.
    """
    import torch

    g = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
    return torch.randn(tuple(shape), generator=g, dtype=torch.float32).numpy()


def _electrons(lin: np.ndarray, p: SimParams) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean photo-electrons of a linear scene (the well saturates at ``full_well``) and, for
    ``shot_noise="gaussian"``, the Poisson-Gaussian standard deviation ``sqrt(e + read²)``.
    Keeps ``lin``'s float precision."""
    dt = lin.dtype.type
    e = np.minimum(lin * dt(p.exposure * p.full_well), dt(p.full_well))
    std = np.sqrt(e + dt(p.read_noise ** 2)) if p.shot_noise == "gaussian" else None
    return e, std


def _expose(lin: np.ndarray, p: SimParams, rng: np.random.Generator) -> np.ndarray:
    """Linear scene (after cast and blur) -> noisy linear output in units of white (float32)."""
    fw = np.float32(p.full_well)
    electrons, std = _electrons(lin, p)
    if p.shot_noise == "gaussian":
        noise = _standard_normal(electrons.shape, rng)
        noise *= std
        electrons += noise
    elif p.shot_noise == "poisson":
        electrons = rng.poisson(electrons).astype(np.float32)
        if p.read_noise > 0:
            electrons += _standard_normal(electrons.shape, rng) * np.float32(p.read_noise)
    electrons *= np.float32(p.gain) / fw
    return electrons


def _expose_uint8_tables(p: SimParams) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel tables (3 x 256) of the mean and std of the raw ADC value for each
    8-bit input level: without blur, a pixel's noise distribution depends only on its
    own value, so the whole sensor model folds into two lookups."""
    levels = (1 << p.adc_bits) - 1
    lin = _SRGB8_TO_LIN.astype(np.float64)[None, :] * np.asarray(p.cast, np.float64)[:, None]
    e, std = _electrons(lin, p)
    scale = p.gain / p.full_well * levels
    mean = e * scale
    std = std * scale if std is not None else np.zeros_like(e)
    return mean.astype(np.float32).ravel(), std.astype(np.float32).ravel()


_CHANNEL_OFFSET = np.array([0, 256, 512], np.int16)
_CHUNK_PIXELS = 1 << 16


def _simulate_uint8_fast(rgb: np.ndarray, p: SimParams, rng: np.random.Generator, lut: np.ndarray) -> np.ndarray:
    """uint8 RGB without blur: two table lookups and one normal draw per value, processed in
    blocks of rows that fit in cache (the block size depends only on the image width, so the
    result is a pure function of image, parameters and Generator)."""
    import torch

    levels = (1 << p.adc_bits) - 1
    mean_t, std_t = _expose_uint8_tables(p)
    g = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
    h, w = rgb.shape[:2]
    rows = max(1, _CHUNK_PIXELS // w)
    out = np.empty(rgb.shape, np.uint8)
    for r0 in range(0, h, rows):
        idx = rgb[r0 : r0 + rows].astype(np.int16)
        idx += _CHANNEL_OFFSET
        y = np.take(mean_t, idx)
        if p.shot_noise == "gaussian":
            z = torch.randn(idx.shape, generator=g, dtype=torch.float32).numpy()
            z *= np.take(std_t, idx)
            y += z
        np.clip(y, 0, levels, out=y)
        np.rint(y, out=y)  # the ADC rounds
        out[r0 : r0 + rows] = lut[y.astype(np.uint16)]
    return out


def simulate_linear(linear: np.ndarray, params: SimParams | None = None, rng=None) -> np.ndarray:
    """The sensor stage alone: linear-light float image -> noisy linear output (float32,
    not clipped, not quantised). Used to measure the noise model (notebook 01)."""
    params = params or SimParams()
    lin = np.asarray(linear, dtype=np.float32)
    if not np.isfinite(lin).all() or lin.min() < 0:
        raise ValueError("linear: expected finite, non-negative linear intensities")
    return _expose(lin.copy(), params, _as_rng(rng))


def simulate(image: np.ndarray, params: SimParams | None = None, rng=None) -> np.ndarray:
    """Physically based low-light version of a normal-light sRGB image (notebook 01).

    ``image``: HxWx3 RGB or HxWx4 RGBA, uint8 or float in [0, 1]. Returns the same dtype
    (float output is quantised to 8-bit levels, as a camera's JPEG would be); RGBA keeps
    its alpha unchanged. ``params`` defaults to :class:`SimParams` (a typical night shot);
    ``rng`` is a ``numpy.random.Generator`` or an int seed.
    """
    params = params or SimParams()
    if not isinstance(params, SimParams):
        raise TypeError(f"params: expected SimParams or None, got {type(params).__name__}")
    rgb, alpha, is_uint8 = check_image(image)
    check_kernel_fits(params, *rgb.shape[:2])
    rng = _as_rng(rng)
    levels = (1 << params.adc_bits) - 1
    blurred = params.blur_sigma > 0 or params.motion_length > 1
    lut = _lin_to_srgb8(params.adc_bits)
    if is_uint8 and not blurred and params.shot_noise != "poisson":
        out = _simulate_uint8_fast(rgb, params, rng, lut)
    else:
        lin = _SRGB8_TO_LIN[rgb] if is_uint8 else srgb_to_linear(rgb.astype(np.float32)).astype(np.float32)
        if params.cast != (1.0, 1.0, 1.0):
            lin = lin * np.asarray(params.cast, np.float32)
        lin = _blur_numpy(np.ascontiguousarray(lin), params)
        y = _expose(lin, params, rng)
        y *= levels
        np.clip(y, 0, levels, out=y)
        out = lut[np.rint(y).astype(np.uint16)]  # the ADC rounds; the table encodes and rounds
    if alpha is not None:
        out = np.concatenate([out, (alpha if is_uint8 else np.round(alpha * 255).astype(np.uint8))[..., None]], axis=2)
    if is_uint8:
        return out
    res = out.astype(rgb.dtype) / 255.0
    if alpha is not None:
        res[..., 3] = alpha
    return res
