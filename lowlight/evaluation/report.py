"""Evaluation results as text tables (notebook 07); the figures are in :mod:`lowlight.viz.evaluation`."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from .exposure import CLEAN, grid_means
from .protocol import ARTICLE, METRIC_LABELS, METRICS, row_label

__all__ = ["fmt", "condition_label", "format_grid_table", "format_change", "format_article_table",
           "format_switch_table"]

_LABELS = {**METRIC_LABELS, "conn_disconnect": "Connectivity (empty = disconnected)",
           "sad_image": "SAD (whole image)", "mse_image": "MSE (whole image)", "mad": "mean |diff|"}


def fmt(v: float, metric: str) -> str:
    """A metric value with the precision its scale needs."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    return f"{v:.4f}" if metric in ("mse", "mse_image", "mad") else f"{v:.3f}"


def condition_label(c) -> str:
    """``"clean"`` or ``"EV -3"``."""
    return CLEAN if c == CLEAN else f"EV {c:g}"


def format_grid_table(records: Sequence[dict], metric: str = "sad_image", rows: Sequence[str] | None = None) -> str:
    """Mean ``metric`` per row (lines) and condition (columns: clean, EV 0, -2 ... -7), over items and
    noise seeds; rows given as prefixes (``"staged"`` averages ``staged/s0``, ``staged/s1`` ...)."""
    means = grid_means(records, metric)
    groups = _group(means, rows)
    conds = list(next(iter(means.values())))
    lines = [f"{_LABELS.get(metric, metric):<36}" + "".join(f"{condition_label(c):>9}" for c in conds)]
    for label, keys in groups.items():
        vals = [sum(means[k][c] for k in keys) / len(keys) for c in conds]
        lines.append(f"{label:<36}" + "".join(f"{fmt(v, metric):>9}" for v in vals))
    return "\n".join(lines)


def _group(means: Mapping, rows) -> dict:
    keys = list(means)
    rows = rows or list(dict.fromkeys(k.partition("/s")[0] for k in keys))
    out = {}
    for r in rows:
        ks = [k for k in keys if k == r or k.startswith(r + "/s")]
        if ks:
            out[row_label(r) + (f" ({len(ks)} seeds)" if len(ks) > 1 else "")] = ks
    return out


def format_change(change: Mapping, title: str = "") -> str:
    """A :func:`~lowlight.evaluation.exposure.grid_change` result: per condition the relative change
    of the mean, its 95 % interval (images resampled with their exposures, seeds resampled), ``*``
    where it excludes zero -- only with at least :data:`~lowlight.evaluation.stats.MIN_IMAGES` images;
    with fewer, each image's own change is listed instead -- and each training seed's own change."""
    from .stats import MIN_IMAGES

    lines = [title] if title else []
    lines.append(f"{'condition':<12}{'base':>9}{'new':>9}{'change':>9}{'95 % interval':>20}  {'per seed':<24}")
    few, units = [], ""
    for c, r in change.items():
        label = "pooled" if c == "pooled" else condition_label(c)
        if not math.isfinite(r["change_pct"]):
            lines.append(f"{label:<12}{r['base']:>9.3f}{r['new']:>9.3f}{'n/a':>9}{'(the base is 0 here)':>20}")
            continue
        enough = r.get("n", 0) >= MIN_IMAGES
        sig = " *" if enough and (r["hi"] < 0 or r["lo"] > 0) else ""
        interval = ("[" + format(r["lo"], "+.1f") + ", " + format(r["hi"], "+.1f") + "]"
                    if math.isfinite(r["lo"]) else "(one image)")
        seeds = " ".join(f"{v:+.0f}%" for v in r.get("seeds", {}).values())
        lines.append(f"{label:<12}{r['base']:>9.3f}{r['new']:>9.3f}{r['change_pct']:>+8.1f}%"
                     f"{interval:>20}{sig:<2}{seeds:<24}")
        if not enough and r.get("per_image"):
            few.append(f"  {label}, per image: " + ", ".join(f"{k} {v:+.0f}%" for k, v in r["per_image"].items()))
        units = units or r.get("units", "")
    units = change.get("pooled", {}).get("units") or units       # the pooled entry's words, if any
    lines += few
    if few:
        lines.append(f"(fewer than {MIN_IMAGES} images: no verdict, read the per-image values; intervals: {units})")
    else:
        lines.append(f"(* the interval excludes 0; intervals: {units or 'none'})")
    return "\n".join(lines)


def format_article_table(ours: Mapping[str, dict], new_label: str = "fine-tuned, 3 stages") -> str:
    """The article's §6 rows beside ours: ``ours[metric]`` is a pooled :func:`grid_change` result
    (original vs fine-tuned) for each DIM metric."""
    def cell(value, metric, change=None):
        text = fmt(value, metric)
        return text if change is None else f"{text} ({change:+.0f}%)"

    a0, a1 = ARTICLE["rows"]["original"], ARTICLE["rows"]["fine-tuned"]
    rows = [
        ("article: original CV-UNet (private data)", [cell(a0[k], k) for k in METRICS]),
        ("article: fine-tuned (private data)",
         [cell(a1[k], k, 100 * (a1[k] - a0[k]) / a0[k]) for k in METRICS]),
        ("ours: MODNet as shipped", [cell(ours[k]["base"], k) for k in METRICS]),
        (f"ours: {new_label}", [cell(ours[k]["new"], k, ours[k]["change_pct"]) for k in METRICS]),
        ("ours: 95 % interval of the change", [f"{ours[k]['lo']:+.0f}..{ours[k]['hi']:+.0f}%" for k in METRICS]),
    ]
    lines = [f"{'':<44}" + "".join(f"{METRIC_LABELS[k]:>18}" for k in METRICS)]
    lines += [f"{label:<44}" + "".join(f"{c:>18}" for c in cells) for label, cells in rows]
    return "\n".join(lines)


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
        lines.append(f"{k:<30}{v['n']:>5}{v['to_low']:>8}" + "".join(f"{fmt(v[m], m):>14}" for m in METRICS))
    return "\n".join(lines)
