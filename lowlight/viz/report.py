"""The figure of a fine-tune's report (:mod:`lowlight.adapt`): before/after mattes of held-out photos."""
from __future__ import annotations

import io
from typing import Sequence

__all__ = ["before_after_grid", "figure_png"]


def before_after_grid(examples: Sequence[dict], models: Sequence[str] = ("original", "fine-tuned"),
                      labels: dict | None = None):
    """One row per (photo, condition) of :func:`lowlight.evaluation.people.people_examples`: the
    input, then each model's matte (white = foreground), titled with the camera and exposure.
    Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    rows = [(ex["id"], panel) for ex in examples for panel in ex["panels"]]
    if not rows:
        raise ValueError("before_after_grid: no examples to draw")
    labels = labels or {}
    cols = 1 + len(models)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.6 * cols, 2.3 * len(rows)), squeeze=False)
    for r, (photo, panel) in enumerate(rows):
        cond = "daylight" if panel["camera"] == "daylight" else f"{panel['camera']} camera, EV {panel['ev']:g}"
        axes[r, 0].imshow(panel["image"])
        axes[r, 0].set_title(f"{photo}\n{cond}", fontsize=8)
        for c, name in enumerate(models, start=1):
            axes[r, c].imshow(panel["mattes"][name], cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_title(f"{labels.get(name, name)}'s matte", fontsize=8)
        for ax in axes[r]:
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def figure_png(fig, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
