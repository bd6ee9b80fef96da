"""Matting under controlled exposure: every test image rendered at fixed EVs, every model scored on
the same renders, and bootstrap intervals for the change between two models that resample the test
images, each with all its exposures, and the training seeds (notebook 07).

Two kinds of test items:

* **with a true matte** -- the LL-Matte portrait test split: the DIM metrics in the trimap's
  unknown band *and* whole-image SAD/MSE (``sad_image``, ``mse_image``; a trimap-free model can
  fail far from the subject, where the unknown band never looks);
* **real photographs of people** without a matte -- the reference is the original model's matte of
  the clean photo, the trimap is derived from it: "does the model see the same person at night as
  in daylight?" (its own normal-light behaviour is the target, not the truth).

Conditions: ``"clean"`` (the image as it is) and each EV of :data:`EVS` through the physical
simulator (its noise and colour cast even at EV 0). Noise draws are keyed by (item, EV, seed), so
every model sees exactly the same inputs.
"""
from __future__ import annotations

import zlib
from typing import Callable, Mapping, Sequence

import numpy as np

from ..color import luminance
from ..metrics import all_metrics, connectivity_error
from .protocol import METRICS, quantize_alpha
from .stats import CLEAN, clustered_bootstrap

__all__ = ["EVS", "CLEAN", "darken", "phone", "whole_image_errors", "score_grid", "grid_means", "paired_bootstrap",
           "grid_change", "ALL_METRICS"]

#: the exposures of the grid (EV 0: the simulator's noise and cast at full exposure)
EVS = (0.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0)
#: the DIM metrics in the unknown band, Connectivity under the definition's rule for empty levels
#: (``conn_disconnect``: an all-zero matte is a full miss, not a perfect score; see
#: :func:`lowlight.metrics.connectivity_error`), then the whole-image ones
ALL_METRICS = METRICS + ("conn_disconnect", "sad_image", "mse_image")


def _render_rng(ev: float, seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed), zlib.crc32(key.encode()), int(round(float(ev) * 1000)) % (2**31)]))


def darken(img: np.ndarray, ev: float, seed: int, key: str) -> np.ndarray:
    """``img`` at exposure ``ev`` through :func:`lowlight.simulate.simulate` with the default sensor
    (the raw, dark frame); the noise stream is keyed by ``(seed, key, ev)``, independent of
    evaluation order."""
    from ..simulate import SimParams, simulate

    return simulate(img, SimParams.from_ev(float(ev)), _render_rng(ev, seed, key))


def phone(img: np.ndarray, ev: float, seed: int, key: str) -> np.ndarray:
    """``img`` at exposure ``ev`` as a phone delivers it: :func:`lowlight.simulate.camera_pipeline`
    with ``CameraParams.from_ev(ev)`` (auto-exposure gain, denoising, sharpening, JPEG), keyed like
    :func:`darken` so the sensor noise is the same draw."""
    from ..simulate import CameraParams, camera_pipeline

    return camera_pipeline(img, CameraParams.from_ev(float(ev)), _render_rng(ev, seed, key))


def whole_image_errors(pred: np.ndarray, gt: np.ndarray) -> dict:
    """SAD (/1000) and MSE over *all* pixels of two 8-bit mattes (the trimap-free convention)."""
    e = (pred.astype(np.float64) - gt.astype(np.float64)) / 255.0
    return {"sad_image": float(np.abs(e).sum() / 1000.0), "mse_image": float((e * e).mean())}


