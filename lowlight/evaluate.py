"""Evaluation of the matting models on LL-Matte-Test (notebook 07).

What this module measures, and how
----------------------------------
* **Protocol.** Every model takes RGB in [0, 1] (N x 3 x H x W) and returns alpha
  (N x 1 x H x W). Its prediction is **quantised to 8 bits** (``round(alpha * 255)``)
  before scoring, because the DIM / Composition-1k protocol scores 8-bit PNG mattes read
  back from disk (and ``lowlight.predict`` writes exactly those). The ground truth is the
  stored 8-bit alpha, the trimap the stored 0 / 128 / 255 trimap; the four metrics come from
  :func:`lowlight.metrics.all_metrics` (SAD, Gradient and Connectivity divided by 1000, MSE
  raw, all over the unknown pixels: the units papers and the article print).
* **Data.** The test split of LL-Matte (``profile.n_test`` images; 200 on ``full``) is the
  stand-in for the article's private LL-Matte-Test. Each image is scored twice: on its
  low-light version (what the article reports) and on its normal-light version (to see
  whether fine-tuning for the dark costs anything in daylight).
* **Rows** (:data:`ROWS`): the original CV-UNet (trained on normal light, notebook 06), the
  fine-tuned model after each of the article's three stages, the fine-tuned model with the
  Zero-DCE++ LLIE in front (trained jointly, notebook 06), and the untouched original with the
  pretrained Zero-DCE++ of notebook 04 in front (enhancement alone, no fine-tuning).
* **Exposure bins** (:data:`EV_BINS`): results per exposure of the low-light version,
  ``[-4, -2)``, ``[-5, -4)``, ``[-7, -5)`` EV, beside the normal-light score.
* **The article's numbers** (:data:`ARTICLE`) are shown beside ours, labelled as the
  article's, on its private data. Absolute SAD, Gradient and Connectivity are *sums* over the
  unknown pixels and grow with image size and trimap width, so only the relative change from
  the original to the fine-tuned model can be compared (:func:`relative_change`);
  :func:`article_unknown_pixels` shows what the article's own SAD and MSE imply about its
  image size.

Brightness switch (§7.2 of the article): :class:`BrightnessSwitch` sends each image to the
normal-light (original) or low-light (fine-tuned) model by its mean Rec. 709 luminance;
:func:`choose_threshold` picks the threshold on the validation split (normal + low
versions), :func:`switch_table` scores it on the mixed test set against each model alone
and against oracle routing.

A real pretrained model under low light: :class:`ModnetMatter` runs MODNet's ONNX export
(:mod:`lowlight.assets`) with onnxruntime, and :func:`modnet_stress_test` darkens real
photos with the physical simulator and scores MODNet's matte against its own normal-light
matte, with and without Zero-DCE++ in front.

Outputs of :func:`run_evaluation` go to ``runs/<profile>/eval/`` (``results.json``,
``summary.csv``, ``by_exposure.csv``, ``per_image.csv``), written atomically.
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
import zlib
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from . import config
from .metrics import all_metrics
from .simulate import LUMA_WEIGHTS, luminance  # Rec. 709 on gamma-encoded RGB: one definition
from .viz import atomic_write_text

__all__ = [
    "METRICS", "METRIC_LABELS", "ARTICLE", "EV_BINS", "NORMAL_BIN", "ROWS", "ROW_LABELS",
    "SCENARIOS", "LUMA_WEIGHTS",
    "quantize_alpha", "trimap_to_uint8", "checkpoint_paths", "load_llie", "load_models",
    "predict", "evaluate", "ev_bin", "summary_table", "exposure_table", "relative_change",
    "article_relative_change", "article_unknown_pixels", "verdict", "exposure_damage",
    "run_evaluation", "save_results", "format_summary", "format_exposure_table",
    "format_exposure_damage", "format_comparison",
    "plot_summary", "plot_by_exposure", "plot_relative_change",
    "pick_scenario", "plot_comparison",
    "mean_luminance", "BrightnessSwitch", "choose_threshold", "switch_table", "run_switch",
    "format_switch_table", "plot_switch",
    "ModnetMatter", "to_uint8_image", "enhance_uint8", "modnet_stress_test", "stress_summary",
    "format_stress_table", "plot_stress_curves", "plot_stress_examples",
]

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
    "original": "original CV-UNet",
    "ft_stage1": "fine-tuned, stage 1",
    "ft_stage2": "fine-tuned, stage 2",
    "ft_stage3": "fine-tuned, stage 3",
    "ft_llie": "fine-tuned + LLIE (stage 3)",
    "original_llie": "original + LLIE only",
}
ROWS = tuple(ROW_LABELS)
_SHORT = {"original": "original", "ft_stage1": "FT stage 1", "ft_stage2": "FT stage 2", "ft_stage3": "FT stage 3",
          "ft_llie": "FT + LLIE", "original_llie": "original\n+ LLIE"}

#: the article's two visual scenarios: families and preferred backgrounds
SCENARIOS = {
    "night portrait": {"families": ("portrait", "hair"), "backgrounds": ("night",)},
    "backlit product": {"families": ("product", "transparent"), "backgrounds": ("backlit",)},
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


def _prof(profile) -> config.Profile:
    return profile if isinstance(profile, config.Profile) else config.get_profile(profile)


# =========================================================================== checkpoints
def checkpoint_paths(profile=None) -> dict[str, Path]:
    """Where notebooks 04 and 06 put the checkpoints the rows need (``runs/<profile>/``):
    ``baseline``, ``stage1``..``stage3`` (fine-tuned), ``llie_stage1``..``llie_stage3``
    (fine-tuned with LLIE), ``zerodce`` (pretrained Zero-DCE++). Notebook 07."""
    run = config.run_dir(_prof(profile), create=False)
    paths = {"baseline": run / "train" / "baseline" / "baseline" / "last.pt"}
    for k in (1, 2, 3):
        paths[f"stage{k}"] = run / "train" / "finetune" / f"stage{k}" / "last.pt"
        paths[f"llie_stage{k}"] = run / "train" / "finetune_llie" / f"stage{k}" / "last.pt"
    paths["zerodce"] = run / "llie" / "zerodce.pt"
    return paths


def _require(path: Path, what: str, profile: config.Profile) -> Path:
    if path.is_file():
        return path
    if what == "zerodce":
        how = (f"notebook 04 (04_llie.ipynb) writes it: "
               f"python -m lowlight.reproduce --only 04 --profile {profile.name}")
    else:
        variant = "llie" if what.startswith("llie") else "plain"
        how = (f"notebook 06 writes it: python -m lowlight.reproduce --only 06 --profile {profile.name} "
               f"(or python -c \"from lowlight import train; train.run_recipe('{profile.name}', "
               f"variant='{variant}')\"" + (", after notebook 04" if variant == "llie" else "") + ")")
    raise FileNotFoundError(f"checkpoint {path} not found ({what}): {how}")


def load_llie(path=None, profile=None) -> nn.Module:
    """The pretrained Zero-DCE++ of notebook 04, eval mode: from ``path``, or (``path=None``)
    from ``runs/<profile>/llie/zerodce.pt``, with a ``FileNotFoundError`` naming notebook 04
    when it is missing. Notebook 07."""
    from .llie import ZeroDCEpp
    from .train import load_model_weights

    if path is None:
        P = _prof(profile)
        path = _require(checkpoint_paths(P)["zerodce"], "zerodce", P)
    m = ZeroDCEpp()
    load_model_weights(m, path)
    return m.eval()


def load_models(profile=None, rows: Sequence[str] = ROWS, model_name: str = "cvunet",
                device=None) -> dict[str, nn.Module]:
    """The evaluation rows as models in eval mode, ``{row key: model}`` (see :data:`ROWS`).

    Raises ``FileNotFoundError`` naming the missing checkpoint and the notebook (and
    command) that produces it. Notebook 07.
    """
    from .llie import TwoStageModel
    from .train import build_model, load_model_weights

    P = _prof(profile)
    paths = checkpoint_paths(P)
    dev = config.get_device(device) if not isinstance(device, torch.device) else device
    unknown = [r for r in rows if r not in ROW_LABELS]
    if unknown:
        raise ValueError(f"rows: unknown {unknown}; expected some of {list(ROW_LABELS)}")
    need = {"original": ["baseline"], "ft_stage1": ["stage1"], "ft_stage2": ["stage2"],
            "ft_stage3": ["stage3"], "ft_llie": ["llie_stage3"], "original_llie": ["baseline", "zerodce"]}
    for r in rows:               # fail before building anything
        for what in need[r]:
            _require(paths[what], what, P)
    out: dict[str, nn.Module] = {}
    for r in rows:
        if r == "ft_llie":
            m = build_model(model_name, pretrained=False, llie="zerodce")
            load_model_weights(m, paths["llie_stage3"])
        elif r == "original_llie":
            net = build_model(model_name, pretrained=False)
            load_model_weights(net, paths["baseline"])
            m = TwoStageModel(load_llie(paths["zerodce"]), net)
        else:
            m = build_model(model_name, pretrained=False)
            load_model_weights(m, paths[need[r][0]])
        out[r] = m.to(dev).eval()
    return out


# ============================================================================ inference
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 8, device=None) -> torch.Tensor:
    """Alpha (N x 1 x H x W, float on the CPU) of ``model`` for RGB ``x`` in [0, 1]
    (N x 3 x H x W), in batches, under ``torch.inference_mode``, model in eval mode. Notebook 07."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"x: expected an RGB batch N x 3 x H x W, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    was = model.training
    model.eval()
    outs = []
    try:
        with torch.inference_mode():
            for k in range(0, x.shape[0], max(1, int(batch_size))):
                outs.append(model(x[k:k + batch_size].to(device)).float().cpu())
    finally:
        model.train(was)
    a = torch.cat(outs)
    if a.ndim != 4 or a.shape[1] != 1 or a.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"model returned shape {tuple(a.shape)}, expected N x 1 x {x.shape[-2]} x {x.shape[-1]}")
    return a


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


