"""The hand-drawn person outlines over their photos (notebook 07): a check that every outline sits
on its person, and a picture of what the evaluation counts as "person" and "not person"; and the
mattes of the original and the fine-tuned model on those photos, in daylight and through both
cameras, with the outlines over them."""
from __future__ import annotations

import numpy as np

__all__ = ["show_people_outlines", "show_people_mattes"]


def _draw_one(ax, photo, fill: bool) -> None:
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Polygon

    ax.imshow(photo.image)
    for person in photo.persons:
        small = bool(person.get("small", False))
        colour = "deepskyblue" if small else "red"
        ax.add_patch(Polygon(np.asarray(person["polygon"], float), closed=True, linewidth=1.5,
                             facecolor=to_rgba(colour, 0.25 if fill else 0.0), edgecolor=colour,
                             linestyle="--" if small else "-"))
    h, w = photo.image.shape[:2]
    n = len(photo.persons)
    ax.set_title(f"{photo.id} ({w}x{h}): {n} person{'s' if n != 1 else ''}\n{', '.join(photo.kinds)}", fontsize=8)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.axis("off")


def show_people_outlines(photos, cols: int = 2, size: float = 4.0, fill: bool = True):
    """A grid of the photos (:class:`lowlight.data.people.PeoplePhoto`) with their person outlines
    (red; dashed blue: small or ambiguous ones), and a legend below that says so. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    photos = list(photos)
    cols = max(1, min(cols, len(photos)))
    rows = (len(photos) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * 0.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, photo in zip(axes.flat, photos):
        _draw_one(ax, photo, fill)
    handles = [Line2D([], [], color="red", lw=1.5, label="person outline, drawn by hand (inside: \"person\")")]
    if any(person.get("small", False) for photo in photos for person in photo.persons):
        handles.append(Line2D([], [], color="deepskyblue", lw=1.5, ls="--", label="small or ambiguous person"))
    fig.tight_layout(rect=(0, 0.35 / fig.get_figheight(), 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    return fig


_CAMERA_SHORT = {"daylight": "daylight", "simulator": "simulator", "heldout": "held-out camera"}


def _panel_title(camera: str, ev) -> str:
    return _CAMERA_SHORT.get(camera, camera) + ("" if camera == "daylight" else f" EV {ev:g}")


def _matte_axis(ax, alpha, mask, ref, title: str) -> None:
    ax.imshow(alpha, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.contour(mask.astype(float), levels=[0.5], colors="red", linewidths=0.7)
    outside = alpha[~mask].sum() / alpha.size
    missed = 1.0 - alpha[mask].mean() if mask.any() else float("nan")
    ax.set_title(f"{title}\nSAD {np.abs(alpha - ref).sum() / 1000:.1f}  out {100 * outside:.1f}%  "
                 f"miss {100 * missed:.0f}%", fontsize=7)
    ax.axis("off")


def _mattes_caption(reference: str) -> str:
    return (f"Matte: white = person (α = 1), black = background; red: the hand-drawn person outlines.   "
            f"SAD: |α − {reference}'s daylight α| summed over the image (÷ 1000).\n"
            "out: foreground outside every outline (% of the image).   "
            "miss: share of the outlined people's area not matted (%).   Lower is better for all three.")


def show_people_mattes(examples, models=None, reference: str = "original", size: float = 1.7):
    """Mattes on real people (:func:`lowlight.evaluation.people.people_examples`): a row per photo;
    per condition (daylight, the darkest EV of each camera) the input as the model saw it, then each
    model's matte (``models``: names, default all) with the person outlines in red. Titles: SAD
    against the reference's daylight matte (/1000), foreground outside the outlines (% of the image)
    and person area missed (%), explained in a caption below the grid. Returns the figure."""
    import matplotlib.pyplot as plt

    examples = list(examples)
    models = list(models or examples[0]["panels"][0]["mattes"])
    n_panels = len(examples[0]["panels"])
    cols = n_panels * (1 + len(models))
    fig, axes = plt.subplots(len(examples), cols, figsize=(size * cols, size * 1.25 * len(examples)), squeeze=False)
    for row, ex in zip(axes, examples):
        ref = ex["panels"][0]["mattes"][reference]
        for k, panel in enumerate(ex["panels"]):
            ax = row[k * (1 + len(models))]
            ax.imshow(panel["image"])
            ax.set_title(f"{ex['id']}\n{_panel_title(panel['camera'], panel['ev'])}: input", fontsize=7)
            ax.axis("off")
            for j, m in enumerate(models):
                _matte_axis(row[k * (1 + len(models)) + 1 + j], panel["mattes"][m], ex["mask"], ref, m)
    fig.tight_layout(rect=(0, 0.3 / fig.get_figheight(), 1, 1))
    fig.text(0.5, 0.0, _mattes_caption(reference), ha="center", va="bottom", fontsize=7)
    return fig
