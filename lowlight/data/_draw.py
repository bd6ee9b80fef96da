"""Small drawing primitives shared by the foreground and background generators
(supersampled coverage, fractal noise, premultiplied layers, shading and colour jitter, points on
a mask's contour).  Internal."""
from __future__ import annotations

import math

import cv2
import numpy as np

SS = 4          # supersampling factor for anti-aliased coverage
_SHIFT = 4      # fixed-point bits for cv2 drawing (1/16 pixel)


def fbm(shape: tuple[int, int], rng: np.random.Generator, octaves: int = 5, base: int = 3,
        persistence: float = 0.55) -> np.ndarray:
    """Fractal (value) noise in [0, 1], float32 HxW: a sum of bicubically upsampled
    random grids whose frequency doubles and amplitude shrinks per octave."""
    h, w = shape
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = base * 2 ** o
        if n > max(h, w):
            break
        grid = rng.random((n + 1, n + 1), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / (hi - lo + 1e-6)


def _fixed(pts: np.ndarray, ss: int) -> np.ndarray:
    return np.round(np.asarray(pts, np.float64) * ss * (1 << _SHIFT)).astype(np.int32)


def coverage(polys, size: int, ss: int = SS) -> np.ndarray:
    """Anti-aliased coverage (float32 HxW in [0, 1]) of filled polygons given in pixel
    coordinates: drawn at ``ss``x resolution and area-downsampled, so every edge pixel
    holds the fraction of it the shape covers."""
    canvas = np.zeros((size * ss, size * ss), np.uint8)
    for p in polys:   # one call per polygon: a single call would XOR overlapping polygons
        cv2.fillPoly(canvas, [_fixed(p, ss)], 255, cv2.LINE_AA, _SHIFT)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def ellipse_pts(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0,
                n: int = 96, t0: float = 0.0, t1: float = 2 * math.pi) -> np.ndarray:
    t = np.linspace(t0, t1, n, endpoint=False if t1 - t0 >= 2 * math.pi - 1e-9 else True)
    x, y = rx * np.cos(t), ry * np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    return np.stack([cx + ca * x - sa * y, cy + sa * x + ca * y], 1)


def blob_pts(cx: float, cy: float, r: float, rng: np.random.Generator, irregularity: float = 0.25,
             n: int = 128, harmonics: int = 5) -> np.ndarray:
    """A random smooth closed shape: radius ``r*(1 + sum a_k cos(k t + phi_k))``."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    rad = np.ones(n)
    for k in range(2, 2 + harmonics):
        rad += irregularity / k * rng.uniform(-1, 1) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
    rad = np.clip(rad, 0.35, None) * r
    return np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1)


def star_pts(cx, cy, r, rng, points=None):
    k = int(points or rng.integers(4, 9))
    inner = rng.uniform(0.4, 0.7)
    t = np.linspace(0, 2 * math.pi, 2 * k, endpoint=False) + rng.uniform(0, math.pi)
    rad = np.where(np.arange(2 * k) % 2 == 0, r, r * inner)
    return np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1)


def rounded_rect_pts(cx, cy, w, h, radius, angle=0.0, n_corner=12):
    radius = min(radius, w / 2, h / 2)
    pts = []
    for (sx, sy, a0) in ((1, 1, 0), (-1, 1, 0.5), (-1, -1, 1.0), (1, -1, 1.5)):
        ccx, ccy = sx * (w / 2 - radius), sy * (h / 2 - radius)
        t = np.linspace(a0 * math.pi, (a0 + 0.5) * math.pi, n_corner)
        pts.append(np.stack([ccx + radius * np.cos(t), ccy + radius * np.sin(t)], 1))
    p = np.concatenate(pts)
    ca, sa = math.cos(angle), math.sin(angle)
    return np.stack([cx + ca * p[:, 0] - sa * p[:, 1], cy + sa * p[:, 0] + ca * p[:, 1]], 1)


def strand_layer(strands: list[np.ndarray], colours: np.ndarray, thickness: np.ndarray,
                 size: int, ss: int = SS, groups: int = 8):
    """Draw open polylines (hair strands) with coverage, not thresholds.

    Strands are drawn anti-aliased on an ``ss``x canvas holding premultiplied
    (alpha, R, G, B); overlapping strands combine like the *over* operator.  A 1-px line at
    4x is a quarter-pixel strand after area downsampling, so thin hair gets alpha well
    below 1, as in real mattes.  Returns (premultiplied RGB float32 HxWx3, alpha HxW).
    """
    canvas = np.zeros((size * ss, size * ss, 4), np.uint8)
    if len(strands):
        colours = np.asarray(colours, np.float64)
        lum = colours @ np.array([0.3, 0.6, 0.1])
        order = np.argsort(lum, kind="stable")
        chunks = np.array_split(order, min(groups, len(order)))
        for chunk in chunks:
            if len(chunk) == 0:
                continue
            col = colours[chunk].mean(0)
            for th in np.unique(thickness[chunk]):
                sel = [strands[i] for i in chunk if thickness[i] == th]
                cv2.polylines(canvas, [_fixed(s, ss) for s in sel], False,
                              (255, float(col[0]), float(col[1]), float(col[2])), int(th),
                              cv2.LINE_AA, _SHIFT)
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return small[..., 1:4], small[..., 0]


def make_strands(roots: np.ndarray, angles: np.ndarray, lengths: np.ndarray,
                 rng: np.random.Generator, segments: int = 10, curl: float = 0.12,
                 gravity: float = 0.0) -> list[np.ndarray]:
    """Curved strands: from each root, ``segments`` steps whose direction performs a
    random walk (``curl`` rad per step) and bends down by ``gravity`` (rad per step,
    towards +y)."""
    n = len(roots)
    if n == 0:
        return []
    turn = rng.normal(0.0, curl, (n, segments)) + rng.normal(0.0, curl / 2, (n, 1))
    ang = angles[:, None] + np.cumsum(turn, axis=1)
    if gravity:
        # pull the direction towards straight down (pi/2) a little each step
        for j in range(segments):
            diff = (math.pi / 2 - ang[:, j] + math.pi) % (2 * math.pi) - math.pi
            ang[:, j:] += gravity * diff[:, None] / segments * (j + 1) / segments * 2
    step = (lengths / segments)[:, None]
    dx = np.cumsum(step * np.cos(ang), axis=1)
    dy = np.cumsum(step * np.sin(ang), axis=1)
    pts = np.concatenate([np.zeros((n, 1, 2)), np.stack([dx, dy], 2)], 1) + roots[:, None, :]
    return list(pts)


def over(top_p, top_a, bot_p, bot_a):
    """Premultiplied *over*: ``top`` in front of ``bot``."""
    k = (1.0 - top_a)
    return top_p + bot_p * k[..., None], top_a + bot_a * k


def unpremultiply(p: np.ndarray, a: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Foreground colour ``P/alpha`` where alpha > 0, ``fill`` elsewhere; uint8."""
    safe = np.maximum(a, 1e-6)[..., None]
    f = np.where(a[..., None] > 1.0 / 1024, p / safe, fill.astype(np.float32) / 255.0)
    return np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line kernel (linear motion blur) of ``length`` pixels at ``angle`` rad."""
    k = int(math.ceil(length)) | 1
    k = max(k, 3)
    canvas = np.zeros((k * SS, k * SS), np.float32)
    c = (k * SS - 1) / 2
    dx, dy = math.cos(angle) * length * SS / 2, math.sin(angle) * length * SS / 2
    cv2.line(canvas, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))),
             1.0, max(1, SS // 2), cv2.LINE_AA)
    ker = cv2.resize(canvas, (k, k), interpolation=cv2.INTER_AREA)
    return ker / ker.sum()


def resize_to(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (w, h) with area averaging when shrinking and bilinear when enlarging."""
    w, h = size
    interp = cv2.INTER_AREA if (w < img.shape[1] and h < img.shape[0]) else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def photo_crop(photo: np.ndarray, size: int, rng: np.random.Generator,
               scale: tuple[float, float] = (0.35, 1.0), flip: bool = True) -> np.ndarray:
    """A random square crop of ``photo`` whose side is ``scale`` x the short side (scale
    jitter), optionally mirrored, resized to ``size``."""
    h, w = photo.shape[:2]
    side = int(round(min(h, w) * rng.uniform(*scale)))
    side = max(8, min(side, h, w))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = photo[y:y + side, x:x + side]
    if flip and rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(resize_to(np.ascontiguousarray(crop), (size, size)))


def shading(size: int, rng: np.random.Generator, strength: float = 0.35) -> np.ndarray:
    """A smooth directional lighting field around 1 (float32 HxW)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    th = rng.uniform(0, 2 * math.pi)
    return (1.0 + strength * 2 * (np.cos(th) * xx + np.sin(th) * yy)).astype(np.float32)


def shade(img: np.ndarray, field_: np.ndarray) -> np.ndarray:
    """``img`` (uint8) multiplied by a lighting field (:func:`shading`), clipped to uint8."""
    return np.clip(img.astype(np.float32) * field_[..., None], 0, 255).astype(np.uint8)


def jitter_colours(base: np.ndarray, n: int, rng: np.random.Generator, spread: float = 0.25) -> np.ndarray:
    """``n`` variations of an RGB colour: brightness within ``1 +- spread``, each channel +-10 %."""
    k = rng.uniform(1 - spread, 1 + spread, (n, 1)) * rng.uniform(0.9, 1.1, (n, 3))
    return np.clip(base[None, :] * k, 0, 255)


def hair_field(size: int, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Streaky hair-coloured texture (uint8) for hair caps."""
    n = fbm((size, size), rng, octaves=4)
    streak = cv2.resize(rng.random((4, size), dtype=np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    m = (0.7 + 0.35 * n + 0.25 * (streak - 0.5))[..., None]
    return np.clip(base[None, None, :] * m, 0, 255).astype(np.uint8)


def boundary_points(mask: np.ndarray, rng: np.random.Generator, n: int, ok=None):
    """``n`` random points on the 0.5-contour of a coverage mask and their outward normals.
    ``ok(x, y, nx, ny) -> bool array`` filters candidates."""
    m8 = (mask > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(m8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2)), np.zeros(0)
    c = max(contours, key=len)[:, 0, :].astype(np.float64)
    if len(c) < 8:
        return np.zeros((0, 2)), np.zeros(0)
    # tangent from neighbours, outward normal from the centroid side
    k = max(2, len(c) // 64)
    t = np.roll(c, -k, 0) - np.roll(c, k, 0)
    nrm = np.stack([t[:, 1], -t[:, 0]], 1)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-9
    cen = c.mean(0)
    flip = ((c - cen) * nrm).sum(1) < 0
    nrm[flip] *= -1
    if ok is not None:
        keep = ok(c[:, 0], c[:, 1], nrm[:, 0], nrm[:, 1])
        if keep.any():
            c, nrm = c[keep], nrm[keep]
    idx = rng.integers(0, len(c), n)
    pts = c[idx] + rng.uniform(-0.5, 0.5, (n, 2))
    ang = np.arctan2(nrm[idx, 1], nrm[idx, 0])
    return pts, ang


def layer(fg: np.ndarray, a: np.ndarray):
    """A uint8 colour and its coverage as a premultiplied float layer ``(colour x alpha, alpha)``."""
    return fg.astype(np.float32) / 255.0 * a[..., None], a.astype(np.float32)
