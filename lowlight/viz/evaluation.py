"""Figures of the evaluation (notebook 07): error by exposure, relative changes with intervals,
visual comparisons, the brightness switch."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ..evaluation.exposure import CLEAN, darken, grid_means
from ..evaluation.protocol import quantize_alpha, row_label, short_label
from ..metrics import all_metrics

__all__ = ["plot_grid", "plot_changes", "plot_examples", "plot_switch"]

_PALETTE = ["#222222", "#35608d", "#e8a33d", "#3a9a5b", "#b5475b", "#7d5ba6", "#999999", "#5fb7c9"]


def _by_row(means: Mapping) -> dict:
    out: dict[str, list] = {}
    for k in means:
        out.setdefault(k.partition("/s")[0], []).append(k)
    return out


def plot_grid(records: Sequence[dict], metrics: Sequence[str] = ("sad_image",), rows: Sequence[str] | None = None,
              title: str = ""):
    """Mean error per exposure (x: clean, EV 0, -2 ... -7) for each row; several training seeds of a
    row are drawn thin, their mean thick. One panel per metric. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        means = grid_means(records, metric)
        groups = _by_row(means)
        conds = list(next(iter(means.values())))
        x = np.arange(len(conds))
        for i, (row, keys) in enumerate((r, groups[r]) for r in (rows or groups) if r in groups):
            colour = _PALETTE[i % len(_PALETTE)]
            vals = np.array([[means[k][c] for c in conds] for k in keys])
            if len(keys) > 1:
                for v in vals:
                    ax.plot(x, v, color=colour, lw=0.7, alpha=0.5)
            ax.plot(x, vals.mean(0), "o-", color=colour, lw=2, ms=4,
                    label=row_label(row) + (f" (mean of {len(keys)} seeds)" if len(keys) > 1 else ""))
        ax.set_xticks(x, [CLEAN if c == CLEAN else f"{c:g}" for c in conds])
        ax.set_xlabel("input: clean, then EV through the simulator")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} (lower is better)", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


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
    ax.set_xticks(x, [CLEAN if c == CLEAN else f"EV {c:g}" for c in conds])
    ax.set_ylabel("change vs the original (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or "relative change of the mean error (95 % paired-bootstrap intervals)", fontsize=10, pad=12)
    fig.tight_layout()
    return fig


def plot_examples(matters: Mapping[str, Callable], item: dict, evs: Sequence[float], seed: int = 0,
                  reference: str = "original", title: str = ""):
    """One test item at several exposures: the input (brightened for display), then each row's matte
    and its error map against the target (true alpha, or ``reference``'s matte of the clean image).
    An entry of ``evs`` is ``CLEAN``, an EV (the raw frame, :func:`~lowlight.evaluation.darken`) or
    ``(ev, render, label)`` for another rendering (e.g. ``(-5.0, E.phone, "phone")``).
    Returns the figure."""
    import matplotlib.pyplot as plt

    from ..data import trimap_from_alpha
    from . import brighten

    img = item["image"]
    gt = (np.asarray(item["alpha"], np.uint8) if item.get("alpha") is not None
          else quantize_alpha(matters[reference](img)))
    tri = item.get("trimap")
    tri = np.asarray(tri, np.uint8) if tri is not None else trimap_from_alpha(gt)
    rows = list(matters)
    fig, axes = plt.subplots(len(evs), 1 + 2 * len(rows), figsize=(1.9 * (1 + 2 * len(rows)), 2.0 * len(evs)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, cond in enumerate(evs):
        ev, render, how = cond if isinstance(cond, tuple) else (cond, darken, "")
        x = img if ev == CLEAN else render(img, ev, seed, item["name"])
        shown, gain = brighten(x, 0.4, max_gain=60.0)
        axes[i, 0].imshow(shown)
        axes[i, 0].set_title(("clean" if ev == CLEAN else f"EV {ev:g}") + (f", {how}" if how else "")
                             + (f" (x{gain:.0f} shown)" if gain > 1.5 else ""), fontsize=7)
        for j, row in enumerate(rows):
            pred = quantize_alpha(matters[row](x))
            m = all_metrics(pred, gt, tri)
            sad_img = np.abs(pred.astype(np.float64) - gt).sum() / 255.0 / 1000.0
            axes[i, 1 + 2 * j].imshow(pred, cmap="gray", vmin=0, vmax=255)
            axes[i, 1 + 2 * j].set_title(short_label(row), fontsize=7)
            err = np.abs(pred.astype(np.int16) - gt.astype(np.int16)) / 255.0
            axes[i, 2 + 2 * j].imshow(err, cmap="magma", vmin=0, vmax=1)
            axes[i, 2 + 2 * j].set_title(f"|error|: SAD {sad_img:.2f} (image)\n{m['sad']:.2f} (band)", fontsize=6)
    fig.suptitle(title or item["name"], fontsize=10)
    fig.tight_layout()
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
