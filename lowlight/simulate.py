"""Low-light simulation (notebook 01).

Two simulators live here.

``article_low_light``
    The article's §2.1 formula, reproduced in behaviour so the course can measure it::

        x     = I / 255
        dark  = x ** (1 / gamma) * scale          # gamma = 0.4, scale = 0.3
        noise = Poisson(dark * 255) / 255
        out   = uint8(clip(dark + 0.05 * noise, 0, 1) * 255)   # truncating cast

    Its flaws (measured in notebook 01): the Poisson sample is *added* to the signal, so
    the mean rises by 5 %; the 0.05 factor makes the noise tiny (a fraction of one digital
    number at typical dark levels); the cast truncates instead of rounding; and the
    darkening is a power law applied to gamma-encoded values, not a change of exposure.

``simulate`` / ``simulate_torch``
    A physically based camera model. A normal-light sRGB image is taken back to linear
    light (the real sRGB curve, IEC 61966-2-1), tinted by white-balance gains (colour cast
    of artificial light), blurred (defocus, hand shake), scaled by the exposure factor,
    turned into photo-electrons on a sensor whose ``full_well`` electrons map to white,
    given photon shot noise (Poisson, variance = signal) and Gaussian read noise,
    digitised by a 12-bit ADC with rounding, gamma-encoded to sRGB and rounded to 8 bits.

    In linear units ``y`` (1 = white) the noise follows the classic Poisson-Gaussian line
    ``Var[y] = a * E[y] + b`` with ``a = gain / full_well`` and
    ``b = (gain * read_noise / full_well) ** 2`` (see :func:`noise_model`); notebook 01
    measures this line on flat patches.

    ``shot_noise="gaussian"`` (default) draws one normal sample with the Poisson-Gaussian
    mean and variance -- exact in the first two moments and an order of magnitude faster
    than a Poisson draw; ``"poisson"`` draws the exact Poisson count; ``"none"`` renders
    the noise-free exposure (useful as a reference).

Both simulators take a ``numpy.random.Generator`` (or a seed) and are deterministic
with it. :func:`simulate_torch` is the same maths on batched ``N x 3 x H x W`` tensors
(for on-the-fly simulation on a GPU).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict, replace
from typing import Sequence

import numpy as np

from .color import check_image, linear_to_srgb, srgb_to_linear

__all__ = [
    "article_low_light",
    "SimParams",
    "PARAM_RANGES",
    "sample_params",
    "simulate",
    "simulate_linear",
    "simulate_torch",
    "noise_model",
    "motion_kernel",
    "check_kernel_fits",
]

# --------------------------------------------------------------------------- input checks


def _is_real(v) -> bool:
    """A real number: Python or numpy int/float, not bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _as_rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng: expected a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


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


# --------------------------------------------------------------------------- parameters

_SHOT_MODES = ("gaussian", "poisson", "none")
#: upper limits of :class:`SimParams` (far beyond any camera; they keep the maths finite --
#: numpy's Poisson sampler refuses means above ~9e18, float32 overflows near 3e38)
MAX_FULL_WELL = 1e9
MAX_READ_NOISE = 1e6
MAX_GAIN = 1e4


