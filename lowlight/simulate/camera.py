"""A night photo as a phone delivers it: the sensor model followed by a phone's processing chain
(notebook 01, section "Night photos as a phone delivers them").

:func:`lowlight.simulate.simulate` stops at the sensor: a dark image (mean ~16 DN at the default
night exposure) whose noise is independent from pixel to pixel. A phone at night hands over
something else. It brightens the image back (a gain, so the noise is amplified with the signal),
denoises it (which smears thin hair), sharpens it and JPEG-compresses it. :func:`camera_pipeline`
renders that chain; :class:`CameraParams` holds its settings.

The chain, one stage each (the names of ``return_stages=True``):

``raw``        the sensor's dark image: ``simulate(image, params.sensor)``
``gained``     the same exposure with the gain ``g``: ``simulate(image, sensor.replace(gain=sensor.gain * g))``
               with the *same* random draws. :class:`SimParams`' ``gain`` multiplies the linear
               signal ahead of the ADC and of the sRGB encoding (as a phone's ISO gain does), so
               the noise is amplified with it: in linear units ``Var = g**2 x`` the dark model's
               variance (:func:`noise_after_gain`). ``g`` is ``params.gain`` when set; otherwise
               **auto-exposure** picks it: the gain (1 to ``max_gain``) that brings the mean luma
               (:func:`lowlight.color.luminance`) of the gained image to ``target`` -- the expected
               mean, noise included (noise darkens the mean: the sRGB curve is concave and clips at 0).
``toned``      an optional global tone curve (:data:`TONE_CURVES`), an 8-bit lookup on the sRGB values
``denoised``   OpenCV's ``fastNlMeansDenoisingColored`` (``h = hColor = denoise_strength``) or
               ``bilateralFilter`` (``sigmaColor = 2 x denoise_strength``, ``sigmaSpace = 2`` px)
``sharpened``  an unsharp mask on the 8-bit values: ``x + amount * (x - blur(x))``, ``blur`` the
               Gaussian of sigma ``unsharp_radius`` (:func:`lowlight.filters.gaussian_blur`)
``jpeg``       ``cv2.imencode(".jpg", quality)`` then ``cv2.imdecode`` (OpenCV's 4:2:0 chroma)

A real phone denoises the raw (often several frames) before its tone mapping; here the denoiser
runs on the 8-bit sRGB image, where OpenCV's filters work -- the look (smeared fine detail,
blotchy low-frequency noise) is the same kind.

The chain runs on numpy images, one at a time: the denoisers and the JPEG codec exist only in
OpenCV. On batched tensors, :func:`lowlight.simulate.simulate_torch` renders the sensor stage alone.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..color import LUMA_WEIGHTS, check_image
from ..filters import gaussian_blur, gaussian_radius
from .params import MAX_GAIN, SimParams, _as_rng, _is_real, noise_model, sample_params
from .sensor import largest_fitting_sigma, simulate

__all__ = ["CameraParams", "CAMERA_RANGES", "DENOISERS", "TONE_CURVES", "STAGES", "camera_pipeline",
           "sample_camera_params", "auto_exposure_gain", "noise_after_gain", "tone_lut"]

DENOISERS = ("nlmeans", "bilateral", "none")
#: global tone curves on 8-bit sRGB values: ``s_curve`` adds contrast (a smoothstep blended in by
#: half), ``lift`` opens the shadows (``x ** 0.8``) as night modes do
TONE_CURVES = ("s_curve", "lift")
#: the images ``camera_pipeline(..., return_stages=True)`` returns, in the order they are made
STAGES = ("raw", "gained", "toned", "denoised", "sharpened", "jpeg")
#: search and template windows of NL-means (OpenCV's defaults); bilateral's spatial sigma (px)
NLM_TEMPLATE, NLM_SEARCH, BILATERAL_SIGMA_SPACE = 7, 21, 2.0
#: the mid-grey output (linear) at which :meth:`CameraParams.from_ev` predicts the noise it denoises
_MID_LINEAR = 0.2


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class CameraParams:
    """Settings of a phone's night photo (defaults: :meth:`from_ev` at the default sensor's EV).

    sensor            :class:`SimParams` of the sensor (exposure, noise, cast, blur)
    target            auto-exposure target: mean luma (Rec. 709 on sRGB values, 0-1) of the output
    max_gain          the largest gain auto-exposure may use (phones stop near ISO 6400/100 = 64)
    gain              a fixed gain instead of auto-exposure (``None``: auto-exposure)
    denoise           ``"nlmeans"`` (OpenCV fastNlMeansDenoisingColored), ``"bilateral"`` or ``"none"``
    denoise_strength  in 8-bit DN: NL-means' ``h`` and ``hColor``; bilateral's ``sigmaColor`` / 2
                      (0 = off); about the noise's standard deviation removes most of it
    unsharp_amount    unsharp mask gain (0 = off; phones use 0.3-1)
    unsharp_radius    unsharp mask Gaussian sigma, pixels
    jpeg_quality      1-100 (OpenCV ``IMWRITE_JPEG_QUALITY``), ``None`` = no JPEG
    tone_curve        ``None`` or one of :data:`TONE_CURVES`
    """

    sensor: SimParams = field(default_factory=SimParams)
    target: float = 0.40
    max_gain: float = 64.0
    gain: float | None = None
    denoise: str = "nlmeans"
    denoise_strength: float = 15.4     # = from_ev at the default sensor's EV
    unsharp_amount: float = 0.6
    unsharp_radius: float = 1.2
    jpeg_quality: int | None = 85
    tone_curve: str | None = None

    def __post_init__(self):
        def bad(name, rule):
            raise ValueError(f"CameraParams.{name}: expected {rule}, got {getattr(self, name)!r}")

        def number(name, lo, hi, lo_open=False):
            v = getattr(self, name)
            if not _is_real(v) or not math.isfinite(v) or (v <= lo if lo_open else v < lo) or v > hi:
                bad(name, f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
            object.__setattr__(self, name, float(v))

        if not isinstance(self.sensor, SimParams):
            raise TypeError(f"CameraParams.sensor: expected SimParams, got {type(self.sensor).__name__}")
        number("target", 0.0, 1.0, lo_open=True)
        headroom = MAX_GAIN / self.sensor.gain    # sensor gain x camera gain must stay a valid SimParams.gain
        number("max_gain", 1.0, headroom)
        if self.gain is not None:
            number("gain", 0.0, headroom, lo_open=True)
        if self.denoise not in DENOISERS:
            bad("denoise", f"one of {DENOISERS}")
        number("denoise_strength", 0.0, 100.0)
        number("unsharp_amount", 0.0, 5.0)
        number("unsharp_radius", 0.0, 20.0, lo_open=True)
        q = self.jpeg_quality
        if q is not None:
            if not isinstance(q, (int, np.integer)) or isinstance(q, (bool, np.bool_)) or not 1 <= q <= 100:
                bad("jpeg_quality", "an integer in 1..100 or None")
            object.__setattr__(self, "jpeg_quality", int(q))
        if self.tone_curve is not None and self.tone_curve not in TONE_CURVES:
            bad("tone_curve", f"None or one of {TONE_CURVES}")

    @classmethod
    def from_ev(cls, ev: float, **changes) -> "CameraParams":
        """A typical phone at exposure ``ev`` (stops below the normal-light image, ``<= 0``): the
        default sensor at ``SimParams.from_ev(ev)``, auto-exposure to a mean luma of 0.40 with at
        most 64x gain, NL-means tuned to the noise the model predicts at a mid-grey output
        (``denoise_strength`` = its standard deviation in DN), unsharp 0.6 at 1.2 px, JPEG 85.
        ``changes`` replace any field (``sensor=`` too)."""
        if not _is_real(ev) or not math.isfinite(ev) or ev > 0:
            raise ValueError(f"ev: expected a finite number of stops <= 0, got {ev!r}")
        sensor = changes.pop("sensor", None) or SimParams.from_ev(float(ev))
        base = cls(sensor=sensor, **{k: v for k, v in changes.items() if k != "denoise_strength"})
        strength = changes.get("denoise_strength", round(_predicted_noise_dn(base), 1))
        return base.replace(denoise_strength=min(strength, 100.0))

    def replace(self, **changes) -> "CameraParams":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sensor"] = self.sensor.to_dict()
        return d


#: Ranges :func:`sample_camera_params` draws from (the sensor from :data:`PARAM_RANGES`).
CAMERA_RANGES: dict[str, object] = {
    "target": (0.30, 0.50),                 # uniform mean luma
    "max_gain": (16.0, 128.0),              # log-uniform
    "denoise": {"nlmeans": 0.6, "bilateral": 0.3, "none": 0.1},
    "denoise_strength": (0.6, 1.5),         # uniform, x the predicted noise std at mid-grey (DN)
    "unsharp_amount": (0.0, 1.2),           # uniform
    "unsharp_radius": (0.8, 2.0),           # uniform, pixels
    "jpeg_quality": (70, 95),               # integer, uniform
    "tone_curve": {None: 0.5, "s_curve": 0.25, "lift": 0.25},
}


def sample_camera_params(rng=None, sensor: SimParams | None = None, **overrides) -> CameraParams:
    """Draw :class:`CameraParams` from :data:`CAMERA_RANGES`; the sensor from
    :func:`sample_params` (:data:`PARAM_RANGES`), or ``sensor`` as given (the denoiser is then
    tuned to that sensor's noise). Deterministic given ``rng``."""
    rng = _as_rng(rng)
    r = CAMERA_RANGES
    if sensor is not None and not isinstance(sensor, SimParams):
        raise TypeError(f"sensor: expected SimParams or None, got {type(sensor).__name__}")
    sensor = sample_params(rng) if sensor is None else sensor

    def pick(weights):
        keys = list(weights)
        p = np.array([weights[k] for k in keys], np.float64)
        return keys[int(rng.choice(len(keys), p=p / p.sum()))]

    target = float(rng.uniform(*r["target"]))
    max_gain = float(np.exp(rng.uniform(*np.log(r["max_gain"]))))
    denoise = pick(r["denoise"])
    rel = float(rng.uniform(*r["denoise_strength"]))
    amount = float(rng.uniform(*r["unsharp_amount"]))
    radius = float(rng.uniform(*r["unsharp_radius"]))
    quality = int(rng.integers(r["jpeg_quality"][0], r["jpeg_quality"][1] + 1))
    tone = pick(r["tone_curve"])
    p = CameraParams(sensor=sensor, target=target, max_gain=max_gain, denoise=denoise, denoise_strength=0.0,
                     unsharp_amount=amount, unsharp_radius=radius, jpeg_quality=quality, tone_curve=tone)
    p = p.replace(denoise_strength=min(100.0, round(rel * _predicted_noise_dn(p), 2)) if denoise != "none" else 0.0)
    return p.replace(**overrides) if overrides else p


def noise_after_gain(params: CameraParams, gain: float) -> tuple[float, float]:
    """``(a, b)`` of the noise line ``Var[y] = a * E[y] + b`` of the gained image in linear units
    (``E[y]`` its mean): the sensor's line with the gain folded in, i.e. ``gain**2`` times the dark
    image's variance at the same scene point (``a = gain * a0``, ``b = gain**2 * b0``)."""
    return noise_model(params.sensor.replace(gain=params.sensor.gain * float(gain)))


def _predicted_noise_dn(params: CameraParams) -> float:
    """The noise std (8-bit DN) the model predicts at a mid-grey output after the gain that undoes
    the exposure (capped by ``max_gain``): what a phone tunes its denoiser to at this ISO."""
    s = params.sensor
    gain = params.gain or min(params.max_gain, max(1.0, 1.0 / (s.exposure * s.gain)))
    a, b = noise_after_gain(params, gain)
    std_linear = math.sqrt(a * _MID_LINEAR + b)
    slope = 1.055 / 2.4 * _MID_LINEAR ** (1 / 2.4 - 1) * 255.0     # d sRGB / d linear, in DN
    return std_linear * slope


# --------------------------------------------------------------------------- auto-exposure
def _level_histograms(rgb: np.ndarray) -> np.ndarray:
    """3 x 256 fractions of the pixels at each 8-bit level, per channel."""
    h = np.stack([np.bincount(rgb[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.float64)
    return h / h.sum(axis=1, keepdims=True)


#: every 8-bit level in every channel, repeated on ``_RAMP_ROWS`` rows: the expected output per level
_RAMP_ROWS = 128
_RAMP = np.ascontiguousarray(np.broadcast_to(np.arange(256, dtype=np.uint8)[None, :, None], (_RAMP_ROWS, 256, 3)))


def auto_exposure_gain(histograms: np.ndarray, params: CameraParams, iterations: int = 20) -> float:
    """The gain in ``[1, max_gain]`` that brings the expected mean luma of the gained image to
    ``params.target``, from the image's per-channel histograms of 8-bit levels (``3 x 256``).

    Without blur (blur leaves the mean as it is) a pixel's output depends only on its own level,
    so the mean luma at a gain is a sum over 3 x 256 levels: the simulator itself renders a ramp of
    every level on 128 rows (fixed seed: the same draws at every gain, so the mean grows with the
    gain) and the rows are averaged; bisection in log-gain then finds the target.
    """
    hist = np.asarray(histograms, np.float64)
    if hist.shape != (3, 256):
        raise ValueError(f"histograms: expected shape (3, 256), got {hist.shape}")
    sensor = params.sensor.replace(blur_sigma=0.0, motion_length=0)
    weights = np.asarray(LUMA_WEIGHTS, np.float64)[:, None]

    def mean_luma(g: float) -> float:
        out = simulate(_RAMP, sensor.replace(gain=sensor.gain * g), rng=0).mean(axis=0).T / 255.0   # 3 x 256
        return float((weights * hist * out).sum())

    lo, hi = 0.0, math.log2(params.max_gain)
    if mean_luma(1.0) >= params.target:
        return 1.0
    if mean_luma(params.max_gain) <= params.target:
        return float(params.max_gain)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if mean_luma(2.0 ** mid) < params.target:
            lo = mid
        else:
            hi = mid
    return float(2.0 ** (0.5 * (lo + hi)))


# --------------------------------------------------------------------------- the processing stages
def tone_lut(name: str | None) -> np.ndarray:
    """The 256-entry uint8 lookup table of a tone curve (:data:`TONE_CURVES`; ``None``: identity)."""
    x = np.arange(256, dtype=np.float64) / 255.0
    if name is None:
        y = x
    elif name == "s_curve":
        y = 0.5 * x + 0.5 * (3 * x ** 2 - 2 * x ** 3)
    elif name == "lift":
        y = x ** 0.8
    else:
        raise ValueError(f"tone_curve: expected None or one of {TONE_CURVES}, got {name!r}")
    return np.round(y * 255.0).astype(np.uint8)


def _denoise(img: np.ndarray, p: CameraParams) -> np.ndarray:
    import cv2

    if p.denoise == "none" or p.denoise_strength == 0:
        return img
    if p.denoise == "nlmeans":   # works in Lab: the channel order matters
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        out = cv2.fastNlMeansDenoisingColored(bgr, None, p.denoise_strength, p.denoise_strength,
                                              NLM_TEMPLATE, NLM_SEARCH)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
    return cv2.bilateralFilter(np.ascontiguousarray(img), 0, 2.0 * p.denoise_strength, BILATERAL_SIGMA_SPACE)


def _check_radius(p: CameraParams, h: int, w: int, name: str) -> None:
    if p.unsharp_amount > 0 and gaussian_radius(p.unsharp_radius) >= min(h, w):
        best = largest_fitting_sigma(min(h, w))
        advice = (f"use unsharp_radius <= {best}" if best else
                  "no sharpening kernel fits a 1-pixel side: use unsharp_amount=0 (no sharpening)")
        raise ValueError(f"CameraParams.unsharp_radius={p.unsharp_radius:g}: the Gaussian kernel (radius "
                         f"{gaussian_radius(p.unsharp_radius)} px) does not fit this {w}x{h} (WxH) {name}; {advice}")


def _sharpen(img: np.ndarray, p: CameraParams) -> np.ndarray:
    if p.unsharp_amount == 0:
        return img
    x = img.astype(np.float32)
    blur = gaussian_blur(x, p.unsharp_radius)
    y = x + np.float32(p.unsharp_amount) * (x - blur)
    return np.rint(np.clip(y, 0, 255)).astype(np.uint8)


def _jpeg(img: np.ndarray, p: CameraParams) -> np.ndarray:
    import cv2

    if p.jpeg_quality is None:
        return img
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, p.jpeg_quality])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _check_rgb(image, name: str = "image") -> np.ndarray:
    """uint8 RGB (float in [0, 1] is rounded to 8-bit levels); clear errors otherwise."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 1:
        raise ValueError(f"{name}: greyscale image of shape {image.shape}; expected RGB HxWx3 "
                         "(stack the grey channel: np.repeat(img, 3, axis=2))")
    rgb, alpha, is_uint8 = check_image(image, name)
    if alpha is not None:
        raise ValueError(f"{name}: RGBA image of shape {image.shape}; a camera sees no alpha: pass {name}[..., :3]")
    if not is_uint8:
        rgb = np.rint(rgb * 255.0).astype(np.uint8)
    return np.ascontiguousarray(rgb)


def _check_params(params) -> CameraParams:
    if params is None:
        return CameraParams()
    if not isinstance(params, CameraParams):
        raise TypeError(f"params: expected CameraParams or None, got {type(params).__name__}")
    return params


# --------------------------------------------------------------------------- the pipeline (numpy)
def camera_pipeline(image: np.ndarray, params: CameraParams | None = None, rng=None, return_stages: bool = False):
    """A phone's night photo of a normal-light sRGB ``image`` (notebook 01).

    ``image``: HxWx3 RGB, uint8 (or float in [0, 1], rounded to 8-bit levels first); returns uint8
    HxWx3 -- what the phone saves. ``params``: :class:`CameraParams` (default: a typical night shot);
    ``rng``: a ``numpy.random.Generator`` or an int seed (the result is a pure function of image,
    params and seed; the noise is that of ``simulate(image, params.sensor, rng)`` with the same
    ``rng``, amplified by the gain). With ``return_stages=True`` returns ``(out, stages)``: ``stages`` maps each of
    :data:`STAGES` to its uint8 image (``"raw"`` is the dark sensor image, ``"gained"`` the same
    draws after the gain, before any processing), plus ``"gain"`` (the gain used) and ``"seconds"``
    (time per stage).
    """
    rgb = _check_rgb(image)
    p = _check_params(params)
    h, w = rgb.shape[:2]
    _check_radius(p, h, w, "image")
    rng = _as_rng(rng)
    state = rng.bit_generator.state
    seconds: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        seconds[name] = now - t
        t = now

    gain = p.gain if p.gain is not None else auto_exposure_gain(_level_histograms(rgb), p)
    lap("auto_exposure")
    stages: dict = {}
    if return_stages:   # the same generator state: the same noise, before the gain
        stages["raw"] = simulate(rgb, p.sensor, rng)
        rng.bit_generator.state = state
        lap("raw")
    x = simulate(rgb, p.sensor.replace(gain=p.sensor.gain * gain), rng)
    stages["gained"] = x
    lap("gained")
    if p.tone_curve is not None:
        x = tone_lut(p.tone_curve)[x]
    stages["toned"] = x
    lap("toned")
    x = stages["denoised"] = _denoise(x, p)
    lap("denoised")
    x = stages["sharpened"] = _sharpen(x, p)
    lap("sharpened")
    x = stages["jpeg"] = _jpeg(x, p)
    lap("jpeg")
    if not return_stages:
        return x
    stages["gain"] = float(gain)
    stages["seconds"] = seconds
    return x, stages
