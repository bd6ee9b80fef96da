"""Simulator parameters: :class:`SimParams`, their ranges for training data, the noise line (notebook 01)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np



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
    """Draw :class:`SimParams` from :data:`PARAM_RANGES` (notebook 01b)."""
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
