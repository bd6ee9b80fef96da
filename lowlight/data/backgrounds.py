"""Backgrounds for compositing (notebook 01b): real photos, procedural scenes, night
scenes and backlit scenes.

* ``photo``: a crop of one of scikit-image's offline photos with scale jitter (the crop
  side is 35-100 % of the photo's short side), a random mirror, and sometimes defocus --
  backgrounds behind a subject are usually out of focus.
* ``procedural``: smooth gradients, fractal-noise textures and blurred shapes.
* ``night``: what the article's "night portrait" happens in: a dark sky gradient,
  building silhouettes with lit windows, out-of-focus *bokeh* discs of street and car
  lights, and the glare of a street light.
* ``backlit``: a bright light behind the subject (window, sun glare) for the "backlit
  product" scenario.
* ``backlit_clipped``: the article's "backlit product" *failure*: a bright source behind the
  subject with the exposure set for it. The ``backlit`` scene gets a light source several times
  brighter than white; the camera exposes for the bright background, so the source, its glow
  and anything bright clip to 255, and the subject -- lit only by the dim light in front --
  comes out 1.5-3.5 stops under-exposed (:func:`backlight_foreground` darkens a foreground
  by the ``subject_ev`` the background's info records). Half of these scenes add flare/haze: a
  veil of scattered light, strongest near the source, laid over subject and background alike.
  LL-Matte uses it through ``LLMatteSpec.backlit_clipped`` (portraits and products).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from . import _draw as D
from ..color import linear_to_srgb, srgb_to_linear
from .photos import BACKGROUND_PHOTOS, load_photo

__all__ = ["BACKGROUND_KINDS", "BACKLIT_RANGES", "make_background", "backlight_foreground"]

BACKGROUND_KINDS = ("photo", "procedural", "night", "backlit", "backlit_clipped")

_LIGHT_COLOURS = np.array([
    (255, 170, 70), (255, 200, 120), (255, 140, 40), (255, 245, 225),
    (170, 200, 255), (255, 70, 50), (120, 255, 160), (255, 220, 160),
], np.float32)


def _defocus(img: np.ndarray, rng: np.random.Generator, size: int, p: float = 0.5) -> np.ndarray:
    if rng.random() < p:
        sigma = rng.uniform(0.5, 2.5) * size / 128
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return img


# real scenes are drawn more often than the grey texture photos
_PHOTO_WEIGHTS = np.array([3.0 if n in ("coffee", "chelsea", "rocket") else 1.0
                           for n in BACKGROUND_PHOTOS])
_PHOTO_WEIGHTS /= _PHOTO_WEIGHTS.sum()


def _muted(rng, lo=0, hi=255, keep=0.6):
    c = rng.uniform(lo, hi, 3)
    return c.mean() + keep * (c - c.mean())


def _photo(size, rng):
    name = str(rng.choice(BACKGROUND_PHOTOS, p=_PHOTO_WEIGHTS))
    img = D.photo_crop(load_photo(name), size, rng, scale=(0.35, 1.0))
    if name in ("brick", "grass", "gravel"):
        tint = rng.uniform(0.5, 1.0, 3).astype(np.float32)
        img = np.clip(img.astype(np.float32) * tint / tint.max(), 0, 255).astype(np.uint8)
    return _defocus(img, rng, size), {"source": name}


def _procedural(size, rng):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c1, c2 = _muted(rng), _muted(rng)
    th = rng.uniform(0, 2 * math.pi)
    g = np.clip(0.5 + (np.cos(th) * (xx - 0.5) + np.sin(th) * (yy - 0.5)), 0, 1)[..., None]
    img = c1 * (1 - g) + c2 * g
    img = img * (0.75 + 0.5 * D.fbm((size, size), rng, octaves=5)[..., None])
    img = img.astype(np.float32)
    for _ in range(int(rng.integers(2, 8))):         # blurred shapes: furniture, walls, plants
        col = _muted(rng)
        if rng.random() < 0.5:
            pts = D.rounded_rect_pts(*(rng.uniform(0, 1, 2) * size), *(rng.uniform(0.1, 0.6, 2) * size),
                                     rng.uniform(0, 0.1) * size, rng.uniform(0, math.pi))
        else:
            pts = D.blob_pts(*(rng.uniform(0, 1, 2) * size), rng.uniform(0.05, 0.3) * size, rng, 0.4)
        m = D.coverage([pts], size, ss=1)
        img = img * (1 - m[..., None]) + col * m[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    return _defocus(img, rng, size, p=0.7), {"source": "procedural"}


def _add_glow(img, cx, cy, radius, colour, strength):
    size = img.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (radius ** 2)
    img += strength * colour * (np.exp(-d2) + 0.35 / (1 + d2))[..., None]
    return img


def _night(size, rng):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    top = rng.uniform(0, 25, 3) * np.array([0.6, 0.7, 1.0])
    horizon = rng.uniform(15, 70, 3) * np.array([1.0, 0.75, 0.55])   # sodium-lit haze
    hy = rng.uniform(0.45, 0.8)
    t = np.clip(yy / hy, 0, 1)[..., None] ** 1.5
    img = (top * (1 - t) + horizon * t).astype(np.float32)
    img *= (0.85 + 0.3 * D.fbm((size, size), rng, octaves=4)[..., None])
    info = {"source": "night", "lights": 0}
    # building silhouettes with lit windows
    if rng.random() < 0.6:
        x = rng.uniform(-0.1, 0.1)
        while x < 1.0:
            w, h = rng.uniform(0.1, 0.3), rng.uniform(0.2, 0.6)
            x0, x1, y0 = int(x * size), int((x + w) * size), int((1 - h) * size)
            img[y0:, max(0, x0):max(0, x1)] = rng.uniform(3, 18, 3)
            step = max(3, size // 24)
            for wy in range(y0 + step // 2, size - step // 2, step):
                for wx in range(max(0, x0) + step // 2, min(size, x1) - step // 2, step):
                    if rng.random() < 0.3:
                        img[wy:wy + max(1, step // 2), wx:wx + max(1, step // 2)] = \
                            _LIGHT_COLOURS[rng.integers(len(_LIGHT_COLOURS))] * rng.uniform(0.4, 0.9)
            x += w + rng.uniform(0, 0.05)
    # bokeh: defocused point lights become bright discs
    bokeh = np.zeros_like(img)
    n = int(rng.integers(5, 30))
    for _ in range(n):
        r = rng.uniform(0.015, 0.07) * size
        c = _LIGHT_COLOURS[rng.integers(len(_LIGHT_COLOURS))] * rng.uniform(0.3, 1.0)
        cx, cy = rng.uniform(0, size), rng.uniform(0, size * 0.9)
        m = D.coverage([D.ellipse_pts(cx, cy, r, r, 0.0, 32)], size, ss=2)
        ring = 1.0 + 0.3 * np.clip(m - cv2.erode(m, np.ones((3, 3), np.uint8)), 0, 1)   # brighter rims
        bokeh = np.maximum(bokeh, (m * ring)[..., None] * c)
    img += cv2.GaussianBlur(bokeh, (0, 0), max(0.5, size / 256))
    info["lights"] = n
    # a street light: saturated core, wide glare and a few diffraction streaks
    if rng.random() < 0.6:
        cx, cy = rng.uniform(0.05, 0.95) * size, rng.uniform(0.05, 0.5) * size
        col = _LIGHT_COLOURS[rng.integers(3)]
        img = _add_glow(img, cx, cy, rng.uniform(0.02, 0.06) * size, col / 255.0, rng.uniform(150, 400))
        streak = np.zeros((size, size), np.float32)
        for a in rng.uniform(0, math.pi, int(rng.integers(2, 5))):
            dx, dy = math.cos(a) * size * 0.3, math.sin(a) * size * 0.3
            cv2.line(streak, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 1.0, 1, cv2.LINE_AA)
        yy2, xx2 = np.mgrid[0:size, 0:size].astype(np.float32)
        fall = np.exp(-np.hypot(xx2 - cx, yy2 - cy) / (0.08 * size))
        img += (cv2.GaussianBlur(streak, (0, 0), 0.7) * fall)[..., None] * col * 0.8
        info["street_light"] = 1
    return np.clip(img, 0, 255).astype(np.uint8), info


def _backlit(size, rng):
    if rng.random() < 0.4:
        base, _ = _photo(size, rng)
        img = base.astype(np.float32) * rng.uniform(1.2, 1.8) + 40
        src = "photo+backlight"
    else:
        yy = np.mgrid[0:size, 0:size][0].astype(np.float32) / size
        c1, c2 = rng.uniform(150, 255, 3), rng.uniform(60, 200, 3)
        img = (c1 * (1 - yy[..., None]) + c2 * yy[..., None]).astype(np.float32)
        src = "gradient"
    if rng.random() < 0.5:      # a blown-out window behind the subject
        x0, y0 = rng.uniform(0.1, 0.5, 2) * size
        w, h = rng.uniform(0.3, 0.6, 2) * size
        m = D.coverage([D.rounded_rect_pts(x0 + w / 2, y0 + h / 2, w, h, 0.0)], size, ss=1)
        img = img * (1 - m[..., None]) + 255 * m[..., None]
        img = cv2.GaussianBlur(img, (0, 0), max(0.5, size / 128))
    cx, cy = rng.uniform(0.2, 0.8) * size, rng.uniform(0.1, 0.6) * size
    img = _add_glow(img, cx, cy, rng.uniform(0.1, 0.3) * size, np.array([1.0, 0.95, 0.85], np.float32),
                    rng.uniform(80, 250))
    return np.clip(img, 0, 255).astype(np.uint8), {"source": src}


#: what ``backlit_clipped`` draws: the source's position (fractions of the side), radius (fraction),
#: peak radiance (x white, log-uniform), the background's median linear luminance after the
#: exposure, the subject's exposure in stops, and the haze (applied with probability 0.5)
BACKLIT_RANGES: dict[str, tuple[float, float]] = {
    "source_x": (0.3, 0.7), "source_y": (0.15, 0.5), "source_radius": (0.04, 0.1),
    "source_peak": (4.0, 30.0), "level": (0.45, 0.7), "subject_ev": (-3.5, -1.5), "haze": (0.03, 0.12),
}
_SOURCE_COLOUR = np.array([1.0, 0.9, 0.75], np.float32)


def _veil(shape: tuple[int, int], info: dict) -> np.ndarray:
    """Flare/haze in linear light (H x W x 3): a uniform veil plus a wide glow around the source."""
    h, w = shape
    if info["haze"] <= 0:
        return np.zeros((h, w, 1), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(xx / w - info["source_x"], yy / h - info["source_y"])
    return (info["haze"] * (0.4 + np.exp(-d / 0.35)))[..., None] * _SOURCE_COLOUR


def _backlit_clipped(size, rng):
    r = BACKLIT_RANGES
    scene, base = _backlit(size, rng)
    lin = srgb_to_linear(scene.astype(np.float32) / 255.0).astype(np.float32)
    sx, sy, rad = (float(rng.uniform(*r[k])) for k in ("source_x", "source_y", "source_radius"))
    peak = float(np.exp(rng.uniform(*np.log(r["source_peak"]))))
    disc = D.coverage([D.ellipse_pts(sx * size, sy * size, rad * size, rad * size)], size, ss=2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    glow = np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2.5 * rad) ** 2)
    radiance = lin + (peak * (disc + 0.6 * glow))[..., None] * _SOURCE_COLOUR
    level = float(rng.uniform(*r["level"]))
    k = level / max(float(np.median(radiance @ np.array([0.2126, 0.7152, 0.0722], np.float32))), 1e-6)
    info = {"source": base["source"], "subject_ev": float(rng.uniform(*r["subject_ev"])), "level": level,
            "exposure_scale": k, "source_x": sx, "source_y": sy, "source_radius": rad, "source_peak": peak,
            "haze": float(rng.uniform(*r["haze"])) if rng.random() < 0.5 else 0.0}
    out = np.clip(radiance * k + _veil((size, size), info), 0.0, 1.0)
    img = np.round(linear_to_srgb(out) * 255.0).astype(np.uint8)
    info["clipped"] = float((img == 255).all(axis=2).mean())
    return img, info


def backlight_foreground(fg: np.ndarray, info: dict) -> np.ndarray:
    """A foreground (uint8 RGB) as the backlit exposure renders it: ``subject_ev`` stops darker in
    linear light, plus the scene's flare/haze veil, back to 8-bit sRGB. ``info`` is what
    ``make_background("backlit_clipped", ...)`` returned with the background, so the subject and
    the background share one exposure and one veil."""
    lin = srgb_to_linear(np.asarray(fg, np.float32)[..., :3] / 255.0).astype(np.float32)
    out = np.clip(lin * np.float32(2.0 ** info["subject_ev"]) + _veil(lin.shape[:2], info), 0.0, 1.0)
    return np.round(linear_to_srgb(out) * 255.0).astype(np.uint8)


_KINDS = {"photo": _photo, "procedural": _procedural, "night": _night, "backlit": _backlit,
          "backlit_clipped": _backlit_clipped}


def make_background(kind: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A ``size`` x ``size`` uint8 RGB background of ``kind`` (see :data:`BACKGROUND_KINDS`)
    and a dict of plain values describing it.  Deterministic given ``rng``.  Notebook 01b."""
    if kind not in _KINDS:
        raise ValueError(f"make_background: unknown kind {kind!r}; choose from {', '.join(BACKGROUND_KINDS)}")
    img, info = _KINDS[kind](int(size), rng)
    info = {"kind": kind, **info}
    return np.ascontiguousarray(img), info