def mean_luminance(x: torch.Tensor) -> torch.Tensor:
    """Mean Rec. 709 luminance (on the gamma-encoded values) of each image of an RGB batch
    in [0, 1], N x 3 x H x W -> N. The brightness measure of the switch. Notebook 07."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError("x: expected an RGB batch N x 3 x H x W")
    from .losses import luminance as batch_luminance

    return batch_luminance(x)


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
                alpha = predict(model, x, batch_size=batch_size, device=device)
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


def summary_table(records: Iterable[dict]) -> dict:
    """Mean of each metric, ``{mode: {model: {"n", "sad", "mse", "gradient",
    "connectivity"}}}``, models in the order they first appear. Notebook 07."""
    groups: dict[str, dict[str, list]] = {}
    for r in records:
        groups.setdefault(r["mode"], {}).setdefault(r["model"], []).append(r)
    return {mode: {model: _means(rows) for model, rows in g.items()} for mode, g in groups.items()}


def exposure_table(records: Iterable[dict], bins: Sequence[tuple[float, float]] = EV_BINS) -> dict:
    """Means per EV bin, ``{model: {bin: {"n", metrics...}}}``; the normal-light inputs form the
    bin ``"normal light"``; bins run from bright to dark, empty ones left out. Notebook 07."""
    groups: dict[str, dict[str, list]] = {}
    for r in records:
        groups.setdefault(r["model"], {}).setdefault(r["bin"], []).append(r)
    order = _bin_order(bins)
    return {model: {b: _means(g[b]) for b in order if b in g} for model, g in groups.items()}


def exposure_damage(records: Iterable[dict], metric: str = "sad",
                    bins: Sequence[tuple[float, float]] = EV_BINS) -> dict:
    """What low light costs each row, on the *same* images: per EV bin, the mean ``metric``
    of the low-light versions, of the normal-light versions of those images, and the change
    (%). The bins hold different images (families, backgrounds), so their absolute values are
    not comparable across bins; this ratio is. ``{model: {bin: {"n", "low", "normal",
    "change_pct"}}}``. Notebook 07."""
    by: dict[str, dict[tuple, dict]] = {}
    for r in records:
        by.setdefault(r["model"], {})[(r["mode"], r["index"])] = r
    order = _bin_order(bins)
    out: dict[str, dict] = {}
    for model, g in by.items():
        per: dict[str, list] = {}
        for (mode, idx), r in g.items():
            if mode == "low" and ("normal", idx) in g:
                per.setdefault(r["bin"], []).append((r[metric], g[("normal", idx)][metric]))
        rows = {}
        for b in order:
            if b in per:
                lo = float(np.mean([a for a, _ in per[b]]))
                no = float(np.mean([c for _, c in per[b]]))
                rows[b] = {"n": len(per[b]), "low": lo, "normal": no,
                           "change_pct": 100.0 * (lo - no) / no if no else float("nan")}
        if rows:
            out[model] = rows
    return out


def relative_change(summary: dict, base: str = "original", new: str = "ft_stage3", mode: str = "low") -> dict:
    """Relative change (%) of each metric from row ``base`` to row ``new``:
    ``100 * (new - base) / base`` (negative = fewer errors). Notebook 07."""
    b, n = summary[mode][base], summary[mode][new]
    return {k: (100.0 * (n[k] - b[k]) / b[k]) if b[k] else float("nan") for k in METRICS}


def article_relative_change() -> dict:
    """The same relative change (%) for the article's rows (original -> fine-tuned). Notebook 07."""
    b, n = ARTICLE["rows"]["original"], ARTICLE["rows"]["fine-tuned"]
    return {k: 100.0 * (n[k] - b[k]) / b[k] for k in METRICS}


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


