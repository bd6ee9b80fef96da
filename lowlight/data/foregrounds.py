"""Procedural foregrounds with realistic, fractional alpha (notebook 01b).

Real mattes are not binary.  Where light passes partly through or partly around the
subject, alpha is fractional: the anti-aliased and motion-blurred rim of a solid object,
hair and fur strands thinner than a pixel, glass and veils, smoke.  Each *family* below
imitates one of these on purpose, and draws it with **coverage** (shapes rendered at 4x
and area-downsampled, strands drawn anti-aliased as premultiplied colour), never by
thresholding, so that the alpha values are the fraction of each pixel the subject covers:

=============  ==============================================================  ==============
family         what it imitates                                                  soft where
=============  ==============================================================  ==============
``solid``      opaque objects (blobs, stars, boxes), sometimes motion-blurred    rim / blur trail
``hair``       long hair (strands falling from a cap) or fur (short dense)      strands
``transparent`` glass objects and veils: alpha 0.2-0.7 with rims and highlights  whole body
``smoke``      smoke plumes and fog patches (fractal noise)                      everywhere
``portrait``   head and shoulders with hair and fly-aways ("night portrait")    hair
``product``    bottles, wine glasses, metal cans ("backlit product")            glass, rims
=============  ==============================================================  ==============

Colours and textures come from real photos (scikit-image's offline set, see
:mod:`lowlight.data.photos`) or from procedural fields.  Every generator takes a numpy
``Generator`` and is deterministic given it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import _draw as D
from .photos import TEXTURE_PHOTOS, load_photo

__all__ = ["FAMILIES", "Foreground", "make_foreground", "random_texture"]

FAMILIES = ("solid", "hair", "transparent", "smoke", "portrait", "product")

HAIR_COLOURS = np.array([
    (22, 17, 14), (45, 30, 20), (75, 50, 32), (115, 78, 48), (150, 70, 35),
    (195, 160, 105), (225, 200, 150), (165, 162, 158), (60, 55, 60),
], np.float64)
SKIN_TONES = np.array([
    (238, 200, 175), (224, 172, 140), (198, 140, 105), (160, 105, 75), (115, 75, 50), (80, 55, 40),
], np.float64)


@dataclass
class Foreground:
    """A foreground layer: colour ``fg`` (uint8 HxWx3), ``alpha`` (float32 HxW in [0, 1]),
    its ``family`` / ``style`` and plain-value ``info`` (texture source, ...)."""

    fg: np.ndarray
    alpha: np.ndarray
    family: str
    style: str
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- colour helpers
def random_texture(size: int, rng: np.random.Generator, photo_p: float = 0.55) -> tuple[np.ndarray, str]:
    """A colour/texture field for a foreground: a crop of a real photo (grey textures are
    tinted) with probability ``photo_p``, else two random colours mixed by fractal noise
    with a gradient.  Returns (uint8 HxWx3, source name).  Notebook 01b."""
    if rng.random() < photo_p:
        name = str(rng.choice(TEXTURE_PHOTOS))
        tex = D.photo_crop(load_photo(name), size, rng, scale=(0.2, 0.8)).astype(np.float32)
        if name in ("brick", "grass", "gravel"):
            tint = rng.uniform(0.35, 1.0, 3).astype(np.float32)
            tex = tex * tint / tint.max()
        return np.clip(tex, 0, 255).astype(np.uint8), name
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    n = D.fbm((size, size), rng, octaves=int(rng.integers(3, 6)))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    th = rng.uniform(0, 2 * math.pi)
    g = 0.5 + 0.5 * (np.cos(th) * (xx - 0.5) + np.sin(th) * (yy - 0.5))
    m = np.clip(0.6 * n + 0.4 * g, 0, 1)[..., None]
    tex = c1 * (1 - m) + c2 * m
    if rng.random() < 0.3:   # stripes / weave
        f = rng.uniform(4, 16)
        tex = tex * (0.85 + 0.15 * np.sin(2 * math.pi * f * (xx * np.cos(th) + yy * np.sin(th))))[..., None]
    return np.clip(tex, 0, 255).astype(np.uint8), "procedural"


def _finish(p, a, fill, family, style, info) -> Foreground:
    a = np.clip(a, 0.0, 1.0).astype(np.float32)
    return Foreground(D.unpremultiply(p, a, fill), a, family, style, info)


# --------------------------------------------------------------------------- families
def _solid(size: int, rng: np.random.Generator) -> Foreground:
    cx, cy = size * (0.5 + rng.uniform(-0.12, 0.12, 2))
    r = size * rng.uniform(0.22, 0.38)
    shape = str(rng.choice(["blob", "ellipse", "star", "box", "polygon"]))
    if shape == "blob":
        pts = D.blob_pts(cx, cy, r, rng, irregularity=rng.uniform(0.2, 0.6))
    elif shape == "ellipse":
        pts = D.ellipse_pts(cx, cy, r, r * rng.uniform(0.5, 1.0), rng.uniform(0, math.pi))
    elif shape == "star":
        pts = D.star_pts(cx, cy, r, rng)
    elif shape == "box":
        pts = D.rounded_rect_pts(cx, cy, 2 * r * rng.uniform(0.6, 1.0), 2 * r * rng.uniform(0.6, 1.0),
                                 r * rng.uniform(0.0, 0.3), rng.uniform(0, math.pi))
    else:
        k = int(rng.integers(3, 8))
        t = np.sort(rng.uniform(0, 2 * math.pi, k))
        rad = r * rng.uniform(0.6, 1.0, k)
        pts = np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1)
    a = D.coverage([pts], size)
    tex, src = random_texture(size, rng)
    fg = D.shade(tex, D.shading(size, rng))
    style = shape
    info = {"texture": src, "motion_px": 0.0}
    if rng.random() < 0.35:
        # a moving object: blur the premultiplied colour and alpha with the same kernel
        length = size * rng.uniform(0.03, 0.10)
        ker = D.motion_kernel(length, rng.uniform(0, math.pi))
        p, a0 = D.layer(fg, a)
        p = cv2.filter2D(p, -1, ker, borderType=cv2.BORDER_CONSTANT)
        a = cv2.filter2D(a0, -1, ker, borderType=cv2.BORDER_CONSTANT)
        style += "+motion"
        info["motion_px"] = round(float(length), 2)
        return _finish(p, a, fg, "solid", style, info)
    p, a = D.layer(fg, a)
    return _finish(p, a, fg, "solid", style, info)


def _hair_strands(size, rng, cap_mask, n, length, curl, gravity, colour, thin_p=0.8, ok=None,
                  inward=0.0, down=0.0):
    roots, ang = D.boundary_points(cap_mask, rng, n, ok)
    if len(roots) == 0:
        return [], np.zeros((0, 3)), np.zeros(0, int)
    if down:   # start direction between the outward normal and straight down
        ang = np.arctan2(np.sin(ang) + down, np.cos(ang))
    ang = ang + rng.normal(0, 0.35, len(ang))
    # start a little inside the cap so strands grow out of the mass
    roots = roots - inward * np.stack([np.cos(ang), np.sin(ang)], 1) * rng.uniform(0, 1, (len(ang), 1))
    lengths = length * rng.uniform(0.4, 1.0, len(ang))
    strands = D.make_strands(roots, ang, lengths, rng, segments=10, curl=curl, gravity=gravity)
    cols = D.jitter_colours(colour, len(strands), rng)
    hi = rng.random(len(strands)) < 0.12     # a few specular (lighter) strands
    cols[hi] = np.clip(cols[hi] * 1.6 + 30, 0, 255)
    th = np.where(rng.random(len(strands)) < thin_p, 1, 2)
    return strands, cols, th


def _hair(size: int, rng: np.random.Generator) -> Foreground:
    style = "fur" if rng.random() < 0.4 else "long"
    cx, cy = size * (0.5 + rng.uniform(-0.08, 0.08)), size * rng.uniform(0.35, 0.55)
    info: dict = {}
    if style == "fur":
        r = size * rng.uniform(0.2, 0.3)
        body = D.blob_pts(cx, cy, r, rng, irregularity=0.35)
        m = D.coverage([body], size)
        if rng.random() < 0.6:
            tex, src = random_texture(size, rng, photo_p=1.0)
        else:
            base = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
            tex, src = D.hair_field(size, base, rng), "procedural"
        info["texture"] = src
        n = int(size * rng.uniform(6, 10))
        roots, ang = D.boundary_points(m, rng, n)
        ang = ang + rng.normal(0, 0.5, len(ang))
        roots = roots - 0.03 * size * np.stack([np.cos(ang), np.sin(ang)], 1) * rng.random((len(ang), 1))
        ri = np.clip(np.round(roots).astype(int), 0, size - 1)
        cols = tex[ri[:, 1], ri[:, 0]].astype(np.float64) * rng.uniform(0.8, 1.2, (len(ang), 1))
        strands = D.make_strands(roots, ang, size * rng.uniform(0.02, 0.075, len(ang)), rng,
                                 segments=6, curl=0.15)
        th = np.where(rng.random(len(strands)) < 0.85, 1, 2)
        sp, sa = D.strand_layer(strands, np.clip(cols, 0, 255), th, size)
        bp, ba = D.layer(D.shade(tex, D.shading(size, rng, 0.25)), m)
        p, a = D.over(sp, sa, bp, ba)
        info["strands"] = len(strands)
        return _finish(p, a, tex, "hair", style, info)
    # long hair: a cap (the mass) and strands that leave it and fall
    base = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    rx, ry = size * rng.uniform(0.16, 0.24), size * rng.uniform(0.18, 0.26)
    cap = D.coverage([D.blob_pts(cx, cy, 1.0, rng, 0.15) * [rx, ry] + [cx * (1 - rx), cy * (1 - ry)]], size)
    tex = D.hair_field(size, base, rng)
    n = int(size * rng.uniform(3, 6))
    strands, cols, th = _hair_strands(size, rng, cap, n, size * rng.uniform(0.15, 0.4), 0.10,
                                      rng.uniform(0.3, 0.9), base, inward=0.08 * size)
    # fly-aways: sparse, long, very thin
    fa, fcols, fth = _hair_strands(size, rng, cap, int(rng.integers(8, 30)), size * 0.45, 0.18, 0.1, base)
    strands += fa
    cols = np.concatenate([cols, fcols])
    th = np.concatenate([th, np.ones(len(fa), int)])
    sp, sa = D.strand_layer(strands, cols, th, size)
    bp, ba = D.layer(tex, cap)
    p, a = D.over(sp, sa, bp, ba)
    info.update(texture="procedural", strands=len(strands))
    return _finish(p, a, tex, "hair", style, info)


def _glass_alpha(size, rng, m, a0, a_rim, highlights):
    """Alpha and highlight field of a glass-like body with coverage ``m``."""
    inside = (m > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    rim = np.exp(-dist / max(1.0, 0.03 * size))
    alpha = m * np.clip(a0 + a_rim * rim, 0, 0.95)
    ys, xs = np.nonzero(inside)
    hl = np.zeros((size, size), np.float32)
    if len(xs):
        x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        for _ in range(highlights):
            hx = rng.uniform(x0 + 0.1 * (x1 - x0), x1 - 0.1 * (x1 - x0) + 1)
            sig = size * rng.uniform(0.008, 0.025)
            ylo, yhi = rng.uniform(y0, (y0 + y1) / 2), rng.uniform((y0 + y1) / 2, y1 + 1)
            vert = np.clip(np.minimum(yy - ylo, yhi - yy) / (0.1 * size), 0, 1)
            hl = np.maximum(hl, rng.uniform(0.6, 1.0) * np.exp(-0.5 * ((xx - hx) / sig) ** 2) * vert)
        hl *= m
    alpha = np.maximum(alpha, 0.95 * hl * m)
    return alpha.astype(np.float32), hl


def _transparent(size: int, rng: np.random.Generator) -> Foreground:
    style = "veil" if rng.random() < 0.4 else "glass"
    if style == "glass":
        cx, cy = size * (0.5 + rng.uniform(-0.1, 0.1, 2))
        r = size * rng.uniform(0.22, 0.36)
        shape = rng.integers(3)
        if shape == 0:
            pts = D.ellipse_pts(cx, cy, r * rng.uniform(0.6, 1.0), r, rng.uniform(-0.4, 0.4))
        elif shape == 1:
            pts = D.rounded_rect_pts(cx, cy, r * rng.uniform(0.9, 1.5), 2 * r, r * 0.3, rng.uniform(-0.3, 0.3))
        else:
            pts = D.blob_pts(cx, cy, r, rng, 0.2)
        m = D.coverage([pts], size)
        a0, a_rim = rng.uniform(0.2, 0.45), rng.uniform(0.2, 0.4)
        alpha, hl = _glass_alpha(size, rng, m, a0, a_rim, int(rng.integers(1, 4)))
        tint = rng.uniform(90, 255, 3)
        tint = 0.5 * tint + 0.5 * tint.mean()      # mostly desaturated tints
        shade = D.shading(size, rng, 0.3)
        fg = tint[None, None, :] * shade[..., None]
        fg = fg * (1 - hl[..., None]) + 255.0 * hl[..., None]
        fg = np.clip(fg, 0, 255).astype(np.uint8)
        info = {"texture": "procedural", "base_alpha": round(float(a0), 3)}
        p, a = D.layer(fg, alpha)
        return _finish(p, a, fg, "transparent", "glass", info)
    # veil: a draped sheet with folds and a weave
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    top = rng.uniform(-0.1, 0.2)
    left, right = rng.uniform(0.05, 0.3), rng.uniform(0.7, 0.95)
    bottom = rng.uniform(0.7, 1.1)
    wav = 0.03 * np.sin(2 * math.pi * rng.uniform(1, 3) * np.linspace(0, 1, 24) + rng.uniform(0, 6))
    ys = np.linspace(top, bottom, 24)
    poly = np.concatenate([
        np.stack([left + wav * 2 - 0.08 * (ys - top), ys], 1),
        np.stack([right + wav[::-1] * 2 + 0.08 * (ys[::-1] - top), ys[::-1]], 1),
    ]) * size
    m = D.coverage([poly], size)
    th = rng.uniform(-0.3, 0.3)
    folds = np.sin(2 * math.pi * rng.uniform(3, 8) * (xx * np.cos(th) + yy * np.sin(th))
                   + 3 * D.fbm((size, size), rng, octaves=3))
    weave = np.sin(2 * math.pi * size / rng.uniform(2.5, 4.0) * xx) * np.sin(2 * math.pi * size / 3.1 * yy)
    a0 = rng.uniform(0.25, 0.55)
    alpha = m * np.clip(a0 * (1 + 0.35 * folds + 0.08 * weave), 0.12, 0.8)
    colour = rng.uniform(0, 255, 3) if rng.random() < 0.5 else np.full(3, rng.uniform(20, 250))
    fg = colour[None, None, :] * (0.85 + 0.25 * folds[..., None])
    sheen = np.clip(folds, 0, 1) ** 8
    fg = fg * (1 - 0.5 * sheen[..., None]) + 255 * 0.5 * sheen[..., None]
    fg = np.clip(fg, 0, 255).astype(np.uint8)
    p, a = D.layer(fg, alpha.astype(np.float32))
    return _finish(p, a, fg, "transparent", "veil", {"texture": "procedural", "base_alpha": round(float(a0), 3)})


def _smoke(size: int, rng: np.random.Generator) -> Foreground:
    style = "fog" if rng.random() < 0.35 else "plume"
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    # domain-warped fractal noise looks like turbulent smoke
    n1 = D.fbm((size, size), rng, octaves=6, base=3)
    n2 = D.fbm((size, size), rng, octaves=4, base=2)
    shift = (n2 - 0.5) * 0.25 * size
    mapx = (np.arange(size, dtype=np.float32)[None, :] + shift).astype(np.float32)
    mapy = (np.arange(size, dtype=np.float32)[:, None] + np.roll(shift, size // 3, 0)).astype(np.float32)
    n = cv2.remap(n1, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if style == "plume":
        x0 = rng.uniform(0.3, 0.7)
        t = np.clip((1.05 - yy) / rng.uniform(0.7, 1.0), 0, 1)          # 0 at the source, 1 at the top
        cxp = x0 + rng.uniform(-0.25, 0.25) * t + 0.05 * np.sin(6 * t + rng.uniform(0, 6))
        w = 0.04 + rng.uniform(0.15, 0.3) * t
        env = np.exp(-0.5 * ((xx - cxp) / w) ** 2) * np.clip(t * 8, 0, 1) * np.clip((1 - t) * 5, 0, 1)
        amax = rng.uniform(0.6, 0.9)
        alpha = np.clip((n * 1.4 - 0.25) * env * 1.6, 0, amax)
    else:
        cy = rng.uniform(0.4, 0.8)
        env = np.exp(-0.5 * ((yy - cy) / rng.uniform(0.15, 0.3)) ** 2)
        amax = rng.uniform(0.35, 0.6)
        alpha = np.clip((0.2 + 0.8 * n) * env * amax * 1.4, 0, amax)
    alpha = alpha.astype(np.float32)
    if rng.random() < 0.75:
        base = np.full(3, rng.uniform(150, 240)) + rng.uniform(-15, 15, 3)
    else:
        base = np.full(3, rng.uniform(40, 110)) + rng.uniform(-10, 10, 3)
    fg = base[None, None, :] * (0.75 + 0.45 * n2[..., None])
    fg = np.clip(fg, 0, 255).astype(np.uint8)
    p, a = D.layer(fg, alpha)
    return _finish(p, a, fg, "smoke", style, {"texture": "procedural", "max_alpha": round(float(amax), 3)})


def _portrait(size: int, rng: np.random.Generator) -> Foreground:
    cx = size * (0.5 + rng.uniform(-0.1, 0.1))
    hr = size * rng.uniform(0.11, 0.15)                 # head half-width
    hy = size * rng.uniform(0.33, 0.42)                 # head centre
    tilt = rng.uniform(-0.15, 0.15)
    head = D.ellipse_pts(cx, hy, hr, hr * 1.28, tilt)
    neck_w = hr * rng.uniform(0.8, 1.0)
    neck = np.array([[cx - neck_w / 2, hy + hr * 0.8], [cx + neck_w / 2, hy + hr * 0.8],
                     [cx + neck_w / 2 * 1.1, hy + hr * 2.1], [cx - neck_w / 2 * 1.1, hy + hr * 2.1]])
    sh_y = hy + hr * rng.uniform(1.9, 2.2)
    sh_w = size * rng.uniform(0.33, 0.46)
    shoulders = np.concatenate([
        D.ellipse_pts(cx, sh_y + hr * 0.9, sh_w, hr * 1.2, 0.0, 48, math.pi, 2 * math.pi),
        np.array([[cx + sh_w * 1.05, size * 1.2], [cx - sh_w * 1.05, size * 1.2]]),
    ])
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.1, 3)
    light = D.shading(size, rng, 0.45)                   # a side light (street lamp, shop window)
    skin_img = np.clip(skin[None, None, :] * (0.85 + 0.2 * D.fbm((size, size), rng, 3)[..., None]), 0, 255)
    skin_img = D.shade(skin_img.astype(np.uint8), light)
    if rng.random() < 0.5:
        cloth, src = random_texture(size, rng, photo_p=1.0)
    else:
        cloth, src = random_texture(size, rng, photo_p=0.0)
        cloth = (cloth.astype(np.float32) * rng.uniform(0.3, 0.8)).astype(np.uint8)
    cloth = D.shade(cloth, light)
    m_sh = D.coverage([shoulders], size)
    m_skin = D.coverage([head, neck], size)
    p, a = D.layer(cloth, m_sh)
    p, a = D.over(*D.layer(skin_img, m_skin), p, a)
    # hair: a cap over the top of the head, strands falling to the shoulders, fly-aways
    hair_c = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    long_p = rng.random()
    cap_pts = D.ellipse_pts(cx, hy - hr * 0.3, hr * 1.1, hr * 1.12, tilt, 96, math.pi * 0.95, math.pi * 2.05)
    cap = D.coverage([cap_pts], size)
    hair_tex = D.shade(D.hair_field(size, hair_c, rng), light)
    long_hair = long_p < 0.6
    # side strands hang down past the ears (long hair) or stay short
    side_len = size * (rng.uniform(0.2, 0.4) if long_hair else rng.uniform(0.04, 0.1))
    strands, cols, th = _hair_strands(size, rng, cap, int(size * rng.uniform(1.5, 3.0)), side_len, 0.06,
                                      rng.uniform(0.8, 1.2) if long_hair else 0.3, hair_c,
                                      ok=lambda x, y, nx, ny: np.abs(nx) > 0.55, inward=0.1 * hr,
                                      down=1.5 if long_hair else 0.3)
    # the crown: short, curly strands standing out of the cap
    ts, tcols, tth = _hair_strands(size, rng, cap, int(size * rng.uniform(1.5, 3.0)),
                                   size * rng.uniform(0.03, 0.08), 0.2, 0.1, hair_c,
                                   ok=lambda x, y, nx, ny: ny < -0.3, inward=0.05 * hr)
    # fly-aways: sparse, long, very thin
    fa, fcols, _ = _hair_strands(size, rng, cap, int(rng.integers(10, 40)), size * 0.3, 0.2, 0.05, hair_c,
                                 ok=lambda x, y, nx, ny: ny < 0.0)
    strands = strands + ts
    cols = np.concatenate([cols, tcols])
    th = np.concatenate([th, tth])
    sp, sa = D.strand_layer(strands + fa, np.concatenate([cols, fcols]),
                            np.concatenate([th, np.ones(len(fa), int)]), size)
    p, a = D.over(*D.layer(hair_tex, cap), p, a)
    p, a = D.over(sp, sa, p, a)
    fill = np.where(m_sh[..., None] > 0.5, cloth, skin_img)
    info = {"texture": src, "strands": len(strands) + len(fa), "hair": "long" if long_hair else "short"}
    return _finish(p, a, fill, "portrait", "head+shoulders", info)


def _product(size: int, rng: np.random.Generator) -> Foreground:
    style = str(rng.choice(["bottle", "wineglass", "can"]))
    cx = size * (0.5 + rng.uniform(-0.1, 0.1))
    h = size * rng.uniform(0.6, 0.85)
    top = size * 0.5 - h / 2 + rng.uniform(-0.05, 0.05) * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    info: dict = {"texture": "procedural"}
    if style == "can":
        w = h * rng.uniform(0.35, 0.5)
        body = D.rounded_rect_pts(cx, top + h / 2, w, h, w * 0.12)
        m = D.coverage([body], size)
        # metallic: a few sharp specular bands across the cylinder, dark edges
        u = np.clip((xx - (cx - w / 2)) / w, 0, 1)
        prof = 0.35 + 0.25 * np.sin(math.pi * u)
        for _ in range(int(rng.integers(2, 4))):
            prof = prof + rng.uniform(0.3, 0.7) * np.exp(-0.5 * ((u - rng.uniform(0.1, 0.9)) / rng.uniform(0.01, 0.05)) ** 2)
        tint = rng.uniform(120, 255, 3) if rng.random() < 0.6 else np.full(3, 220.0)
        fg = np.clip(tint[None, None, :] * prof[..., None], 0, 255).astype(np.uint8)
        if rng.random() < 0.6:                      # a printed label band
            lab, src = random_texture(size, rng, photo_p=0.7)
            band = (np.abs(yy - (top + h * rng.uniform(0.4, 0.6))) < h * rng.uniform(0.12, 0.25))
            fg = np.where(band[..., None], D.shade(lab, prof.clip(0.5, 1.3)), fg)
            info["texture"] = src
        p, a = D.layer(fg, m)
        return _finish(p, a, fg, "product", "can", info)
    if style == "bottle":
        w = h * rng.uniform(0.3, 0.42)
        neck_w = w * rng.uniform(0.3, 0.4)
        body_top = top + h * rng.uniform(0.3, 0.45)
        sh = np.array([[cx - w / 2, body_top], [cx - neck_w / 2, top + h * 0.12],
                       [cx + neck_w / 2, top + h * 0.12], [cx + w / 2, body_top]])
        body = D.rounded_rect_pts(cx, (body_top + top + h) / 2, w, top + h - body_top, w * 0.15)
        capm = D.coverage([D.rounded_rect_pts(cx, top + h * 0.07, neck_w * 1.1, h * 0.14, 1.0)], size)
        m = D.coverage([body, sh], size)
        a0 = rng.uniform(0.25, 0.55)
        alpha, hl = _glass_alpha(size, rng, m, a0, rng.uniform(0.2, 0.35), int(rng.integers(1, 3)))
        tint = np.array(rng.choice([(60, 140, 70), (150, 95, 40), (200, 215, 220), (40, 70, 150)]), np.float64)
        fg = tint[None, None, :] * D.shading(size, rng, 0.3)[..., None]
        fg = fg * (1 - hl[..., None]) + 255 * hl[..., None]
        fg = np.clip(fg, 0, 255).astype(np.uint8)
        p, a = D.layer(fg, alpha)
        capc = np.clip(np.full(3, rng.uniform(120, 230)) * (0.6 + 0.6 * np.sin(math.pi * np.clip(
            (xx - cx + neck_w) / (2 * neck_w), 0, 1)))[..., None], 0, 255).astype(np.uint8)
        p, a = D.over(*D.layer(capc, capm), p, a)
        fill = fg
        if rng.random() < 0.7:                      # an opaque paper label
            lab, src = random_texture(size, rng, photo_p=0.7)
            ly = body_top + (top + h - body_top) * rng.uniform(0.25, 0.45)
            lh = (top + h - body_top) * rng.uniform(0.25, 0.4)
            labm = D.coverage([D.rounded_rect_pts(cx, ly + lh / 2, w * 0.98, lh, 0.5)], size)
            p, a = D.over(*D.layer(lab, labm), p, a)
            fill = np.where(labm[..., None] > 0.5, lab, fg)
            info["texture"] = src
        info["base_alpha"] = round(float(a0), 3)
        return _finish(p, a, fill, "product", "bottle", info)
    # wine glass: thin high-alpha rims, nearly clear bowl, stem and foot, maybe wine
    bw = h * rng.uniform(0.28, 0.38)
    bowl_h = h * rng.uniform(0.4, 0.5)
    bowl = D.ellipse_pts(cx, top, bw / 2, bowl_h, 0.0, 64, 0.0, math.pi)
    bowl = np.concatenate([np.array([[cx - bw / 2, top]]), bowl[::-1], np.array([[cx + bw / 2, top]])])
    stem_w = max(1.0, h * 0.025)
    stem = np.array([[cx - stem_w / 2, top + bowl_h * 0.95], [cx + stem_w / 2, top + bowl_h * 0.95],
                     [cx + stem_w / 2, top + h * 0.97], [cx - stem_w / 2, top + h * 0.97]])
    foot = D.ellipse_pts(cx, top + h * 0.97, bw * 0.4, h * 0.025)
    m = D.coverage([bowl, stem, foot], size)
    alpha, hl = _glass_alpha(size, rng, m, rng.uniform(0.08, 0.2), rng.uniform(0.5, 0.8), 2)
    fg = np.full((size, size, 3), rng.uniform(200, 245), np.float32) * D.shading(size, rng, 0.2)[..., None]
    fg = np.clip(fg * (1 - hl[..., None]) + 255 * hl[..., None], 0, 255).astype(np.uint8)
    p, a = D.layer(fg, alpha)
    if rng.random() < 0.5:
        level = top + bowl_h * rng.uniform(0.3, 0.6)
        wine_m = m * (yy > level) * (yy < top + bowl_h * 0.95)
        wine = np.array(rng.choice([(110, 10, 30), (220, 190, 90), (150, 30, 40)]), np.float64)
        wfg = np.clip(wine[None, None, :] * (0.8 + 0.3 * D.shading(size, rng, 0.3)[..., None]), 0, 255).astype(np.uint8)
        p, a = D.over(*D.layer(wfg, (0.8 * wine_m).astype(np.float32)), p, a)
        fg = np.where(wine_m[..., None] > 0.5, wfg, fg)
        info["wine"] = 1
    return _finish(p, a, fg, "product", "wineglass", info)


_GENERATORS = {
    "solid": _solid, "hair": _hair, "transparent": _transparent,
    "smoke": _smoke, "portrait": _portrait, "product": _product,
}


def make_foreground(family: str, size: int, rng: np.random.Generator) -> Foreground:
    """One procedural foreground of ``family`` (see :data:`FAMILIES`) at ``size`` x ``size``.

    Deterministic given ``rng``.  Notebook 01b.
    """
    if family not in _GENERATORS:
        raise ValueError(f"make_foreground: unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"make_foreground: size must be an int >= 16, got {size!r}")
    return _GENERATORS[family](int(size), rng)