@dataclass(frozen=True)
class SimParams:
    """Parameters of the physical low-light camera (defaults: a typical night shot).

    exposure      fraction of the normal-light exposure that reaches the sensor
                  (0.025 = -5.3 EV: a street at night against a daylight-exposed scene)
    full_well     photo-electrons that map to white at this sensor/ISO setting; fewer
                  electrons = a higher ISO = relatively more shot noise
    read_noise    read-out noise, electrons rms (1-3 for modern CMOS, more for cheap ones)
    gain          digital gain after capture (1 = the dark image as captured; >1 brightens
                  it, amplifying the noise with it)
    cast          white-balance gains (r, g, b) applied in linear light; (1, 0.9, 0.7) is
                  a warm street-light cast
    blur_sigma    defocus blur, Gaussian sigma in pixels (0 = none)
    motion_length hand-shake motion blur, kernel length in pixels (0 or 1 = none)
    motion_angle  direction of the motion, degrees
    adc_bits      bits of the linear raw value (quantised with rounding)
    shot_noise    "gaussian" (Poisson's mean and variance, fast), "poisson" (exact), "none"
    """

    exposure: float = 0.025
    full_well: float = 4000.0
    read_noise: float = 3.0
    gain: float = 1.0
    cast: tuple[float, float, float] = (1.0, 0.95, 0.85)
    blur_sigma: float = 0.0
    motion_length: int = 0
    motion_angle: float = 0.0
    adc_bits: int = 12
    shot_noise: str = "gaussian"

    def __post_init__(self):
        # numbers may be Python or numpy scalars; they are stored as Python floats / ints
        def number(name, allow_zero=False, upper=None, why=""):
            v = getattr(self, name)
            rule = ">= 0" if allow_zero else "> 0"
            if upper is not None:
                rule += f" and <= {upper:g}"
            if not _is_real(v) or not math.isfinite(v) or (v < 0 if allow_zero else v <= 0) \
                    or (upper is not None and v > upper):
                raise ValueError(f"SimParams.{name}: expected a finite number {rule}{why}, got {v!r}")
            object.__setattr__(self, name, float(v))

        if _is_real(self.exposure) and self.exposure > 1:
            raise ValueError(f"SimParams.exposure: expected a fraction in (0, 1], got {self.exposure!r}")
        number("exposure")
        number("full_well", upper=MAX_FULL_WELL,
               why=" (photo-electrons at white; real sensors hold about 1e3 to 1e5)")
        number("read_noise", allow_zero=True, upper=MAX_READ_NOISE, why=" (electrons rms; real sensors: 1 to 10)")
        number("gain", upper=MAX_GAIN, why=" (digital gain after capture)")
        number("blur_sigma", allow_zero=True, why=" (pixels)")
        m = self.motion_length
        if not isinstance(m, (int, np.integer)) or isinstance(m, (bool, np.bool_)) or m < 0:
            raise ValueError(f"SimParams.motion_length: expected an integer >= 0, got {m!r}")
        object.__setattr__(self, "motion_length", int(m))
        if not _is_real(self.motion_angle) or not math.isfinite(self.motion_angle):
            raise ValueError(f"SimParams.motion_angle: expected a finite number of degrees, got {self.motion_angle!r}")
        object.__setattr__(self, "motion_angle", float(self.motion_angle))
        try:
            cast = tuple(self.cast)
        except TypeError:
            cast = ()
        if len(cast) != 3 or not all(_is_real(c) and 0 < c <= 4 for c in cast):
            raise ValueError(f"SimParams.cast: expected three gains (r, g, b) in (0, 4], got {self.cast!r}")
        object.__setattr__(self, "cast", tuple(float(c) for c in cast))
        if not isinstance(self.adc_bits, (int, np.integer)) or isinstance(self.adc_bits, (bool, np.bool_)) \
                or self.adc_bits not in range(8, 17):
            raise ValueError(f"SimParams.adc_bits: expected an integer in 8..16, got {self.adc_bits!r}")
        object.__setattr__(self, "adc_bits", int(self.adc_bits))
        if self.shot_noise not in _SHOT_MODES:
            raise ValueError(f"SimParams.shot_noise: expected one of {_SHOT_MODES}, got {self.shot_noise!r}")

    @property
    def ev(self) -> float:
        """Exposure change in stops (EV) relative to the normal-light image, gain included."""
        return math.log2(self.exposure * self.gain)

    @classmethod
    def from_ev(cls, ev: float, **kw) -> "SimParams":
        """Parameters with ``exposure = 2 ** ev`` (``ev`` <= 0)."""
        return cls(exposure=float(2.0 ** ev), **kw)

    def replace(self, **changes) -> "SimParams":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cast"] = list(self.cast)
        d["ev"] = self.ev
        return d