def article_unknown_pixels(row: str = "original") -> tuple[float, float]:
    """Bounds on the article's mean number of unknown pixels per image implied by its own SAD
    and MSE (if, as in the DIM code, both are taken over the same unknown pixels):
    with errors ``|e| <= 1``, ``MSE <= mean|e| <= sqrt(MSE)``, so
    ``SAD*1000 / sqrt(MSE) <= n_unknown <= SAD*1000 / MSE``. Notebook 07."""
    r = ARTICLE["rows"][row]
    return r["sad"] * 1000 / math.sqrt(r["mse"]), r["sad"] * 1000 / r["mse"]


# ============================================================================== running
def _csv(rows: list[dict], keys: Sequence[str] | None = None) -> str:
    keys = list(keys or dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in keys})
    return buf.getvalue()


def _jsonable(x):
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def save_results(result: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.json`` (everything), ``summary.csv``, ``by_exposure.csv`` and
    ``per_image.csv`` to ``out_dir`` atomically; returns their paths. Notebook 07."""
    out = Path(out_dir)
    paths = {"json": out / "results.json", "summary": out / "summary.csv",
             "by_exposure": out / "by_exposure.csv", "per_image": out / "per_image.csv"}
    atomic_write_text(paths["json"], json.dumps(_jsonable(result), indent=1) + "\n")
    rows = [{"mode": mode, "model": model, "label": ROW_LABELS.get(model, model), **v}
            for mode, g in result["summary"].items() for model, v in g.items()]
    for name, vals in ARTICLE["rows"].items():
        rows.append({"mode": "low (article, private data)", "model": f"article:{name}",
                     "label": f"article: {name} (LL-Matte-Test, private)", "n": ARTICLE["n"], **vals})
    atomic_write_text(paths["summary"], _csv(rows, ["mode", "model", "label", "n", *METRICS]))
    rows = [{"model": model, "bin": b, **v} for model, g in result["by_exposure"].items() for b, v in g.items()]
    atomic_write_text(paths["by_exposure"], _csv(rows, ["model", "bin", "n", *METRICS]))
    atomic_write_text(paths["per_image"], _csv(result["per_image"]))
    return paths


def run_evaluation(profile=None, rows: Sequence[str] = ROWS, modes: Sequence[str] = ("low", "normal"),
                   models: Mapping[str, nn.Module] | None = None, split: str = "test",
                   batch_size: int | None = None, device=None, out_dir: str | Path | None = None,
                   progress: bool = False, save: bool = True) -> dict:
    """Evaluate the rows on the ``split`` of LL-Matte (low- and normal-light versions) and
    save the results under ``runs/<profile>/eval/`` (or ``out_dir``).

    ``models`` (``{key: model}``) replaces the checkpoints of notebook 06 (the tests pass
    untrained models). Returns a dict: ``profile``, ``n``, ``image_size``, ``rows``,
    ``labels``, ``summary`` (:func:`summary_table`), ``by_exposure``
    (:func:`exposure_table`), ``relative_change`` (ours and the article's), ``article``,
    ``per_image`` records, ``seconds`` and, when saved, ``files``. Notebook 07.
    """
    from .data import LLMatteDataset

    P = _prof(profile)
    t0 = time.perf_counter()
    from_checkpoints = models is None
    if from_checkpoints:
        models = load_models(P, rows, device=device)
    ds = LLMatteDataset(split, P, mode="low", progress=False)
    timings: dict[str, float] = {}
    records = evaluate(models, ds, modes, batch_size=batch_size or P.batch_size, device=device,
                       progress=progress, timings=timings)
    summ = summary_table(records)
    result = {
        "profile": P.name, "split": split, "n": len(ds), "image_size": P.eval_size,
        "quantized_8bit": True, "metric_units": "SAD, Gradient, Connectivity / 1000; MSE raw; over unknown pixels",
        "rows": list(models), "labels": {k: ROW_LABELS.get(k, k) for k in models},
        "checkpoints": ({k: str(v) for k, v in checkpoint_paths(P).items()} if from_checkpoints
                        else "models passed by the caller"),
        "summary": summ, "by_exposure": exposure_table(records),
        "exposure_damage": exposure_damage(records) if "normal" in modes and "low" in modes else {},
        "mean_unknown_pixels": float(np.mean([r["n_unknown"] for r in records])),
        "article": ARTICLE,
        "relative_change": {"article": article_relative_change()},
        "inference_seconds": timings,
        "per_image": records,
    }
    if "low" in summ and "original" in summ["low"]:
        for k in models:
            if k != "original":
                result["relative_change"][k] = relative_change(summ, "original", k, "low")
    result["seconds"] = time.perf_counter() - t0
    if save:
        out = Path(out_dir) if out_dir else config.run_dir(P) / "eval"
        result["files"] = {k: str(v) for k, v in save_results(result, out).items()}
    return result


# ============================================================================ formatting
def _fmt(v: float, metric: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    return f"{v:.4f}" if metric == "mse" else f"{v:.3f}"


def format_summary(result: dict, mode: str = "low", article: bool = True) -> str:
    """A text table: our rows (mean over the split, ``mode`` inputs) and, below, the
    article's rows, labelled as the article's on its private data. Notebook 07."""
    lines = [f"{'row':<40}{'n':>5}" + "".join(f"{METRIC_LABELS[k]:>14}" for k in METRICS)]
    title = {"low": "low-light inputs", "normal": "normal-light inputs"}.get(mode, mode)
    lines.append(f"-- ours: LL-Matte test split ({result['profile']}, {result['image_size']} px), {title}")
    for key, v in result["summary"][mode].items():
        lines.append(f"{ROW_LABELS.get(key, key):<40}{v['n']:>5}" + "".join(f"{_fmt(v[k], k):>14}" for k in METRICS))
    if article and mode == "low":
        lines.append(f"-- the article's §6 table: {ARTICLE['dataset']}, size unknown")
        for name, v in ARTICLE["rows"].items():
            lines.append(f"{'article: ' + name + ' CV-UNet':<40}{ARTICLE['n']:>5}"
                         + "".join(f"{_fmt(v[k], k):>14}" for k in METRICS))
    return "\n".join(lines)


def format_exposure_table(result: dict, metric: str = "sad") -> str:
    """Mean ``metric`` per exposure bin (columns, bright to dark) and row. Notebook 07."""
    bins = [b for b in _bin_order() if any(b in g for g in result["by_exposure"].values())]
    head = f"{METRIC_LABELS[metric] + ' by exposure':<32}" + "".join(f"{b:>15}" for b in bins)
    counts = next(iter(result["by_exposure"].values()))
    lines = [head, f"{'(images per bin)':<32}" + "".join(f"{counts.get(b, {}).get('n', 0):>15}" for b in bins)]
    for key, g in result["by_exposure"].items():
        lines.append(f"{ROW_LABELS.get(key, key):<32}"
                     + "".join(f"{_fmt(g[b][metric], metric) if b in g else '-':>15}" for b in bins))
    return "\n".join(lines)


def format_exposure_damage(result: dict, rows: Sequence[str] | None = None) -> str:
    """SAD change (%) from the normal-light to the low-light version of the same images, per
    EV bin and row (from :func:`exposure_damage`). Notebook 07."""
    dmg = result["exposure_damage"]
    rows = [r for r in (rows or dmg) if r in dmg]
    bins = [b for b in _bin_order() if any(b in dmg[r] for r in rows)]
    lines = [f"{'SAD, low vs normal light (same images)':<40}" + "".join(f"{b:>12}" for b in bins)]
    for key in rows:
        g = dmg[key]
        lines.append(f"{ROW_LABELS.get(key, key):<40}"
                     + "".join(f"{g[b]['change_pct']:>+11.1f}%" if b in g else f"{'-':>12}" for b in bins))
    return "\n".join(lines)


def format_comparison(result: dict) -> str:
    """Relative change (%) original -> each row, ours vs the article's original -> fine-tuned. Notebook 07."""
    lines = [f"{'relative change vs original (%)':<44}" + "".join(f"{METRIC_LABELS[k]:>14}" for k in METRICS)]
    art = result["relative_change"]["article"]
    lines.append(f"{'article: fine-tuned (private data)':<44}" + "".join(f"{art[k]:>+14.1f}" for k in METRICS))
    for key, v in result["relative_change"].items():
        if key == "article":
            continue
        lines.append(f"{'ours: ' + ROW_LABELS.get(key, key):<44}" + "".join(f"{v[k]:>+14.1f}" for k in METRICS))
    return "\n".join(lines)


# ================================================================================ figures
def plot_summary(result: dict):
    """Four panels (one per metric): mean error of each row on low-light and normal-light
    inputs. The article's rows are not drawn: their absolute values are not comparable
    (see :func:`plot_relative_change`). Returns the figure. Notebook 07."""
    import matplotlib.pyplot as plt

    summ = result["summary"]
    keys = list(result["rows"])
    modes = [m for m in ("low", "normal") if m in summ]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    x = np.arange(len(keys))
    width = 0.8 / len(modes)
    colours = {"low": "#35608d", "normal": "#e8a33d"}
    for ax, metric in zip(axes, METRICS):
        for i, mode in enumerate(modes):
            vals = [summ[mode][k][metric] if k in summ[mode] else np.nan for k in keys]
            ax.bar(x + (i - (len(modes) - 1) / 2) * width, vals, width, label=f"{mode}-light input",
                   color=colours[mode])
        ax.set_xticks(x, [_SHORT.get(k, k) for k in keys], fontsize=7, rotation=35, ha="right",
                      rotation_mode="anchor")
        ax.set_title(f"{METRIC_LABELS[metric]} (lower is better)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    h, l = axes[0].get_legend_handles_labels()
    fig.legend(h, l, loc="upper left", fontsize=8, ncol=2)
    fig.suptitle(f"LL-Matte test split, {result['n']} images at {result['image_size']} px "
                 f"({result['profile']} profile); FT = fine-tuned", fontsize=11)
    fig.tight_layout()
    return fig


def plot_by_exposure(result: dict, metric: str = "sad"):
    """Left: mean ``metric`` per exposure bin (normal light, then darker and darker) per row
    (the bins hold different images). Right: the change from normal to low light on the same
    images (:func:`exposure_damage`, SAD only). Notebook 07."""
    import matplotlib.pyplot as plt

    bins = [b for b in _bin_order() if any(b in g for g in result["by_exposure"].values())]
    dmg = result.get("exposure_damage") or {}
    fig, axes = plt.subplots(1, 2 if dmg else 1, figsize=(12 if dmg else 7, 4), squeeze=False)
    ax = axes[0, 0]
    for key, g in result["by_exposure"].items():
        ax.plot(range(len(bins)), [g[b][metric] if b in g else np.nan for b in bins], "o-",
                label=ROW_LABELS.get(key, key), lw=2 if key in ("original", "ft_stage3") else 1)
    counts = next(iter(result["by_exposure"].values()))
    ax.set_xticks(range(len(bins)), [f"{b}\n(n={counts.get(b, {}).get('n', 0)})" for b in bins], fontsize=8)
    ax.set_xlabel("exposure of the input (EV relative to normal light)")
    ax.set_ylabel(f"mean {METRIC_LABELS[metric]}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{METRIC_LABELS[metric]} by exposure ({result['profile']} profile)", fontsize=10)
    if dmg:
        ax = axes[0, 1]
        dbins = [b for b in _bin_order() if any(b in g for g in dmg.values())]
        for key, g in dmg.items():
            ax.plot(range(len(dbins)), [g[b]["change_pct"] if b in g else np.nan for b in dbins], "o-",
                    label=ROW_LABELS.get(key, key), lw=2 if key in ("original", "ft_stage3") else 1)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(range(len(dbins)), dbins, fontsize=8)
        ax.set_xlabel("exposure of the low-light version (EV)")
        ax.set_ylabel("SAD change, normal -> low light (%)")
        ax.grid(alpha=0.3)
        ax.set_title("what low light costs, on the same images", fontsize=10)
    fig.tight_layout()
    return fig


def plot_relative_change(result: dict, rows: Sequence[str] = ("ft_stage3", "ft_llie", "original_llie")):
    """Relative change (%) vs the original per metric: the article's fine-tuned row (its
    private data) beside ours. The one comparable quantity across data sets. Notebook 07."""
    import matplotlib.pyplot as plt

    rc = result["relative_change"]
    series = [("article: fine-tuned\n(private data)", rc["article"], "#999999")]
    palette = ["#35608d", "#2a9d8f", "#c44e52", "#8172b2", "#937860"]
    for i, key in enumerate([r for r in rows if r in rc]):
        series.append((f"ours: {ROW_LABELS.get(key, key)}", rc[key], palette[i % len(palette)]))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(METRICS))
    width = 0.8 / len(series)
    for i, (label, v, c) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, [v[k] for k in METRICS], width, label=label, color=c)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, [METRIC_LABELS[k] for k in METRICS])
    ax.set_ylabel("change vs original (%)\n(negative = fewer errors)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Low-light test inputs: relative change from the original model", fontsize=10)
    fig.tight_layout()
    return fig


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


