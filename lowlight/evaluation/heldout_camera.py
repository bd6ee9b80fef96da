"""A second camera, used only for evaluation: a degradation the fine-tune never saw (issue 20).

The course fine-tunes MODNet on night photos rendered by :mod:`lowlight.simulate`. Scoring the
fine-tune through that same simulator measures how well it learned *that* degradation: the test
photos are held out, the degradation is not. This module is a camera written apart from the
simulator -- it imports neither :mod:`lowlight.simulate` nor :mod:`lowlight.training` (an
import-linter contract in ``pyproject.toml`` keeps it so) -- with another sensor layout, another
noise balance, another tone curve and harder JPEG, so that an evaluation through it holds out the
content *and* the degradation. Nothing in training may render through it.

The chain (:func:`raw_mosaic`, then :func:`develop`; :func:`render` runs both):

1. the 8-bit sRGB image is decoded to linear light and scaled to the exposure ``2 ** ev``;
2. an **RGGB Bayer mosaic** samples one colour per photosite (R at (0, 0), G at (0, 1) and (1, 0),
   B at (1, 1)), weighted by the sensor's ``channel_response`` (raw green is the strongest);
3. **per-photosite noise** in electrons: Poisson shot noise (exact), Gaussian read noise and an
   optional per-row offset (banding); an **analog gain** ``min(max_analog_gain, 2 ** (-ev - 1))``
   (one stop of headroom) and a **10- or 14-bit ADC** with a black level give the raw DN. In DN, a
   flat patch obeys ``Var = K * S + (K * read_noise) ** 2 + 1/12`` (``S`` the mean above black,
   ``K`` = :func:`conversion_gain` in DN per electron, 1/12 the rounding);
4. **demosaicing with OpenCV** (bilinear, or edge-aware ``"ea"``). OpenCV names a Bayer pattern
   by the 2nd and 3rd pixels of its *second* row, so RGGB is ``cv2.COLOR_BayerBG2RGB`` (OpenCV >= 4.5
   aliases it ``COLOR_BayerRGGB2RGB``); ``COLOR_BayerRG2RGB`` would swap red and blue;
5. black level off, **white balance** (``wb_gains``; default the inverse of ``channel_response``,
   so grey stays grey and red / blue carry the amplified noise of weaker channels);
6. **auto-exposure**: the digital gain in ``[1/16, max_digital_gain]`` that brings the centre-weighted
   mean Rec. 601 luma of the output to ``target``;
7. another **tone curve** (:func:`tone_curve`): a tanh shoulder above ``shoulder`` (linear), then a
   pure power ``1 / gamma`` -- no sRGB curve (and no linear toe) anywhere on the way out;
8. **chroma-only denoising** (a Gaussian on Cr/Cb; the luma grain stays) and **JPEG** at
   ``jpeg_quality`` (OpenCV, 4:2:0).

Ranges against the training simulator's (``PARAM_RANGES`` / ``CAMERA_RANGES`` of
:mod:`lowlight.simulate`; the held-out values are the defaults of :class:`HeldOutCameraParams`):

=================  =========================================  =========================================
quantity           training simulator                         held-out camera
=================  =========================================  =========================================
exposure           0.01 .. 0.15 log-uniform: EV -6.6 .. -2.7  :data:`HELDOUT_EVS`: EV -3 .. -8
                                                              (:func:`render` takes any EV in [-12, 0])
colour sampling    full RGB at every pixel                    RGGB Bayer mosaic, OpenCV demosaic
e- at white, EV 0  1000 .. 8000 (``full_well``)               20000 (``electrons_at_white``)
shot noise         Gaussian, Poisson's mean and variance      Poisson per photosite (exact)
read noise         1 .. 6 e- rms, independent                 9 e- rms + 1.5 e- rms per row (banding)
ADC                12 bit, no black level                     10 bit, black level 64 DN
gain               before the ADC, auto: 1 .. 16-128x         analog 1 .. 16x before the ADC, then
                                                              digital 1/16 .. 32x after it
auto-exposure      mean Rec. 709 luma 0.30 .. 0.50            centre-weighted Rec. 601 luma 0.25
colour             cast r 1, g 0.85-1.0, b 0.60-1.05, kept    response (0.55, 1, 0.75), white-balanced
tone               sRGB (half the draws + s-curve / lift)     tanh shoulder above 0.5, gamma 1/2.2
denoise            NL-means / bilateral on RGB                Gaussian on chroma only (1.5 px)
sharpening         unsharp mask 0 .. 1.2                      none
JPEG quality       70 .. 95                                   55
=================  =========================================  =========================================

The outputs are darker than the training photos (auto-exposure aims at luma 0.25; the astronaut at
EV -3 .. -7 comes out at a mean of about 63 DN against the phone pipeline's 84-104): pass
``target=0.4`` to hold out everything but the brightness. Deterministic: the result is a pure
function of image, EV, parameters and seed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..color import check_image, srgb_to_linear

__all__ = ["HeldOutCameraParams", "HELDOUT_EVS", "DEMOSAIC_CODES", "BAYER_SITES", "render", "raw_mosaic",
           "develop", "analog_gain", "conversion_gain", "tone_curve", "jpeg_roundtrip"]

#: the exposures an evaluation renders (reaching 1.4 stops below the darkest training draw)
HELDOUT_EVS = (-3.0, -4.0, -5.0, -6.0, -7.0, -8.0)
#: the EVs :func:`render` accepts
EV_LIMITS = (-12.0, 0.0)
#: colour channel (0 R, 1 G, 2 B) of each photosite of the 2 x 2 RGGB tile, by (row % 2, column % 2)
BAYER_SITES = {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 2}
#: OpenCV conversion of an RGGB mosaic (OpenCV's name: the 2nd row's 2nd and 3rd pixels, "BG")
DEMOSAIC_CODES = {"bilinear": "COLOR_BayerBG2RGB", "ea": "COLOR_BayerBG2RGB_EA"}
#: Rec. 601 luma weights (on the gamma-encoded output), the auto-exposure's metering
REC601 = (0.299, 0.587, 0.114)
#: the smallest digital gain (auto-exposure darkens an image the analog gain left too bright)
MIN_DIGITAL_GAIN = 1.0 / 16.0
#: the metering's centre weighting: a Gaussian of this fraction of the height / width
_METERING_SIGMA = 0.35
#: auto-exposure meters on at most about this many pixels (a regular subsample)
_METERING_PIXELS = 1 << 14
_UINT8_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)

# name: (low, high, low bound open) of the plain number fields
_NUMBER_RANGES = {
    "electrons_at_white": (0.0, 1e7, True),
    "read_noise": (0.0, 1000.0, False),
    "row_noise": (0.0, 1000.0, False),
    "max_analog_gain": (1.0, 1024.0, False),
    "target": (0.0, 1.0, True),
    "max_digital_gain": (1.0, 4096.0, False),
    "shoulder": (0.25, 1.0, False),
    "gamma": (1.0, 4.0, False),
    "chroma_blur": (0.0, 20.0, False),
}


def _real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _integer(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


@dataclass(frozen=True)
class HeldOutCameraParams:
    """Settings of the held-out camera (defaults: the evaluation's camera; module docstring: how
    they compare with the training simulator's ranges).

    electrons_at_white  photo-electrons a white photosite (linear 1, response 1) collects at EV 0
    read_noise          Gaussian read noise, electrons rms, independent per photosite
    row_noise           a Gaussian offset shared by each row of photosites, electrons rms (banding)
    adc_bits            10 or 14 (the training simulator's 12 is refused)
    black_level         the ADC's pedestal in DN (negative noise survives it), below 1/4 of full scale
    max_analog_gain     the largest analog gain before the ADC (ISO / base ISO)
    channel_response    relative sensitivity (r, g, b) of the photosites under the scene's light, each in (0, 1]
    wb_gains            white-balance gains (r, g, b) in (0, 16]; ``None``: ``1 / channel_response``
    demosaic            ``"bilinear"`` or ``"ea"`` (OpenCV's edge-aware)
    target              auto-exposure target: centre-weighted mean Rec. 601 luma of the output, in (0, 1]
    max_digital_gain    the largest digital gain auto-exposure may apply after the ADC (the smallest:
                        :data:`MIN_DIGITAL_GAIN`)
    shoulder            linear value above which the tone curve's shoulder rolls off towards white (1 = clip)
    gamma               the output's display exponent: ``y ** (1 / gamma)``
    chroma_blur         Gaussian sigma (pixels) on the chroma channels; 0 = off
    jpeg_quality        1..100 (OpenCV ``IMWRITE_JPEG_QUALITY``) or ``None`` (no JPEG)
    """

    electrons_at_white: float = 20000.0
    read_noise: float = 9.0
    row_noise: float = 1.5
    adc_bits: int = 10
    black_level: int = 64
    max_analog_gain: float = 16.0
    channel_response: tuple[float, float, float] = (0.55, 1.0, 0.75)
    wb_gains: tuple[float, float, float] | None = None
    demosaic: str = "bilinear"
    target: float = 0.25
    max_digital_gain: float = 32.0
    shoulder: float = 0.5
    gamma: float = 2.2
    chroma_blur: float = 1.5
    jpeg_quality: int | None = 55

    def __post_init__(self):
        def refuse(name, rule):
            raise ValueError(f"HeldOutCameraParams.{name}: expected {rule}, got {getattr(self, name)!r}")

        for name, (lo, hi, lo_open) in _NUMBER_RANGES.items():
            v = getattr(self, name)
            if not _real(v) or not math.isfinite(v) or (v <= lo if lo_open else v < lo) or v > hi:
                refuse(name, f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
            object.__setattr__(self, name, float(v))
        if not _integer(self.adc_bits) or self.adc_bits not in (10, 14):
            refuse("adc_bits", "10 or 14 (bits of the ADC; the training simulator's 12 is held out)")
        object.__setattr__(self, "adc_bits", int(self.adc_bits))
        quarter = (1 << self.adc_bits) // 4
        if not _integer(self.black_level) or not 0 <= self.black_level < quarter:
            refuse("black_level", f"an integer DN in [0, {quarter}) for a {self.adc_bits}-bit ADC")
        object.__setattr__(self, "black_level", int(self.black_level))
        object.__setattr__(self, "channel_response", self._triple("channel_response", 1.0))
        if self.wb_gains is not None:
            object.__setattr__(self, "wb_gains", self._triple("wb_gains", 16.0))
        if self.demosaic not in DEMOSAIC_CODES:
            refuse("demosaic", f"one of {tuple(DEMOSAIC_CODES)}")
        q = self.jpeg_quality
        if q is not None:
            if not _integer(q) or not 1 <= q <= 100:
                refuse("jpeg_quality", "an integer in 1..100 or None")
            object.__setattr__(self, "jpeg_quality", int(q))

    def _triple(self, name: str, hi: float) -> tuple[float, float, float]:
        v = getattr(self, name)
        try:
            t = tuple(v)
        except TypeError:
            t = ()
        if len(t) != 3 or not all(_real(c) and math.isfinite(c) and 0 < c <= hi for c in t):
            raise ValueError(f"HeldOutCameraParams.{name}: expected three numbers (r, g, b) in (0, {hi:g}], got {v!r}")
        return tuple(float(c) for c in t)

    @property
    def white_dn(self) -> int:
        """The ADC's largest value."""
        return (1 << self.adc_bits) - 1

    @property
    def white_balance(self) -> np.ndarray:
        """The white-balance gains in use (r, g, b), float32."""
        gains = self.wb_gains or tuple(1.0 / c for c in self.channel_response)
        return np.asarray(gains, np.float32)

    def replace(self, **changes) -> "HeldOutCameraParams":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- input checks
def _params(params) -> HeldOutCameraParams:
    """``params``, or the defaults for ``None``."""
    p = HeldOutCameraParams() if params is None else params
    if not isinstance(p, HeldOutCameraParams):
        raise TypeError(f"params: expected HeldOutCameraParams or None, got {type(p).__name__}")
    return p


def _generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or _integer(rng):
        return np.random.default_rng(None if rng is None else int(rng))
    raise TypeError(f"rng: expected a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def _ev(ev) -> float:
    lo, hi = EV_LIMITS
    if not _real(ev) or not math.isfinite(ev) or not lo <= ev <= hi:
        raise ValueError(f"ev: expected a number of stops in [{lo:g}, {hi:g}] (evaluation: {HELDOUT_EVS[0]:g} .. "
                         f"{HELDOUT_EVS[-1]:g}), got {ev!r}")
    return float(ev)


def _rgb8(image) -> np.ndarray:
    rgb, alpha, is_uint8 = check_image(image)
    if alpha is not None:
        raise ValueError(f"image: RGBA of shape {image.shape}; a camera sees no alpha: pass image[..., :3]")
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise ValueError(f"image: expected at least 2 x 2 pixels (one Bayer tile), got shape {rgb.shape}")
    return rgb if is_uint8 else np.rint(rgb * 255.0).astype(np.uint8)


# --------------------------------------------------------------------------- the sensor
def analog_gain(ev: float, params: HeldOutCameraParams | None = None) -> float:
    """The analog gain the camera sets at exposure ``ev``: it undoes the exposure but one stop
    (headroom for highlights), between 1 and ``max_analog_gain``."""
    p = _params(params)
    return float(min(p.max_analog_gain, max(1.0, 2.0 ** (-_ev(ev) - 1.0))))


def conversion_gain(ev: float, params: HeldOutCameraParams | None = None) -> float:
    """``K``, DN per electron at exposure ``ev``: at analog gain 1, ``electrons_at_white`` electrons
    fill the ADC from the black level to full scale."""
    p = _params(params)
    return (p.white_dn - p.black_level) / p.electrons_at_white * analog_gain(ev, p)


def _bayer_plane(linear: np.ndarray, weights) -> np.ndarray:
    """The one-channel RGGB mosaic of a linear HxWx3 image, each site scaled by its channel's weight."""
    plane = np.empty(linear.shape[:2], np.float64)
    for (dy, dx), c in BAYER_SITES.items():
        plane[dy::2, dx::2] = linear[dy::2, dx::2, c] * weights[c]
    return plane


def raw_mosaic(image, ev: float, rng=None, params: HeldOutCameraParams | None = None) -> np.ndarray:
    """The noisy RGGB mosaic of ``image`` at exposure ``ev``, as the ADC delivers it: uint16 ``H x W``
    in DN, black level included (:data:`BAYER_SITES` says which colour each photosite saw).

    ``image``: uint8 RGB (float in [0, 1] is rounded to 8-bit levels); ``rng``: a Generator, an int
    seed or ``None``. Electrons: Poisson of ``linear * response * 2 ** ev * electrons_at_white``,
    plus read noise and the row offsets; DN: ``black_level + K * electrons`` rounded and clipped
    to the ADC's range (``K`` = :func:`conversion_gain`)."""
    rgb = _rgb8(image)
    ev = _ev(ev)
    p = _params(params)
    g = _generator(rng)
    photons = _bayer_plane(_UINT8_TO_LINEAR[rgb], p.channel_response) * (2.0 ** ev * p.electrons_at_white)
    electrons = g.poisson(photons).astype(np.float64)
    if p.read_noise > 0:
        electrons += g.standard_normal(electrons.shape) * p.read_noise
    if p.row_noise > 0:
        electrons += g.standard_normal((electrons.shape[0], 1)) * p.row_noise
    dn = np.rint(p.black_level + conversion_gain(ev, p) * electrons)
    return np.clip(dn, 0, p.white_dn).astype(np.uint16)


# --------------------------------------------------------------------------- the processing
def tone_curve(linear, shoulder: float = 0.5, gamma: float = 2.2) -> np.ndarray:
    """The held-out camera's curve: linear up to ``shoulder``, above it a tanh shoulder that rolls off
    smoothly (continuous slope) towards white, then a pure power ``1 / gamma``. Negative input is
    black. Not sRGB: no linear toe (the power's slope is steep in the shadows, lifting their noise)
    and compressed highlights; ``shoulder=1`` is a hard clip at 1."""
    x = np.maximum(np.asarray(linear, np.float32), 0.0)
    if shoulder < 1.0:
        k = np.float32(shoulder)
        x = np.where(x > k, k + (1 - k) * np.tanh((x - k) / (1 - k)), x)
    return np.minimum(x, 1.0) ** np.float32(1.0 / gamma)


def _metering(linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A regular subsample of the linear RGB image and its centre weights (summing to 1)."""
    h, w = linear.shape[:2]
    step = max(1, int(math.ceil(math.sqrt(h * w / _METERING_PIXELS))))
    sample = linear[step // 2 :: step, step // 2 :: step]
    ys = (np.arange(step // 2, h, step) + 0.5) / h - 0.5
    xs = (np.arange(step // 2, w, step) + 0.5) / w - 0.5
    weights = np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2) / _METERING_SIGMA ** 2)
    return sample, weights / weights.sum()


def _auto_exposure(linear: np.ndarray, p: HeldOutCameraParams, iterations: int = 24) -> float:
    """The digital gain in ``[MIN_DIGITAL_GAIN, max_digital_gain]`` whose output's centre-weighted
    mean Rec. 601 luma is ``p.target`` (bisection in log gain; the tone curve is monotonic)."""
    sample, weights = _metering(linear)
    luma = np.asarray(REC601, np.float32)

    def brightness(gain: float) -> float:
        return float((tone_curve(sample * np.float32(gain), p.shoulder, p.gamma) @ luma * weights).sum())

    if brightness(MIN_DIGITAL_GAIN) >= p.target:
        return MIN_DIGITAL_GAIN
    if brightness(p.max_digital_gain) <= p.target:
        return p.max_digital_gain
    lo, hi = math.log2(MIN_DIGITAL_GAIN), math.log2(p.max_digital_gain)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if brightness(2.0 ** mid) < p.target else (lo, mid)
    return float(2.0 ** (0.5 * (lo + hi)))


def _blur_chroma(rgb: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    for c in (1, 2):
        ycc[..., c] = cv2.GaussianBlur(ycc[..., c], (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT_101)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> tuple[np.ndarray, int]:
    """``(decoded uint8 RGB, size of the JPEG file in bytes)`` of an OpenCV JPEG at ``quality``."""
    import cv2

    bgr = np.ascontiguousarray(rgb[..., ::-1])
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError(f"OpenCV could not encode a JPEG at quality {quality}")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(decoded[..., ::-1]), int(encoded.size)


def develop(raw: np.ndarray, params: HeldOutCameraParams | None = None, return_gain: bool = False):
    """The camera's processing of a :func:`raw_mosaic`: OpenCV demosaic, black level, white
    balance, auto-exposure, tone curve, chroma denoising, JPEG. Returns uint8 RGB ``H x W x 3``
    (with ``return_gain=True``: ``(image, digital gain)``). ``raw`` must come from the same
    ``params`` (its ADC depth and black level)."""
    import cv2

    p = _params(params)
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint16 or raw.ndim != 2 or min(raw.shape) < 2:
        raise ValueError(f"raw: expected a uint16 H x W mosaic (H, W >= 2) from raw_mosaic, got "
                         f"{getattr(raw, 'dtype', type(raw).__name__)} of shape {getattr(raw, 'shape', None)}")
    if int(raw.max()) > p.white_dn:
        raise ValueError(f"raw: values up to {int(raw.max())} exceed the {p.adc_bits}-bit ADC of params "
                         f"(<= {p.white_dn}); develop it with the params that made it")
    rgb = cv2.cvtColor(raw, getattr(cv2, DEMOSAIC_CODES[p.demosaic])).astype(np.float32)
    linear = (rgb - np.float32(p.black_level)) / np.float32(p.white_dn - p.black_level) * p.white_balance
    gain = _auto_exposure(linear, p)
    out = np.rint(tone_curve(linear * np.float32(gain), p.shoulder, p.gamma) * 255.0).astype(np.uint8)
    if p.chroma_blur > 0:
        out = _blur_chroma(out, p.chroma_blur)
    if p.jpeg_quality is not None:
        out = jpeg_roundtrip(out, p.jpeg_quality)[0]
    return (out, gain) if return_gain else out


def render(image, ev: float, rng=None, params: HeldOutCameraParams | None = None) -> np.ndarray:
    """``image`` (uint8 RGB, normal light) photographed at exposure ``ev`` by the held-out camera:
    ``develop(raw_mosaic(image, ev, rng, params), params)``, uint8 RGB of the same size. A pure
    function of image, EV, params and seed."""
    p = _params(params)
    return develop(raw_mosaic(image, ev, rng, p), p)