#: Ranges :func:`sample_params` draws from (for building training data).
PARAM_RANGES: dict[str, tuple] = {
    "exposure": (0.01, 0.15),       # log-uniform: -6.6 EV .. -2.7 EV
    "full_well": (1000.0, 8000.0),  # log-uniform electrons at white
    "read_noise": (1.0, 6.0),       # uniform, electrons rms
    "cast_g": (0.85, 1.0),          # green gain (red fixed at 1)
    "cast_b": (0.60, 1.05),         # blue gain: sodium/tungsten warm .. slightly cool LED
    "blur_sigma": (0.0, 1.2),       # uniform, applied with probability 0.5
    "motion_length": (0, 7),        # integer, applied with probability 0.3 (the article's kernel <= 7)
}


def sample_params(rng=None, **overrides) -> SimParams:
    """Draw :class:`SimParams` from :data:`PARAM_RANGES` (notebook 01, data set)."""
    rng = _as_rng(rng)
    r = PARAM_RANGES

    def loguniform(lo, hi):
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    exposure = loguniform(*r["exposure"])
    full_well = loguniform(*r["full_well"])
    read_noise = float(rng.uniform(*r["read_noise"]))
    cast = (1.0, float(rng.uniform(*r["cast_g"])), float(rng.uniform(*r["cast_b"])))
    blur = float(rng.uniform(*r["blur_sigma"])) if rng.random() < 0.5 else 0.0
    if rng.random() < 0.3:
        motion = int(rng.integers(r["motion_length"][0] + 2, r["motion_length"][1] + 1))
        angle = float(rng.uniform(0, 180))
    else:
        motion, angle = 0, 0.0
    p = SimParams(exposure=exposure, full_well=full_well, read_noise=read_noise, cast=cast,
                  blur_sigma=blur, motion_length=motion, motion_angle=angle)
    return p.replace(**overrides) if overrides else p


def noise_model(params: SimParams) -> tuple[float, float]:
    """``(a, b)`` of the noise line ``Var[y] = a * E[y] + b`` in linear output units."""
    a = params.gain / params.full_well
    b = (params.gain * params.read_noise / params.full_well) ** 2
    return a, b


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


def _gaussian_kernel1d(sigma: float) -> np.ndarray:
    radius = _gaussian_radius(sigma)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _gaussian_radius(sigma: float) -> int:
    return max(1, int(math.ceil(3 * sigma)))


def check_kernel_fits(p: SimParams, h: int, w: int, name: str = "image") -> None:
    """Refuse blur kernels that do not fit an ``h`` x ``w`` image: a kernel's radius must be
    smaller than the image's shorter side (what reflect padding can supply). A larger kernel
    would smear the whole image into its mean -- and a huge one takes minutes to build.
    The error names the parameter, the image size and the largest value that fits."""
    side = min(int(h), int(w))
    if p.blur_sigma > 0 and _gaussian_radius(p.blur_sigma) >= side:
        raise ValueError(
            f"SimParams.blur_sigma={p.blur_sigma:g}: the Gaussian kernel (radius {_gaussian_radius(p.blur_sigma)} px) "
            f"does not fit this {w}x{h} (WxH) {name}; the radius must be smaller than the shorter side "
            f"({side} px), i.e. blur_sigma <= {max(0, side - 1) / 3:g}")
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
        k = _gaussian_kernel1d(p.blur_sigma)
        lin = cv2.sepFilter2D(lin, -1, k, k, borderType=cv2.BORDER_REFLECT_101)
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


# --------------------------------------------------------------------------- the same maths in torch