def plot_comparison(models: Mapping[str, nn.Module], sample: dict, title: str = "", device=None):
    """One test sample: the low-light input (brightened for display), each model's matte,
    the ground truth; below: the normal-light image, each model's error map |pred - gt|
    (with SAD / MSE over the unknown pixels) and the trimap. Returns the figure. Notebook 07."""
    import matplotlib.pyplot as plt

    x = sample["image"][None]
    gt = quantize_alpha(sample["alpha"])
    tri = trimap_to_uint8(sample["trimap"])
    low = sample["image"].permute(1, 2, 0).numpy()
    from .viz import brighten

    shown, gain = brighten(low, 0.4, max_gain=30.0)
    n = len(models)
    fig, axes = plt.subplots(2, n + 2, figsize=(2.3 * (n + 2), 6.0))
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(shown)
    axes[0, 0].set_title(f"low-light input\n(x{gain:.0f} for display; EV {sample['meta'].get('ev', 0):.1f})", fontsize=8)
    if "normal" in sample:
        axes[1, 0].imshow(sample["normal"].permute(1, 2, 0).numpy())
        axes[1, 0].set_title("normal-light version", fontsize=8)
    for j, (label, model) in enumerate(models.items(), start=1):
        pred = quantize_alpha(predict(model, x, device=device)[0])
        m = all_metrics(pred, gt, tri)
        axes[0, j].imshow(pred, cmap="gray", vmin=0, vmax=255)
        axes[0, j].set_title(ROW_LABELS.get(label, label), fontsize=8)
        err = np.abs(pred.astype(np.int16) - gt.astype(np.int16)) / 255.0
        axes[1, j].imshow(err, cmap="magma", vmin=0, vmax=1)
        axes[1, j].set_title(f"|pred - gt|  (SAD {m['sad']:.3f},\nMSE {m['mse']:.4f})", fontsize=8)
    axes[0, n + 1].imshow(gt, cmap="gray", vmin=0, vmax=255)
    axes[0, n + 1].set_title("ground truth", fontsize=8)
    axes[1, n + 1].imshow(tri, cmap="gray", vmin=0, vmax=255)
    axes[1, n + 1].set_title("trimap (grey = unknown,\nwhere metrics count)", fontsize=8)
    meta = sample["meta"]
    fig.suptitle(f"{title}: {meta.get('id', '')}, family '{meta.get('family', '')}', "
                 f"background '{meta.get('background', '')}'", fontsize=10)
    fig.tight_layout()
    return fig


