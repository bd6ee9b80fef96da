"""The evaluation protocol: how a matte is scored, by exposure, and how two models compare (notebook 07).

* Every model takes RGB in [0, 1] (N x 3 x H x W) and returns alpha (N x 1 x H x W). Its
  prediction is **quantised to 8 bits** (``round(alpha * 255)``) before scoring, because the
  DIM / Composition-1k protocol scores 8-bit PNG mattes read back from disk (and
  ``lowlight.predict`` writes exactly those). The four DIM metrics come from
  :func:`lowlight.metrics.all_metrics` (SAD, Gradient and Connectivity divided by 1000, MSE raw,
  over the trimap's unknown pixels: the units papers and the article print). Trimap-free models
  are also judged on the **whole image** (``sad_image``, ``mse_image``): a background blotch far
  from the subject never enters the unknown band.
* Each LL-Matte test image is scored on its low-light version (what the article reports) and on
  its normal-light version (does fine-tuning for the dark cost anything in daylight?), with
  results per exposure bin (:data:`EV_BINS`).
* Comparisons are **paired**: the same images under both models; :func:`paired_bootstrap` gives
  a 95 % interval for the relative change of the mean, resampling images (one condition per image;
  notebook 07's grids, where an image has several exposures and a model several seeds, use
  :func:`lowlight.evaluation.exposure.grid_change`, which resamples images with all their exposures
  and seeds too).
"""
from __future__ import annotations

import math
import time
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..color import mean_luminance
from ..inference import predict_batch
from ..metrics import all_metrics

METRICS = ("sad", "mse", "gradient", "connectivity")
METRIC_LABELS = {"sad": "SAD", "mse": "MSE", "gradient": "Gradient", "connectivity": "Connectivity"}

#: The article's §6 table (its private LL-Matte-Test, N = 200, image size not stated).
ARTICLE = {
    "dataset": "LL-Matte-Test (the article's private low-light test set)",
    "n": 200,
    "rows": {
        "original": {"mse": 0.032, "sad": 48.7, "gradient": 28.5, "connectivity": 35.2},
        "fine-tuned": {"mse": 0.018, "sad": 31.4, "gradient": 19.3, "connectivity": 24.1},
    },
}

#: EV bins of the low-light inputs, brightest first (LL-Matte draws -6.6 .. -2.7 EV)
EV_BINS: tuple[tuple[float, float], ...] = ((-4.0, -2.0), (-5.0, -4.0), (-7.0, -5.0))
NORMAL_BIN = "normal light"

#: evaluation rows: key -> label
ROW_LABELS = {
    "original": "MODNet as shipped (original)",
    "stage1": "fine-tuned, stage 1",
    "stage2": "fine-tuned, stage 2",
    "staged": "fine-tuned, 3 stages",
    "onestage": "fine-tuned, one stage (control)",
    "onestage_peak": "fine-tuned, one stage at the stages' peak rate (control)",
    "distill": "3 stages, self-distillation only",
    "staged_raw": "3 stages, raw dark frames only",
    "empty": "an all-zero matte (gives up)",
    "original+zerodce": "original + Zero-DCE++",
    "staged+zerodce": "fine-tuned + Zero-DCE++",
}
ROWS = tuple(ROW_LABELS)
#: short row labels for figure panels
SHORT_LABELS = {"original": "original", "stage1": "stage 1", "stage2": "stage 2", "staged": "3 stages",
          "onestage": "one stage", "onestage_peak": "one stage,\npeak rate", "distill": "distill only", "staged_raw": "raw only", "empty": "all-zero",
          "original+zerodce": "original\n+ Zero-DCE++",
          "staged+zerodce": "3 stages\n+ Zero-DCE++"}


def short_label(key: str) -> str:
    """The short label of a row key for a figure panel (``"staged/s1"`` -> ``"3 stages"``)."""
    return SHORT_LABELS.get(key.partition("/s")[0], key)