def simulate_torch(batch, params: SimParams | Sequence[SimParams] | None = None, generator=None):
    """Batched :func:`simulate` on ``N x 3 x H x W`` float tensors in [0, 1] (any device).

    ``params`` is one :class:`SimParams` for the whole batch or one per sample;
    ``generator`` a ``torch.Generator`` on the batch's device (deterministic by its seed).
    Returns a tensor of the same shape quantised to 8-bit levels (values k / 255).
    """
    import torch
    import torch.nn.functional as F

    if not torch.is_tensor(batch) or batch.ndim != 4 or batch.shape[1] != 3:
        shape = tuple(batch.shape) if torch.is_tensor(batch) else type(batch).__name__
        raise ValueError(f"batch: expected a float tensor N x 3 x H x W in [0, 1], got {shape}")
    if not batch.is_floating_point():
        raise TypeError(f"batch: expected a floating-point tensor in [0, 1], got {batch.dtype}")
    if batch.numel() == 0:
        raise ValueError(f"batch: empty ({tuple(batch.shape)}); expected at least one image N x 3 x H x W "
                         "with N, H, W >= 1")
    if not torch.isfinite(batch).all() or batch.min() < 0 or batch.max() > 1:
        raise ValueError("batch: values must be finite and lie in [0, 1]")
    n = batch.shape[0]
    if params is None:
        params = SimParams()
    plist = [params] * n if isinstance(params, SimParams) else list(params)
    if len(plist) != n or not all(isinstance(p, SimParams) for p in plist):
        raise ValueError(f"params: expected one SimParams or a list of {n} SimParams")
    for i, p in enumerate(plist):
        check_kernel_fits(p, batch.shape[2], batch.shape[3], name=f"batch (sample {i})")
    dev, dt = batch.device, torch.float32

    def col(vals):
        return torch.tensor(vals, dtype=dt, device=dev).view(n, -1, 1, 1)

    x = batch.to(dt)
    lin = srgb_to_linear(x) * col([p.cast for p in plist])
    # blur: per-sample kernels (grouped by identical settings to keep it cheap)
    if any(p.blur_sigma > 0 or p.motion_length > 1 for p in plist):
        out = lin.clone()
        for i, p in enumerate(plist):
            img = lin[i : i + 1]
            if p.blur_sigma > 0:
                k = torch.from_numpy(_gaussian_kernel1d(p.blur_sigma)).to(dev)
                r = k.numel() // 2
                img = F.pad(img, (r, r, 0, 0), mode="reflect")
                img = F.conv2d(img, k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
                img = F.pad(img, (0, 0, r, r), mode="reflect")
                img = F.conv2d(img, k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)
            if p.motion_length > 1:
                k = torch.from_numpy(motion_kernel(p.motion_length, p.motion_angle)).to(dev)
                r = k.shape[0] // 2
                img = F.pad(img, (r, r, r, r), mode="reflect")
                img = F.conv2d(img, k.view(1, 1, *k.shape).repeat(3, 1, 1, 1), groups=3)
            out[i : i + 1] = img
        lin = out
    fw = col([p.full_well for p in plist])
    e = torch.minimum(lin * col([p.exposure for p in plist]) * fw, fw)
    rn = col([p.read_noise for p in plist])
    modes = {p.shot_noise for p in plist}
    if len(modes) != 1:
        raise ValueError("params: all samples of a batch must share one shot_noise mode")
    mode = modes.pop()
    if mode == "gaussian":
        e = e + torch.sqrt(e + rn**2) * torch.randn(e.shape, generator=generator, device=dev, dtype=dt)
    elif mode == "poisson":
        e = torch.poisson(e, generator=generator) + rn * torch.randn(e.shape, generator=generator, device=dev, dtype=dt)
    y = e * col([p.gain for p in plist]) / fw
    bits = {p.adc_bits for p in plist}
    if len(bits) != 1:
        raise ValueError("params: all samples of a batch must share adc_bits")
    levels = float((1 << bits.pop()) - 1)
    y = torch.round(y.clamp(0, 1) * levels) / levels
    s = linear_to_srgb(y)
    return (torch.round(s * 255.0) / 255.0).to(batch.dtype)