# ======================================================================= brightness switch
class BrightnessSwitch(nn.Module):
    """§7.2's deployment advice as a model: images whose mean Rec. 709 luminance is below
    ``threshold`` go to ``low_model`` (the fine-tuned one), the others to ``normal_model``
    (the original). ``forward(x)`` returns alpha like either model; :attr:`last_route` holds
    the routing of the last batch (True = low-light model). Notebook 07."""

    def __init__(self, normal_model: nn.Module, low_model: nn.Module, threshold: float):
        super().__init__()
        if not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise ValueError(f"threshold: expected a finite number, got {threshold!r}")
        self.normal_model = normal_model
        self.low_model = low_model
        self.threshold = float(threshold)
        self.last_route: torch.Tensor | None = None

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean N: True where the image goes to the low-light model."""
        return mean_luminance(x) < self.threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.route(x)
        self.last_route = low.detach().cpu()
        out = None
        for mask, model in ((low, self.low_model), (~low, self.normal_model)):
            if bool(mask.any()):
                a = model(x[mask])
                if out is None:
                    out = a.new_empty((x.shape[0], *a.shape[1:]))
                out[mask] = a
        return out


def choose_threshold(luma: Sequence[float], err_normal_model: Sequence[float],
                     err_low_model: Sequence[float]) -> tuple[float, dict]:
    """The luminance threshold that minimises the summed error when images darker than it go
    to the low-light model, and the others to the normal-light model.

    Candidates are the midpoints between consecutive sorted luminances plus one below and
    one above all of them (everything to one model). Among equally good candidates the
    middle of the widest run is taken (the largest margin). Returns ``(threshold, info)``
    with ``info["candidates"]`` and ``info["errors"]`` (mean error per candidate) for a
    plot. Notebook 07.
    """
    l = np.asarray(luma, np.float64)
    en = np.asarray(err_normal_model, np.float64)
    el = np.asarray(err_low_model, np.float64)
    if not (l.shape == en.shape == el.shape) or l.ndim != 1 or l.size == 0:
        raise ValueError(f"luma and the two error lists: expected equal non-empty 1-D lengths, "
                         f"got {l.shape}, {en.shape}, {el.shape}")
    if not (np.all(np.isfinite(l)) and np.all(np.isfinite(en)) and np.all(np.isfinite(el))):
        raise ValueError("luma / errors: expected finite values")
    u = np.unique(l)
    cands = np.concatenate([[max(0.0, u[0] - 1e-3) if u[0] > 0 else 0.0], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-3]])
    errs = np.array([np.where(l < t, el, en).mean() for t in cands])
    best = errs.min()
    ok = errs <= best + 1e-12 * max(1.0, abs(best))
    runs, start = [], None
    for i, flag in enumerate(ok):
        if flag and start is None:
            start = i
        if (not flag or i == len(ok) - 1) and start is not None:
            end = i if flag else i - 1
            runs.append((start, end))
            start = None
    s, e = max(runs, key=lambda r: (cands[r[1]] - cands[r[0]], -r[0]))
    thr = float((cands[s] + cands[e]) / 2)
    return thr, {"candidates": cands.tolist(), "errors": errs.tolist(), "best_error": float(best),
                 "optimal_range": [float(cands[s]), float(cands[e])]}


def switch_table(records: Iterable[dict], threshold: float, normal_key: str = "original",
                 low_key: str = "ft_stage3") -> dict:
    """Scores on a mixed set (both modes of each image) of: the normal-light model alone,
    the low-light model alone, the switch at ``threshold`` and oracle routing (per image,
    the model with the lower SAD). Routing per image by its input luminance is exactly what
    :class:`BrightnessSwitch` does, so the switch's scores come from the two models'
    per-image records. Returns ``{row: {"n", metrics..., "to_low"}}`` plus ``"routing"``
    (how many low-light and normal-light inputs went to the low-light model). Notebook 07."""
    by = {}
    for r in records:
        by.setdefault((r["mode"], r["index"]), {})[r["model"]] = r
    pairs = [(k, v[normal_key], v[low_key]) for k, v in sorted(by.items()) if normal_key in v and low_key in v]
    if not pairs:
        raise ValueError(f"records: no image scored by both {normal_key!r} and {low_key!r}")
    rows = {"normal-light model only": [], "low-light model only": [], "switch": [], "oracle": []}
    to_low = {"switch": 0, "oracle": 0}
    routing = {"low": [0, 0], "normal": [0, 0]}      # [to low model, total] per input mode
    for (mode, _), rn, rl in pairs:
        rows["normal-light model only"].append(rn)
        rows["low-light model only"].append(rl)
        go_low = rn["luma"] < threshold
        rows["switch"].append(rl if go_low else rn)
        to_low["switch"] += go_low
        routing[mode][0] += go_low
        routing[mode][1] += 1
        o = rl if rl["sad"] < rn["sad"] else rn
        rows["oracle"].append(o)
        to_low["oracle"] += o is rl
    out = {k: {**_means(v), "to_low": to_low.get(k, len(v) if k.startswith("low") else 0)} for k, v in rows.items()}
    out["routing"] = {m: {"to_low_model": a, "n": n} for m, (a, n) in routing.items() if n}
    return out


def run_switch(profile=None, normal_model: nn.Module | None = None, low_model: nn.Module | None = None,
               test_records: Sequence[dict] | None = None, normal_key: str = "original",
               low_key: str = "ft_stage3", batch_size: int | None = None, device=None,
               out_dir: str | Path | None = None, save: bool = True) -> dict:
    """The brightness switch end to end: both models on the validation split (normal and
    low versions) -> :func:`choose_threshold` on SAD -> :func:`switch_table` on the test
    split's records (``test_records``, e.g. ``run_evaluation(...)["per_image"]``; computed
    here if ``None``). Saved as ``switch.json`` / ``switch.csv``. Notebook 07."""
    from .data import LLMatteDataset

    P = _prof(profile)
    if normal_model is None or low_model is None:
        loaded = load_models(P, [normal_key, low_key], device=device)
        normal_model = normal_model or loaded[normal_key]
        low_model = low_model or loaded[low_key]
    models = {normal_key: normal_model, low_key: low_model}
    bs = batch_size or P.batch_size
    val = LLMatteDataset("val", P, mode="low", progress=False)
    val_records = evaluate(models, val, ("low", "normal"), batch_size=bs, device=device)
    by = {}
    for r in val_records:
        by.setdefault((r["mode"], r["index"]), {})[r["model"]] = r
    keys = sorted(by)
    luma = [by[k][normal_key]["luma"] for k in keys]
    thr, info = choose_threshold(luma, [by[k][normal_key]["sad"] for k in keys],
                                 [by[k][low_key]["sad"] for k in keys])
    if test_records is None:
        test = LLMatteDataset("test", P, mode="low", progress=False)
        test_records = evaluate(models, test, ("low", "normal"), batch_size=bs, device=device)
    table = switch_table(test_records, thr, normal_key, low_key)
    val_lumas = {m: [by[k][normal_key]["luma"] for k in keys if k[0] == m] for m in ("low", "normal")}
    test_lumas = {m: sorted({(r["index"], r["luma"]) for r in test_records if r["mode"] == m
                             and r["model"] == normal_key}) for m in ("low", "normal")}
    result = {"profile": P.name, "threshold": thr, "criterion": "mean SAD on the validation split (low + normal)",
              "normal_model": normal_key, "low_model": low_key, "n_val": len(keys), "selection": info,
              "val_luma": val_lumas, "test_luma": {m: [v for _, v in s] for m, s in test_lumas.items()},
              "table": table}
    if save:
        out = Path(out_dir) if out_dir else config.run_dir(P) / "eval"
        atomic_write_text(out / "switch.json", json.dumps(_jsonable(result), indent=1) + "\n")
        rows = [{"row": k, **v} for k, v in table.items() if k != "routing"]
        atomic_write_text(out / "switch.csv", _csv(rows, ["row", "n", "to_low", *METRICS]))
        result["files"] = {"json": str(out / "switch.json"), "csv": str(out / "switch.csv")}
    return result


def plot_switch(sw: dict):
    """Left: mean luminance of the validation and test inputs (low and normal versions) with
    the chosen threshold. Right: the validation SAD of the switch for every candidate
    threshold. Returns the figure. Notebook 07."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    ax = axes[0]
    colours = {"low": "#35608d", "normal": "#e8a33d"}
    for row, (split, lumas) in enumerate((("validation", sw["val_luma"]), ("test", sw["test_luma"]))):
        for mode, vals in lumas.items():
            y = np.full(len(vals), row) + np.linspace(-0.15, 0.15, max(len(vals), 1))[:len(vals)]
            ax.scatter(vals, y, s=12, color=colours[mode], alpha=0.8,
                       label=f"{mode}-light inputs" if row == 0 else None)
    ax.axvline(sw["threshold"], color="k", ls="--", lw=1, label=f"threshold {sw['threshold']:.3f}")
    ax.set_yticks([0, 1], ["validation", "test"])
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("mean Rec. 709 luminance of the input (log scale)")
    ax.legend(fontsize=7, loc="center right")
    ax.set_title("where the switch cuts", fontsize=10)
    ax = axes[1]
    c = np.asarray(sw["selection"]["candidates"])
    e = np.asarray(sw["selection"]["errors"])
    ax.step(np.maximum(c, 1e-4), e, where="mid", color="#35608d")
    ax.axvline(sw["threshold"], color="k", ls="--", lw=1)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("threshold (log scale)")
    ax.set_ylabel("mean SAD on validation")
    ax.set_title("choosing the threshold on the validation split", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def format_switch_table(sw: dict) -> str:
    """The switch result as text: threshold, routing, and the four rows. Notebook 07."""
    t = sw["table"]
    lines = [f"threshold (mean luminance) = {sw['threshold']:.4f}, chosen on {sw['n_val']} validation inputs "
             f"(low + normal) by mean SAD"]
    for m, v in t["routing"].items():
        lines.append(f"  {m}-light test inputs sent to the low-light model: {v['to_low_model']}/{v['n']}")
    lines.append(f"{'mixed test set (low + normal)':<30}{'n':>5}{'to low':>8}"
                 + "".join(f"{METRIC_LABELS[k]:>14}" for k in METRICS))
    for k, v in t.items():
        if k == "routing":
            continue
        lines.append(f"{k:<30}{v['n']:>5}{v['to_low']:>8}" + "".join(f"{_fmt(v[m], m):>14}" for m in METRICS))
    return "\n".join(lines)


# =================================================================== a real pretrained model
def to_uint8_image(x) -> np.ndarray:
    """Float RGB in [0, 1] (3xHxW tensor or HxWx3 array) -> uint8 HxWx3, rounded. Notebook 07."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3:
        a = a.transpose(1, 2, 0)
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


def enhance_uint8(llie: nn.Module, img: np.ndarray) -> np.ndarray:
    """Run an LLIE (e.g. Zero-DCE++) on a uint8 RGB image; returns uint8 RGB. Notebook 07."""
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div(255)[None]
    with torch.inference_mode():
        y = llie.eval()(x).clamp(0, 1)
    return to_uint8_image(y[0])


class ModnetMatter:
    """MODNet (portrait matting, the ONNX asset of :mod:`lowlight.assets`) with onnxruntime.

    ``matter(img)``: uint8 RGB HxWx3 -> float32 alpha HxW in [0, 1]. The image is resized
    (area) so that its short side is ``ref_size`` when it is smaller than that on both sides
    or larger on both sides (MODNet's own inference rule), each side is then rounded down to
    a multiple of 32, normalised as ``x / 127.5 - 1``, and the matte is resized back
    (bilinear). One session is built and reused. Notebook 07.
    """

    def __init__(self, path: str | Path | None = None, threads: int = 2, ref_size: int = 512):
        import onnxruntime as ort

        from . import assets

        self.path = Path(path) if path is not None else assets.fetch("modnet")
        if not self.path.is_file():
            raise FileNotFoundError(f"MODNet ONNX model {self.path} not found (lowlight.assets.fetch('modnet'))")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # no busy-waiting between operators: kinder to other processes on a small machine
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.ref_size = int(ref_size)

    def input_size(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) the network sees for an h x w image."""
        r = self.ref_size
        if max(h, w) < r or min(h, w) > r:
            s = r / min(h, w)
            h, w = round(h * s), round(w * s)
        return max(32, h - h % 32), max(32, w - w % 32)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        import cv2

        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError("img: expected a uint8 RGB array HxWx3")
        h, w = img.shape[:2]
        ih, iw = self.input_size(h, w)
        x = img if (ih, iw) == (h, w) else cv2.resize(img, (iw, ih), interpolation=cv2.INTER_AREA)
        x = (x.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        a = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0][0, 0]
        if a.shape != (h, w):
            a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(a, 0.0, 1.0).astype(np.float32)


def modnet_stress_test(photos: Mapping[str, np.ndarray], evs: Sequence[float] = (0, -2, -3, -4, -5, -6, -7),
                       matter: ModnetMatter | None = None, llie: nn.Module | None = None,
                       seeds: Sequence[int] = (0,), keep_examples: bool = True, **sim_kwargs):
    """MODNet on real photos darkened by the physical simulator.

    For each photo the reference is MODNet's own matte of the normal-light photo (quantised
    to 8 bits) and the trimap is :func:`lowlight.data.trimap_from_alpha` of it. Each EV in
    ``evs`` renders a low-light version (``SimParams.from_ev(ev, **sim_kwargs)``, one noise
    draw per seed) and scores MODNet's matte of it, and, with ``llie``, of its enhanced
    version, with :func:`lowlight.metrics.all_metrics`. Returns ``(records, examples)``:
    one record per (photo, ev, seed, llie on/off) with the metrics and the input's mean
    luminance; ``examples[(photo, ev)]`` holds the first seed's images and mattes for a
    figure (with the reference under ``examples[(photo, "reference")]``). Notebook 07.
    """
    from .data import trimap_from_alpha
    from .simulate import SimParams, simulate

    matter = matter or ModnetMatter()
    records, examples = [], {}
    for name, img in photos.items():
        img = np.ascontiguousarray(img)
        ref = quantize_alpha(matter(img))
        tri = trimap_from_alpha(ref)
        if keep_examples:
            examples[(name, "reference")] = {"image": img, "matte": ref, "trimap": tri}
        for ev in evs:
            for seed in seeds:
                # one noise stream per (photo, ev, seed), independent of the order of the loops
                rng = np.random.default_rng(np.random.SeedSequence(
                    [int(seed), zlib.crc32(name.encode()), int(round(float(ev) * 1000)) % (2**31)]))
                low = simulate(img, SimParams.from_ev(float(ev), **sim_kwargs), rng)
                variants = [("none", low)]
                if llie is not None:
                    variants.append(("zerodce", enhance_uint8(llie, low)))
                for tag, inp in variants:
                    pred = quantize_alpha(matter(inp))
                    m = all_metrics(pred, ref, tri)
                    records.append({"photo": name, "ev": float(ev), "seed": int(seed), "llie": tag,
                                    "luma": float(luminance(inp).mean()),
                                    **{k: float(m[k]) for k in METRICS}})
                    if keep_examples and seed == seeds[0]:
                        examples.setdefault((name, float(ev)), {})[tag] = {"image": inp, "matte": pred}
    return records, examples


def stress_summary(records: Iterable[dict]) -> dict:
    """Means over photos and seeds: ``{llie tag: {ev: {"n", metrics...}}}``, EVs descending. Notebook 07."""
    groups: dict[str, dict[float, list]] = {}
    for r in records:
        groups.setdefault(r["llie"], {}).setdefault(r["ev"], []).append(r)
    return {tag: {ev: _means(g[ev]) for ev in sorted(g, reverse=True)} for tag, g in groups.items()}


def format_stress_table(records: Iterable[dict], metric: str = "sad") -> str:
    """MODNet's mean error vs its own normal-light matte, by EV, with and without LLIE. Notebook 07."""
    s = stress_summary(records)
    evs = sorted({ev for g in s.values() for ev in g}, reverse=True)
    lines = [f"{'MODNet ' + METRIC_LABELS[metric] + ' vs its normal-light matte':<44}"
             + "".join(f"{f'EV {ev:g}':>9}" for ev in evs)]
    names = {"none": "darkened input", "zerodce": "darkened + Zero-DCE++"}
    for tag, g in s.items():
        lines.append(f"{names.get(tag, tag):<44}" + "".join(f"{_fmt(g[ev][metric], metric) if ev in g else '-':>9}"
                                                           for ev in evs))
    return "\n".join(lines)


def plot_stress_curves(records: Sequence[dict], title: str = ""):
    """Four panels: MODNet's error vs EV, one line per photo, solid without and dashed with
    Zero-DCE++ in front. Returns the figure. Notebook 07."""
    import matplotlib.pyplot as plt

    photos = list(dict.fromkeys(r["photo"] for r in records))
    tags = list(dict.fromkeys(r["llie"] for r in records))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes, METRICS):
        for i, ph in enumerate(photos):
            for tag in tags:
                sub = stress_summary([r for r in records if r["photo"] == ph and r["llie"] == tag])[tag]
                evs = list(sub)
                ax.plot(evs, [sub[e][metric] for e in evs], "o-" if tag == "none" else "s--",
                        color=colours[i % len(colours)], ms=4,
                        label=f"{ph}" + ("" if tag == "none" else " + Zero-DCE++"))
        ax.set_xlabel("exposure (EV)")
        ax.set_title(METRIC_LABELS[metric], fontsize=10)
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or "MODNet (real pretrained weights) on darkened real photos: error vs its own "
                 "normal-light matte", fontsize=10)
    fig.tight_layout()
    return fig


