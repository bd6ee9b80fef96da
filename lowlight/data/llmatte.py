"""LL-Matte: the course's procedural low-light matting data set (notebook 01b).

The article trains on real low-light foregrounds composited on HDR backgrounds and tests
on a private 200-image "LL-Matte-Test".  We build a stand-in offline and deterministically:

1. a procedural foreground with fractional alpha (:mod:`lowlight.data.foregrounds`),
2. a background (:mod:`lowlight.data.backgrounds`) matched to the family's scenario
   (portraits mostly at night, products mostly backlit),
3. the normal-light composite ``I = alpha*F + (1-alpha)*B`` in 8-bit sRGB,
4. its low-light version from the physical simulator, parameters drawn from
   :data:`lowlight.simulate.PARAM_RANGES` (or the article's formula), alpha unchanged,
5. a trimap from alpha for evaluation,
6. optionally (``LLMatteSpec.processed``) the same low-light frame as a phone delivers it:
   :func:`lowlight.simulate.camera_pipeline` with the *same* sensor draw (parameters and noise),
   then auto-exposure gain, denoising, sharpening and JPEG with settings drawn from
   :data:`lowlight.simulate.CAMERA_RANGES` -- the "processed" low-light version beside the "raw" one.

Optionally (``LLMatteSpec.backlit_clipped`` > 0) a share of the ``portrait`` and ``product``
samples is shot against a bright source with the exposure set for it -- the article's
"backlit product" failure: background kind ``backlit_clipped`` (highlights clipped at 255,
sometimes flare/haze) and the subject under-exposed by the same exposure
(:func:`lowlight.data.backgrounds.backlight_foreground`). Which samples are drawn from a
stream of their own, so the other samples stay byte-identical to the default data, and the
default spec (0) leaves the spec's dictionary -- and so the cache key -- as it was.

Every sample has its own random stream ``SeedSequence([seed, split, index])``: a sample
depends only on the seed, its split and its index, never on how many samples come before
it or on the order of generation.  The test split (``n_test`` = 200 on ``full``) is the
stand-in for LL-Matte-Test.

On disk (``data/llmatte/<profile>-<key>/``)::

    manifest.json                       seed, parameters, per-sample metadata, SHA-256 and size of files
    train/normal/train-00000.png        normal-light composite (RGB)
    train/low/train-00000.png           low-light input (RGB)
    train/alpha/train-00000.png         alpha (8-bit grey)
    train/trimap/train-00000.png        trimap (0 / 128 / 255)
    train/processed/train-00000.png     the phone-processed low-light input (only with ``processed``)
    val/...  test/...

Lossless PNG, one folder per kind: each split is itself an image/alpha folder (layout (b)
of ``data/README.md``), readable by :class:`lowlight.data.ImageAlphaFolder`, viewable in
any image viewer, and scales to ``full`` (2300 samples at 512 px) without holding the set
in memory.  ``<key>`` hashes the generation parameters *and* the generator's code (the
syntax trees of this package's generator modules and of :mod:`lowlight.simulate`, without
comments and docstrings), so the cache is rebuilt exactly when either changes. A cached folder
is checked against the manifest whenever it is reused (every file present, of its recorded size
and SHA-256): a damaged one is refused with an error naming the file, never used as it is.

This module makes one sample (:func:`make_sample`) and holds the spec; building, caching,
reading and verifying the folders on disk is :mod:`lowlight.data.llmatte_cache`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .. import config
from .backgrounds import backlight_foreground, make_background
from ..color import luminance
from .compositing import composite, fractional_fraction, to_alpha_uint8
from .foregrounds import FAMILIES, make_foreground
from .trimap import trimap_from_alpha

__all__ = [
    "SPLITS", "KINDS", "PROCESSED", "LOW_VERSIONS", "DEFAULT_FAMILY_WEIGHTS", "BACKGROUNDS_FOR_FAMILY", "LLMatteSpec",
    "sample_rng", "make_sample",
]

SPLITS = ("train", "val", "test")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
KINDS = ("normal", "low", "alpha", "trimap")
#: the extra kind of a spec with ``processed=True``: the low-light frame after a phone's processing
PROCESSED = "processed"
#: the low-light versions a dataset can read: the raw sensor frame, or the phone-processed photo
LOW_VERSIONS = ("raw", "processed")

#: how often each foreground family is drawn
DEFAULT_FAMILY_WEIGHTS: dict[str, float] = {
    "solid": 0.16, "hair": 0.20, "transparent": 0.14, "smoke": 0.10, "portrait": 0.24, "product": 0.16,
}
#: background kinds per family (the article's scenarios: night portrait, backlit product)
BACKGROUNDS_FOR_FAMILY: dict[str, dict[str, float]] = {
    "portrait": {"night": 0.6, "photo": 0.25, "procedural": 0.15},
    "product": {"backlit": 0.5, "night": 0.2, "photo": 0.2, "procedural": 0.1},
    "*": {"photo": 0.45, "procedural": 0.25, "night": 0.2, "backlit": 0.1},
}
LOWLIGHT_METHODS = ("physical", "article")
#: the families ``backlit_clipped`` applies to (the article's backlit product, and backlit portraits)
BACKLIT_FAMILIES = ("portrait", "product")


@dataclass(frozen=True)
class LLMatteSpec:
    """Everything that determines the generated data (hashed into the cache key)."""

    seed: int = 0
    image_size: int = 128          # train split side
    eval_size: int = 128           # val / test side
    n_train: int = 384
    n_val: int = 48
    n_test: int = 64
    lowlight: str = "physical"     # "physical" (lowlight.simulate) or "article" (the §2.1 formula)
    trimap_width: int | None = None
    family_weights: tuple = tuple(sorted(DEFAULT_FAMILY_WEIGHTS.items()))
    backlit_clipped: float = 0.0   # share of portrait/product samples shot against a clipped bright source
    processed: bool = False        # also store the phone-processed version of each low-light frame

    def __post_init__(self):
        for name in ("image_size", "eval_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 32:
                raise ValueError(f"LLMatteSpec.{name}: expected an int >= 32, got {v!r}")
        for name in ("n_train", "n_val", "n_test"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"LLMatteSpec.{name}: expected an int >= 0, got {v!r}")
        if self.lowlight not in LOWLIGHT_METHODS:
            raise ValueError(f"LLMatteSpec.lowlight: expected one of {LOWLIGHT_METHODS}, got {self.lowlight!r}")
        fw = dict(self.family_weights)
        bad = set(fw) - set(FAMILIES)
        if bad or not fw or min(fw.values()) < 0 or sum(fw.values()) <= 0:
            raise ValueError(f"LLMatteSpec.family_weights: expected non-negative weights over {FAMILIES}, got {fw}")
        _check_backlit(self.backlit_clipped, "LLMatteSpec.backlit_clipped")
        object.__setattr__(self, "backlit_clipped", float(self.backlit_clipped))
        _check_processed(self.processed, self.lowlight, "LLMatteSpec.processed")

    @classmethod
    def from_profile(cls, profile: config.Profile, **changes) -> "LLMatteSpec":
        """The spec of a :class:`lowlight.config.Profile` (its ``seed`` and ``profile.data``:
        ``n_train``/``n_val``/``n_test``, ``image_size``, ``eval_size``), with optional changes
        (e.g. ``lowlight="article"``)."""
        p = config.require_profile(profile, where="LLMatteSpec.from_profile")
        if "family_weights" in changes and isinstance(changes["family_weights"], dict):
            changes["family_weights"] = tuple(sorted(changes["family_weights"].items()))
        d = p.data
        fields_ = dict(seed=p.seed, image_size=d.image_size, eval_size=d.eval_size, n_train=d.n_train,
                       n_val=d.n_val, n_test=d.n_test)
        fields_.update(changes)
        return cls(**fields_)

    def size(self, split: str) -> int:
        return self.image_size if split == "train" else self.eval_size

    def count(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["family_weights"] = dict(self.family_weights)
        for name in ("backlit_clipped", "processed"):
            if not d[name]:            # the defaults leave the dictionary (and the cache key) as before
                del d[name]
        return d

    @property
    def kinds(self) -> tuple[str, ...]:
        """The image kinds stored per sample."""
        return KINDS + ((PROCESSED,) if self.processed else ())


def _check_processed(v, lowlight: str, name: str) -> None:
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name}: expected True or False, got {v!r}")
    if v and lowlight != "physical":
        raise ValueError(f"{name}: the phone-processed version needs lowlight='physical' (a sensor draw to "
                         f"process), got lowlight={lowlight!r}")


def _check_backlit(v, name: str) -> None:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"{name}: expected a share in [0, 1] of the portrait and product samples, got {v!r}")


# --------------------------------------------------------------------------- one sample
def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one sample: ``SeedSequence([seed, split code, index])``."""
    if split not in _SPLIT_CODE:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_CODE[split], int(index)]))