def row_label(key: str) -> str:
    """The label of a row key, with its training seed (``"staged/s1"`` -> ``"fine-tuned, 3 stages (seed 1)"``)."""
    row, _, seed = key.partition("/s")
    return ROW_LABELS.get(row, row) + (f" (seed {seed})" if seed else "")


#: the article's visual scenarios on the portrait test split: families and preferred backgrounds
SCENARIOS = {
    "night portrait": {"families": ("portrait",), "backgrounds": ("night",)},
    "portrait, photo background": {"families": ("portrait",), "backgrounds": ("photo",)},
}


# =============================================================================== basics
def quantize_alpha(alpha) -> np.ndarray:
    """Float alpha in [0, 1] (numpy or tensor, HxW or 1xHxW) -> uint8 HxW, ``round(a * 255)``:
    the 8-bit matte a PNG would hold. Notebook 07."""
    a = alpha.detach().cpu().numpy() if isinstance(alpha, torch.Tensor) else np.asarray(alpha)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"alpha: expected HxW or 1xHxW, got shape {a.shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if not np.all(np.isfinite(a)):
        raise ValueError("alpha: contains NaN or infinite values")
    return np.round(np.clip(a.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def trimap_to_uint8(trimap) -> np.ndarray:
    """The datasets' trimap (0 / 0.5 / 1 float, HxW or 1xHxW) -> uint8 0 / 128 / 255. Notebook 07."""
    t = trimap.detach().cpu().numpy() if isinstance(trimap, torch.Tensor) else np.asarray(trimap)
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dtype == np.uint8:
        return np.ascontiguousarray(t)
    out = np.full(t.shape, 128, np.uint8)
    out[t == 0] = 0
    out[t == 1] = 255
    bad = (t != 0) & (t != 1) & (t != 0.5)
    if bad.any():
        raise ValueError(f"trimap: expected the values 0, 0.5 and 1, found e.g. {np.unique(t[bad])[:5].tolist()}")
    return out


def ev_bin(ev: float, bins: Sequence[tuple[float, float]] = EV_BINS) -> str:
    """Label of the EV bin ``[lo, hi)`` holding ``ev`` (``"< lo"`` / ``">= hi"`` outside). Notebook 07."""
    for lo, hi in bins:
        if lo <= ev < hi:
            return f"[{lo:g}, {hi:g})"
    lo_all = min(b[0] for b in bins)
    hi_all = max(b[1] for b in bins)
    return f"< {lo_all:g}" if ev < lo_all else f">= {hi_all:g}"


def _bin_order(bins: Sequence[tuple[float, float]] = EV_BINS) -> list[str]:
    lo_all = min(b[0] for b in bins)
    hi_all = max(b[1] for b in bins)
    ordered = sorted(bins, key=lambda b: -b[1])
    return [NORMAL_BIN, f">= {hi_all:g}"] + [f"[{lo:g}, {hi:g})" for lo, hi in ordered] + [f"< {lo_all:g}"]


def _batches(dataset, batch_size: int):
    n = len(dataset)
    for k in range(0, n, batch_size):
        yield [dataset[i] for i in range(k, min(n, k + batch_size))]


def evaluate(models: Mapping[str, nn.Module], dataset, modes: Sequence[str] = ("low", "normal"),
             batch_size: int = 8, device=None, progress: bool = False,
             bins: Sequence[tuple[float, float]] = EV_BINS, timings: dict | None = None) -> list[dict]:
    """Per-image metrics of every model on every image of ``dataset``, for each input mode.

    ``dataset`` is an LL-Matte dataset in mode ``"low"`` (its samples hold ``image``, the
    low-light input, and ``normal``); ``modes`` picks ``"low"`` and/or ``"normal"`` inputs.
    Predictions are quantised to 8 bits before scoring (see the module docstring). Returns
    one dict per (model, mode, image): ``model``, ``mode``, ``id``, ``index``, ``family``,
    ``background``, ``ev`` (of the low-light version), ``bin`` (its EV bin, or
    ``"normal light"``), ``luma`` (mean luminance of the input), ``n_unknown`` and the four
    metrics. ``timings`` (a dict) receives the inference seconds per model. Notebook 07.
    """
    bad = [m for m in modes if m not in ("low", "normal")]
    if bad:
        raise ValueError(f"modes: expected 'low' and/or 'normal', got {bad}")
    if len(dataset) == 0:
        raise ValueError("dataset: empty")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(dataset), desc="evaluating", unit="img", leave=False)
    records: list[dict] = []
    timings = {} if timings is None else timings
    for batch in _batches(dataset, batch_size):
        if "normal" in modes and "normal" not in batch[0]:
            raise ValueError("dataset: samples have no 'normal' image (use an LL-Matte dataset without a transform)")
        inputs = {"low": torch.stack([s["image"] for s in batch]),
                  "normal": torch.stack([s["normal"] for s in batch]) if "normal" in modes else None}
        if "low" in modes and batch[0]["meta"].get("input", "low") != "low":
            raise ValueError("dataset: expected mode='low' (its 'image' is the low-light input)")
        gts = [quantize_alpha(s["alpha"]) for s in batch]
        tris = [trimap_to_uint8(s["trimap"]) for s in batch]
        for key, model in models.items():
            for mode in modes:
                x = inputs[mode]
                t0 = time.perf_counter()
                alpha = predict_batch(model, x, batch_size=batch_size, device=device)
                timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
                luma = mean_luminance(x).tolist()
                for j, s in enumerate(batch):
                    pred = quantize_alpha(alpha[j])
                    m = all_metrics(pred, gts[j], tris[j])
                    meta = s["meta"]
                    ev = float(meta.get("ev", float("nan")))
                    records.append({
                        "model": key, "mode": mode, "id": str(meta.get("id", "")),
                        "index": int(meta.get("index", len(records))),
                        "family": str(meta.get("family", "")), "background": str(meta.get("background", "")),
                        "ev": ev, "bin": NORMAL_BIN if mode == "normal" else ev_bin(ev, bins),
                        "luma": float(luma[j]), "n_unknown": int((tris[j] == 128).sum()),
                        **{k: float(m[k]) for k in METRICS},
                    })
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    order = {k: i for i, k in enumerate(models)}
    records.sort(key=lambda r: (order[r["model"]], r["mode"] != "low", r["index"]))
    return records


# ============================================================================== tables
def _means(rows: list[dict]) -> dict:
    out = {"n": len(rows)}
    for k in METRICS:
        vals = [r[k] for r in rows if r[k] is not None and not (isinstance(r[k], float) and math.isnan(r[k]))]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def verdict(ours_pct: float, article_pct: float) -> str:
    """A plain-words comparison of our relative change with the article's (both in %,
    negative = fewer errors): within a factor of two of the article's size, the same
    direction but smaller, no clear change (|change| < 3 %), or the opposite direction.
    Notebook 07."""
    if ours_pct is None or not math.isfinite(ours_pct):
        return "not measured"
    if abs(ours_pct) < 3.0:
        return "no clear change (|change| < 3 %)"
    if (ours_pct < 0) != (article_pct < 0):
        return "opposite direction"
    ratio = ours_pct / article_pct
    if ratio >= 0.5:
        return "same direction, comparable size" if ratio <= 2.0 else "same direction, larger"
    return f"same direction, {ratio:.0%} of the article's size"


# ========================================================================= visual examples
def pick_scenario(dataset, families: Sequence[str], backgrounds: Sequence[str] = ()) -> int:
    """Index of the first sample (in split order, not chosen by any result) whose family is
    in ``families``, preferring one whose background is in ``backgrounds``; ``ValueError``
    if no sample has such a family. Notebook 07."""
    items = getattr(dataset, "items", None)
    metas = items if items is not None else [dataset[i]["meta"] for i in range(len(dataset))]
    for want_bg in (True, False):
        for fam in families:
            for i, m in enumerate(metas):
                if m.get("family") == fam and (not want_bg or m.get("background") in backgrounds):
                    return i
    raise ValueError(f"no sample of the families {list(families)} in this split of {len(metas)} samples")

