"""Figures of the evaluation (notebook 07): error by exposure, relative changes with intervals,
visual comparisons, the brightness switch."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ..evaluation.exposure import CLEAN, darken, grid_means
from ..evaluation.protocol import quantize_alpha, row_label, short_label
from ..metrics import all_metrics

__all__ = ["plot_grid", "plot_changes", "plot_examples", "plot_switch", "METRIC_NAMES", "metric_axis_label"]

_PALETTE = ["#222222", "#35608d", "#e8a33d", "#3a9a5b", "#b5475b", "#7d5ba6", "#999999", "#5fb7c9"]

#: what a grid metric measures, in words (panel titles): ``metric -> (name, unit)``; the unit is
#: how the value is printed (SAD, Gradient and Connectivity are sums divided by 1000, MSE a mean)
METRIC_NAMES = {
    "sad_image": ("SAD, whole image", "SAD (÷ 1000)"),
    "sad": ("SAD, unknown band", "SAD (÷ 1000)"),
    "mse_image": ("MSE, whole image", "MSE"),
    "mse": ("MSE, unknown band", "MSE"),
    "gradient": ("Gradient, unknown band", "Gradient (÷ 1000)"),
    "connectivity": ("Connectivity, DIM rule", "Connectivity (÷ 1000)"),
    "conn_disconnect": ("Connectivity, empty = disconnected", "Connectivity (÷ 1000)"),
    "mad": ("mean |Δα|, whole image", "mean |Δα|"),
}
_MINUS = "\u2212"


def metric_axis_label(metric: str) -> str:
    """The axis label of a grid metric, with its unit (``"sad_image"`` -> ``"SAD (÷ 1000)"``)."""
    return METRIC_NAMES.get(metric, (metric, metric))[1]


def _ev_tick(c, prefix: str = "") -> str:
    """``"clean"`` or the EV with a typographic minus (``"EV −3"``)."""
    return CLEAN if c == CLEAN else prefix + f"{c:g}".replace("-", _MINUS)


def _by_row(means: Mapping) -> dict:
    out: dict[str, list] = {}
    for k in means:
        out.setdefault(k.partition("/s")[0], []).append(k)
    return out


def _robust_top(thick: Sequence[np.ndarray], drawn: Sequence[np.ndarray], clip: float | None) -> float | None:
    """The top of a panel's y axis when a few points would squash the rest: ``clip`` times the 90th
    percentile of the mean lines' points, if any drawn point lies above it; else None (matplotlib's
    own limits)."""
    ref = np.concatenate([np.ravel(v) for v in thick]) if thick else np.zeros(0)
    ref = ref[np.isfinite(ref)]
    if clip is None or ref.size == 0:
        return None
    top = clip * float(np.percentile(ref, 90))
    highest = max(float(np.nanmax(v)) if np.isfinite(v).any() else -np.inf for v in drawn)
    return top if top > 0 and highest > top else None


def plot_grid(records: Sequence[dict], metrics: Sequence[str] = ("sad_image",), rows: Sequence[str] | None = None,
              title: str = "", clip: float | None = 3.0):
    """Mean error per exposure (x: clean, EV 0, -2 ... -7) for each row; several training seeds of a
    row are drawn thin, their mean thick. One panel per metric, titled in words and labelled with its
    unit (:data:`METRIC_NAMES`); the y axis starts (just below) 0 for errors that cannot be negative. When a
    few points rise above ``clip`` times the 90th percentile of the mean lines' points (one diverged
    seed, say), the axis stops there so that they do not squash the rest; each cut point of a mean
    line has its value written at the edge (``clip=None``: never cut). Four panels or more wrap
    into rows of two, so that each stays readable on a page. Returns the figure."""
    import matplotlib.pyplot as plt

    ncols = len(metrics) if len(metrics) <= 3 else 2
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.6 * ncols, 4.0 * nrows), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        fig.delaxes(ax)
    for ax, metric in zip(axes.flat, metrics):
        means = grid_means(records, metric)
        groups = _by_row(means)
        conds = list(next(iter(means.values())))
        x = np.arange(len(conds))
        drawn, thick = [], []
        for i, (row, keys) in enumerate((r, groups[r]) for r in (rows or groups) if r in groups):
            colour = _PALETTE[i % len(_PALETTE)]
            vals = np.array([[means[k][c] for c in conds] for k in keys], float)
            if len(keys) > 1:
                for v in vals:
                    ax.plot(x, v, color=colour, lw=0.7, alpha=0.5)
                drawn.extend(vals)
            ax.plot(x, vals.mean(0), "o-", color=colour, lw=2, ms=4,
                    label=row_label(row) + (f" (mean of {len(keys)} seeds)" if len(keys) > 1 else ""))
            drawn.append(vals.mean(0))
            thick.append((vals.mean(0), colour))
        _set_grid_limits(ax, drawn, thick, x, _robust_top([v for v, _ in thick], drawn, clip))
        ax.set_xticks(x, [_ev_tick(c) for c in conds])
        ax.set_xlabel("exposure (EV) through the simulator; clean = no simulation")
        name, unit = METRIC_NAMES.get(metric, (metric, metric))
        ax.set_ylabel(unit)
        ax.set_title(f"{name} (lower is better)", fontsize=11)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return fig


def _set_grid_limits(ax, drawn, thick, x, top) -> None:
    """y limits of a :func:`plot_grid` panel: from just below 0 for non-negative errors (a line at
    0 stays visible), cut at ``top`` with the cut values of the mean lines written at the edge."""
    values = np.concatenate([np.ravel(v) for v in drawn]) if drawn else np.zeros(1)
    hi = ax.get_ylim()[1] if top is None else top
    lo = -0.03 * hi if np.nanmin(values) >= 0 and hi > 0 else ax.get_ylim()[0]
    ax.set_ylim(lo, hi)
    if top is None:
        return
    for v, colour in thick:
        for xi, vi in zip(x, v):
            if vi > top:
                ax.annotate(f"↑{vi:.3g}", (xi, top), xytext=(0, -2), textcoords="offset points", ha="center",
                            va="top", fontsize=7, color=colour, annotation_clip=False,
                            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})


def plot_changes(changes: Mapping[str, Mapping], title: str = "", limit: float = 150.0):
    """Relative change (%) per condition with 95 % intervals, one series per comparison
    (``{label: grid_change result}``); the zero line is the original. The y axis stops at
    ``limit`` % so that one wide interval does not squash the others: a bar or whisker that goes
    beyond it is cut at the edge and its value written there. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    labels = list(changes)
    conds = [c for c in next(iter(changes.values())) if c != "pooled"]
    x = np.arange(len(conds))
    w = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        ch = changes[label]
        v = np.array([ch[c]["change_pct"] for c in conds])
        lo = np.array([ch[c]["lo"] for c in conds])
        hi = np.array([ch[c]["hi"] for c in conds])
        xs = x + (i - (len(labels) - 1) / 2) * w
        ax.bar(xs, v, w, yerr=[v - lo, hi - v], capsize=2, color=_PALETTE[(i + 1) % len(_PALETTE)], label=label)
        for xi, top in zip(xs, np.maximum(v, hi)):
            if top > limit:
                ax.annotate(f"↑{top:+.0f} %", (xi, limit), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7, annotation_clip=False)
    ax.set_ylim(-100 - 0.05 * (limit + 100), limit)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, [_ev_tick(c, "EV ") for c in conds])
    ax.set_xlabel("exposure (EV) through the simulator; clean = no simulation")
    ax.set_ylabel("change of the mean error\nvs the original (%; below 0: better)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or "relative change of the mean error (95 % intervals: images with their exposures, and seeds, resampled)", fontsize=10, pad=12)
    fig.tight_layout()
    return fig


def plot_examples(matters: Mapping[str, Callable], item: dict, evs: Sequence[float], seed: int = 0,
                  reference: str = "original", title: str = ""):
    """One test item at several exposures: the input (brightened for display), then each row's matte
    and its error map against the target (true alpha, or ``reference``'s matte of the clean image).
    An entry of ``evs`` is ``CLEAN``, an EV (the raw frame, :func:`~lowlight.evaluation.darken`) or
    ``(ev, render, label)`` for another rendering (e.g. ``(-5.0, E.phone, "phone")``). The error
    maps share one colour bar (|alpha - target|, 0 to 1); their titles give SAD (/1000) over the
    whole image and in the trimap's unknown band. Returns the figure."""
    import matplotlib.pyplot as plt

    from ..data import trimap_from_alpha
    from . import brighten

    img = item["image"]
    has_alpha = item.get("alpha") is not None
    gt = np.asarray(item["alpha"], np.uint8) if has_alpha else quantize_alpha(matters[reference](img))
    tri = item.get("trimap")
    tri = np.asarray(tri, np.uint8) if tri is not None else trimap_from_alpha(gt)
    rows = list(matters)
    width = 1.9 * (1 + 2 * len(rows))
    fig, axes = plt.subplots(len(evs), 1 + 2 * len(rows), figsize=(width + 0.8, 2.0 * len(evs)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    shown_err = None
    for i, cond in enumerate(evs):
        ev, render, how = cond if isinstance(cond, tuple) else (cond, darken, "")
        x = img if ev == CLEAN else render(img, ev, seed, item["name"])
        shown, gain = brighten(x, 0.4, max_gain=60.0)
        axes[i, 0].imshow(shown)
        axes[i, 0].set_title(("clean" if ev == CLEAN else _ev_tick(ev, "EV ")) + (f", {how}" if how else "")
                             + (f"\n(shown ×{gain:.0f} brighter)" if gain > 1.5 else ""), fontsize=7)
        for j, row in enumerate(rows):
            pred = quantize_alpha(matters[row](x))
            m = all_metrics(pred, gt, tri)
            sad_img = np.abs(pred.astype(np.float64) - gt).sum() / 255.0 / 1000.0
            axes[i, 1 + 2 * j].imshow(pred, cmap="gray", vmin=0, vmax=255)
            axes[i, 1 + 2 * j].set_title(f"{short_label(row)}: matte", fontsize=7)
            err = np.abs(pred.astype(np.int16) - gt.astype(np.int16)) / 255.0
            shown_err = axes[i, 2 + 2 * j].imshow(err, cmap="magma", vmin=0, vmax=1)
            axes[i, 2 + 2 * j].set_title(f"|error|, SAD (÷ 1000):\n{sad_img:.2f} image, {m['sad']:.2f} band",
                                         fontsize=6)
    fig.suptitle(title or item["name"], fontsize=10)
    inch = 1.0 / (width + 0.8)                        # the right 0.8 inch holds the colour bar
    fig.tight_layout(rect=(0, 0, width * inch, 1))
    cax = fig.add_axes((width * inch + 0.1 * inch, 0.2, 0.12 * inch, 0.6))
    target = "true α" if has_alpha else f"{short_label(reference)}'s clean α".replace("\n", " ")
    fig.colorbar(shown_err, cax=cax).set_label(f"|error| = |α − {target}|\n0: exact, 1: opposite", fontsize=7)
    cax.tick_params(labelsize=7)
    return fig


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
    ax.set_xlabel("mean Rec. 709 luminance of the input (0 to 1, log scale)")
    ax.legend(fontsize=7, loc="center right")
    ax.set_title("where the switch cuts", fontsize=10)
    ax = axes[1]
    c = np.asarray(sw["selection"]["candidates"])
    e = np.asarray(sw["selection"]["errors"])
    ax.step(np.maximum(c, 1e-4), e, where="mid", color="#35608d")
    ax.axvline(sw["threshold"], color="k", ls="--", lw=1)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("threshold: mean luminance (log scale)")
    ax.set_ylabel("mean SAD on validation,\nunknown band (÷ 1000)")
    ax.set_title("choosing the threshold on the validation split", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