def score_grid(matters: Mapping[str, Callable[[np.ndarray], np.ndarray]], items: Sequence[dict],
               evs: Sequence[float] = EVS, seeds: Sequence[int] = (0,), clean: bool = True,
               reference: str = "original", render: Callable = darken) -> list[dict]:
    """Score every matter on every item under every condition.

    ``matters``: ``{row: f(uint8 RGB) -> float alpha in [0, 1]}`` (e.g.
    :class:`lowlight.inference.ImageMatter`). ``items``: dicts with ``name``, ``image`` (uint8 RGB)
    and optionally ``alpha`` and ``trimap`` (uint8); an item without ``alpha`` is scored against
    ``matters[reference]``'s matte of its clean image (and a trimap from it). Returns one record
    per (row, item, condition, seed) with :data:`ALL_METRICS` (``conn_disconnect``: Connectivity
    with ``empty="disconnect"``), ``luma`` of the input and
    ``mad`` = mean |prediction - target| (in [0, 1]). ``render(image, ev, seed, name)`` makes the
    low-light input (:func:`darken`, the raw frame; :func:`phone`, the processed photo).
    """
    from ..data import trimap_from_alpha

    conds = ([(CLEAN, 0)] if clean else []) + [(float(ev), int(s)) for ev in evs for s in seeds]
    records = []
    for item in items:
        img = item["image"]
        if item.get("alpha") is not None:
            gt, kind = np.asarray(item["alpha"], np.uint8), "true"
        else:
            if reference not in matters:
                raise ValueError(f"item {item['name']!r} has no alpha and matters has no {reference!r} row")
            gt, kind = quantize_alpha(matters[reference](img)), "reference"
        tri = item.get("trimap")
        tri = np.asarray(tri, np.uint8) if tri is not None else trimap_from_alpha(gt)
        for ev, seed in conds:
            x = img if ev == CLEAN else render(img, ev, seed, item["name"])
            luma = float(luminance(x).mean())
            for row, matter in matters.items():
                pred = quantize_alpha(matter(x))
                m = all_metrics(pred, gt, tri)
                rec = {"model": row, "item": item["name"], "target": kind, "ev": ev, "seed": seed, "luma": luma,
                       **{k: float(m[k]) for k in METRICS},
                       "conn_disconnect": connectivity_error(pred, gt, tri, empty="disconnect"),
                       **whole_image_errors(pred, gt)}
                rec["mad"] = float(np.abs(pred.astype(np.int16) - gt).mean() / 255.0)
                records.append(rec)
    return records


def _per_item(records, model, ev, metric) -> dict:
    """``{item: mean metric over noise seeds}`` of one row at one condition."""
    acc: dict[str, list] = {}
    for r in records:
        if r["model"] == model and r["ev"] == ev:
            acc.setdefault(r["item"], []).append(r[metric])
    return {k: float(np.mean(v)) for k, v in acc.items()}


def grid_means(records: Sequence[dict], metric: str = "sad_image") -> dict:
    """``{row: {condition: mean metric}}`` (over items and noise seeds), conditions in grid order."""
    out: dict[str, dict] = {}
    for r in records:
        out.setdefault(r["model"], {}).setdefault(r["ev"], []).append(r[metric])
    order = lambda c: (-1e9 if c == CLEAN else -c)  # noqa: E731 - clean first, then bright to dark
    return {m: {c: float(np.mean(v[c])) for c in sorted(v, key=order)} for m, v in out.items()}


