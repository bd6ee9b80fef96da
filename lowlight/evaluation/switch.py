"""Choosing and scoring the brightness switch of the article's §7 (notebook 07): the threshold on
validation data, the switch's scores on test data. The switch itself, a deployable module, is
:class:`lowlight.inference.BrightnessSwitch`."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch.nn as nn

from ..io import atomic_write_json, atomic_write_text, csv_text
from .protocol import METRICS, _means, evaluate


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
    :class:`lowlight.inference.BrightnessSwitch` does, so the switch's scores come from the two models'
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


def run_switch(normal_model: nn.Module, low_model: nn.Module, val_set, test_records: Sequence[dict],
               normal_key: str = "original", low_key: str = "ft_stage3", batch_size: int = 8, device=None,
               out_dir: str | Path | None = None) -> dict:
    """The brightness switch end to end: both models on ``val_set`` (an LL-Matte split in mode
    ``"low"``, scored on its normal and low versions) -> :func:`choose_threshold` on SAD ->
    :func:`switch_table` on ``test_records`` (per-image records of both models on the test split,
    e.g. from :func:`lowlight.evaluation.evaluate`). Saved as ``switch.json`` / ``switch.csv`` in
    ``out_dir`` when given. Notebook 07."""
    models = {normal_key: normal_model, low_key: low_model}
    val_records = evaluate(models, val_set, ("low", "normal"), batch_size=batch_size, device=device)
    by = {}
    for r in val_records:
        by.setdefault((r["mode"], r["index"]), {})[r["model"]] = r
    keys = sorted(by)
    luma = [by[k][normal_key]["luma"] for k in keys]
    thr, info = choose_threshold(luma, [by[k][normal_key]["sad"] for k in keys],
                                 [by[k][low_key]["sad"] for k in keys])
    table = switch_table(test_records, thr, normal_key, low_key)
    val_lumas = {m: [by[k][normal_key]["luma"] for k in keys if k[0] == m] for m in ("low", "normal")}
    test_lumas = {m: sorted({(r["index"], r["luma"]) for r in test_records if r["mode"] == m
                             and r["model"] == normal_key}) for m in ("low", "normal")}
    result = {"threshold": thr, "criterion": "mean SAD on the validation split (low + normal)",
              "normal_model": normal_key, "low_model": low_key, "n_val": len(keys), "selection": info,
              "val_luma": val_lumas, "test_luma": {m: [v for _, v in s] for m, s in test_lumas.items()},
              "table": table}
    if out_dir is not None:
        out = Path(out_dir)
        atomic_write_json(out / "switch.json", result)
        rows = [{"row": k, **v} for k, v in table.items() if k != "routing"]
        atomic_write_text(out / "switch.csv", csv_text(rows, ["row", "n", "to_low", *METRICS]))
        result["files"] = {"json": str(out / "switch.json"), "csv": str(out / "switch.csv")}
    return result