def plot_stress_examples(examples: dict, photo: str, evs: Sequence[float]):
    """The reference matte and, for each EV, the darkened input (as it is, not brightened),
    MODNet's matte, and with Zero-DCE++ the enhanced input and its matte. Notebook 07."""
    import matplotlib.pyplot as plt

    evs = [float(e) for e in evs if (photo, float(e)) in examples]
    has_llie = any("zerodce" in examples[(photo, e)] for e in evs)
    rows = 4 if has_llie else 2
    fig, axes = plt.subplots(rows, len(evs) + 1, figsize=(2.1 * (len(evs) + 1), 2.2 * rows))
    axes = np.atleast_2d(axes)
    for ax in axes.flat:
        ax.axis("off")
    ref = examples[(photo, "reference")]
    axes[0, 0].imshow(ref["image"])
    axes[0, 0].set_title("normal light", fontsize=8)
    axes[1, 0].imshow(ref["matte"], cmap="gray", vmin=0, vmax=255)
    axes[1, 0].set_title("MODNet matte\n(the reference)", fontsize=8)
    for j, ev in enumerate(evs, start=1):
        ex = examples[(photo, ev)]
        axes[0, j].imshow(ex["none"]["image"])
        axes[0, j].set_title(f"EV {ev:g} (as captured)", fontsize=8)
        axes[1, j].imshow(ex["none"]["matte"], cmap="gray", vmin=0, vmax=255)
        axes[1, j].set_title("MODNet", fontsize=8)
        if has_llie and "zerodce" in ex:
            axes[2, j].imshow(ex["zerodce"]["image"])
            axes[2, j].set_title("Zero-DCE++ output", fontsize=8)
            axes[3, j].imshow(ex["zerodce"]["matte"], cmap="gray", vmin=0, vmax=255)
            axes[3, j].set_title("MODNet after Zero-DCE++", fontsize=8)
    fig.tight_layout()
    return fig