def _choose(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = sorted(weights)
    p = np.array([weights[k] for k in keys], np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _mean_linear_luma(img: np.ndarray) -> float:
    from ..color import srgb_to_linear

    return float(srgb_to_linear(luminance(img).astype(np.float64)).mean())


def make_sample(index: int, split: str = "train", size: int = 128, seed: int = 0,
                lowlight: str = "physical", family: str | None = None,
                family_weights: dict | None = None, trimap_width: int | None = None,
                backlit_clipped: float = 0.0, processed: bool = False) -> dict:
    """Generate one LL-Matte sample (notebook 01b).

    Returns a dict with uint8 arrays ``normal`` (HxWx3), ``low`` (HxWx3), ``alpha`` (HxW),
    ``trimap`` (HxW), the layers ``fg`` and ``bg``, and ``meta`` (plain values: id, family,
    style, background, simulator parameters, ``ev``, mean luminances, fraction of
    fractional-alpha pixels).  A pure function of its arguments.

    ``backlit_clipped``: the probability that a ``portrait`` or ``product`` sample is shot against
    a clipped bright source (background ``backlit_clipped``, subject under-exposed, ``fg`` returned
    as rendered); its meta then holds ``backlit_subject_ev``, ``backlit_clipped`` (share of
    background pixels at 255) and ``backlit_haze``. The choice comes from a stream of its own,
    ``SeedSequence([seed, split, index, 1])``: every other sample is the same as with 0.

    ``processed``: also return ``processed`` (uint8 HxWx3), the low-light frame as a phone delivers
    it -- :func:`lowlight.simulate.camera_pipeline` on the same sensor parameters and the same
    noise draw as ``low``, the processing settings from :func:`lowlight.simulate.sample_camera_params`
    with a stream of its own (``SeedSequence([seed, split, index, 2])``); every other array is the
    same as without it. Its settings go to ``meta`` (``cam_*``, ``mean_luma_processed``).
    """
    from ..simulate import article_low_light, sample_params, simulate

    if lowlight not in LOWLIGHT_METHODS:
        raise ValueError(f"lowlight: expected one of {LOWLIGHT_METHODS}, got {lowlight!r}")
    rng = sample_rng(seed, split, index)
    weights = family_weights or DEFAULT_FAMILY_WEIGHTS
    fam = family or _choose(rng, weights)
    fg = make_foreground(fam, size, rng)
    bg_kind = _choose(rng, BACKGROUNDS_FOR_FAMILY.get(fam, BACKGROUNDS_FOR_FAMILY["*"]))
    _check_backlit(backlit_clipped, "backlit_clipped")
    _check_processed(processed, lowlight, "processed")
    if backlit_clipped > 0 and fam in BACKLIT_FAMILIES:
        pick = np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_CODE[split], int(index), 1]))
        if pick.random() < backlit_clipped:
            bg_kind = "backlit_clipped"
    bg, bg_info = make_background(bg_kind, size, rng)
    fg_img = backlight_foreground(fg.fg, bg_info) if bg_kind == "backlit_clipped" else fg.fg
    a8 = to_alpha_uint8(fg.alpha)
    normal = composite(fg_img, a8, bg)
    if lowlight == "physical":
        params = sample_params(rng)
        noise_state = rng.bit_generator.state      # the processed version replays the same noise
        low = simulate(normal, params, rng)
        sim = {k: v for k, v in params.to_dict().items() if k not in ("cast", "shot_noise", "adc_bits")}
        sim.update(cast_r=params.cast[0], cast_g=params.cast[1], cast_b=params.cast[2])
    else:
        low = article_low_light(normal, rng=rng)
        sim = {"gamma": 0.4, "scale": 0.3}
    lum_n, lum_l = _mean_linear_luma(normal), _mean_linear_luma(low)
    if "ev" not in sim:   # the article's formula has no exposure: measure it
        sim["ev"] = math.log2(max(lum_l, 1e-6) / max(lum_n, 1e-6))
    meta = {
        "id": f"{split}-{index:05d}", "split": split, "index": int(index), "family": fam,
        "style": fg.style, "background": bg_kind, "bg_source": str(bg_info.get("source", bg_kind)),
        "texture": str(fg.info.get("texture", "procedural")), "lowlight": lowlight,
        **{k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in sim.items()},
        "mean_luma_normal": float(luminance(normal).mean()), "mean_luma_low": float(luminance(low).mean()),
        "frac_fractional": fractional_fraction(a8),
        "frac_fractional_object": fractional_fraction(a8, "object"),
    }
    if bg_kind == "backlit_clipped":
        meta.update(backlit_subject_ev=bg_info["subject_ev"], backlit_clipped=bg_info["clipped"],
                    backlit_haze=bg_info["haze"])
    out = {"normal": normal, "low": low, "alpha": a8, "trimap": trimap_from_alpha(a8, trimap_width),
           "fg": fg_img, "bg": bg, "meta": meta}
    if processed:
        out[PROCESSED] = _processed_version(normal, params, noise_state, seed, split, index, meta)
    return out


def _processed_version(normal, sensor, noise_state, seed: int, split: str, index: int, meta: dict) -> np.ndarray:
    """The phone's photo of the same exposure (see :func:`make_sample`); records its settings in ``meta``."""
    from ..simulate import camera_pipeline, sample_camera_params

    cam = sample_camera_params(np.random.default_rng(
        np.random.SeedSequence([int(seed), _SPLIT_CODE[split], int(index), 2])), sensor=sensor)
    noise = np.random.Generator(np.random.PCG64())
    noise.bit_generator.state = noise_state
    img = camera_pipeline(normal, cam, noise)
    meta.update(cam_target=cam.target, cam_max_gain=cam.max_gain, cam_denoise=cam.denoise,
                cam_denoise_strength=cam.denoise_strength, cam_unsharp_amount=cam.unsharp_amount,
                cam_jpeg_quality=int(cam.jpeg_quality), cam_tone_curve=cam.tone_curve or "none",
                mean_luma_processed=float(luminance(img).mean()))
    return img