def paired_bootstrap(base: Sequence[float], new: Sequence[float], n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Relative change of the mean, ``100 (mean(new) - mean(base)) / mean(base)``, with a paired
    percentile bootstrap interval: the same items are resampled for both (the pairing is what
    makes a few dozen images enough). Returns ``{"change_pct", "lo", "hi", "n", "base", "new"}``."""
    b, n = np.asarray(base, np.float64), np.asarray(new, np.float64)
    if b.shape != n.shape or b.ndim != 1 or b.size == 0:
        raise ValueError(f"paired_bootstrap: expected two equal-length non-empty lists, got {b.shape} and {n.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, b.size, size=(int(n_boot), b.size))
    mb, mn = b[idx].mean(1), n[idx].mean(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = 100.0 * (mn - mb) / mb
    ratios = ratios[np.isfinite(ratios)]
    a = (1.0 - level) / 2.0
    lo, hi = (np.quantile(ratios, [a, 1.0 - a]) if ratios.size else (float("nan"), float("nan")))
    base_mean = float(b.mean())
    return {"change_pct": 100.0 * (float(n.mean()) - base_mean) / base_mean if base_mean else float("nan"),
            "lo": float(lo), "hi": float(hi), "n": int(b.size), "base": base_mean, "new": float(n.mean())}


def grid_change(records: Sequence[dict], base: str | Sequence[str], new: str | Sequence[str], metric: str = "sad_image",
                conditions: Sequence | None = None, pooled: Sequence | None = None, n_boot: int = 2000) -> dict:
    """Relative change of the mean error from row ``base`` to row(s) ``new``, per condition and, with
    ``pooled``, over those conditions together (key ``"pooled"``). Returns ``{condition: entry}``.

    The interval is :func:`lowlight.evaluation.stats.clustered_bootstrap`'s: the test images are the
    units, each resampled with all the entry's conditions kept together (so the exposures of one image
    never count as independent evidence), the same draw for both rows; several ``new`` rows (training
    seeds) are resampled too, independently of the images; several ``base`` rows likewise (two
    recipes compared seed against seed: each side's seeds drawn on their own, none paired, so that
    the interval holds the seed-to-seed spread of both). Only images scored by every row in every
    condition of the entry are used; a ``pooled`` condition the grid never scored is left out. Each entry: ``change_pct``, ``lo``/``hi`` (95 %), ``n`` (images),
    ``base``/``new`` (mean errors), ``seeds`` (each seed's own change), ``per_image``, ``units`` (what
    was resampled, in words) and ``verdict`` (``None`` below :data:`~lowlight.evaluation.stats.MIN_IMAGES`
    images: read ``per_image`` instead). Where the base's mean error is 0 (the reference model on its
    own clean target) there is no relative change: ``change_pct`` is NaN."""
    news = [new] if isinstance(new, str) else list(new)
    bases = [base] if isinstance(base, str) else list(base)
    conds = list(conditions) if conditions is not None else list(grid_means(records, metric).get(bases[0], {}))
    out = {}

    def entry(cs):
        cs = [c for c in cs if _per_item(records, bases[0], c, metric)]      # conditions the grid has
        if not cs:
            return None
        bs = [[_per_item(records, m, c, metric) for m in bases] for c in cs]
        ns = [[_per_item(records, m, c, metric) for m in news] for c in cs]
        items = sorted(set(bs[0][0]).intersection(*(d for per_c in bs + ns for d in per_c)))
        if not items:
            return None
        bt = np.array([[[d[i] for d in per_c] for per_c in bs] for i in items], np.float64)   # (image, condition, seed)
        nt = np.array([[[d[i] for d in per_c] for per_c in ns] for i in items], np.float64)   # (..., seed)
        res = {"base": float(bt.mean()), "new": float(nt.mean()), "n": len(items), "change_pct": float("nan"),
               "lo": float("nan"), "hi": float("nan"), "seeds": {m: float("nan") for m in news}, "per_image": {},
               "units": "", "verdict": None}
        if res["base"] <= 0:
            return res
        res["change_pct"] = 100.0 * (res["new"] / res["base"] - 1.0)
        if len(items) < 2:        # nothing to resample
            res["seeds"] = {m: 100.0 * (float(nt[..., k].mean()) / res["base"] - 1.0) for k, m in enumerate(news)}
            return res
        ch = clustered_bootstrap(bt, nt, n_boot=n_boot, seed=0, images=items, seeds=news, zero_images="keep")
        res.update(change_pct=ch.change_pct, lo=ch.lo, hi=ch.hi, seeds=dict(ch.per_seed), per_image=dict(ch.per_image),
                   units=ch.units, verdict=ch.verdict)
        return res

    for c in conds:
        r = entry([c])
        if r is not None:
            out[c] = r
    if pooled:
        r = entry(list(pooled))
        if r is not None:
            out["pooled"] = r
    return out
