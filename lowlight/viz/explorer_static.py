"""The explorer's static figure (``01_explorer_static.png``), rendered again after the course has run.

Notebook 01 saves one state of the explorer (:func:`lowlight.viz.widgets.render` with the default
sensor, MODNet's mattes below) so the figure exists where no browser moves the sliders. Notebook 01
runs before notebook 06 trains the fine-tuned MODNet, so the figure it saves shows the fine-tuned
model as absent. ``python -m lowlight.reproduce`` therefore renders the same figure once more as its
final step, by running this module (``python -m lowlight.viz.explorer_static --profile NAME``) in a
child process -- the runner itself never imports matplotlib. The figure goes where the notebooks'
figures went (:func:`lowlight.config.figures_dir`, which follows ``$LOWLIGHT_FIGURES_DIR``).

:func:`save_static` is what notebook 01's cell does (same photo, parameters, name and dpi); the last
line the command prints is JSON: the figure's path, the models drawn and the fine-tuned checkpoint
(or why it is absent).
"""
from __future__ import annotations

import argparse
import json
import sys

from .. import config
from .. import simulate as sim

__all__ = ["FIGURE", "DPI", "PHOTO_SIDE", "render_static", "save_static", "main"]

#: the figure's file stem, as notebook 01 saves it (``viz.save_fig(fig, FIGURE, P, dpi=DPI)``)
FIGURE = "01_explorer_static"
DPI = 72
#: the side of notebook 01's photo (``widgets.default_image(256)``)
PHOTO_SIDE = 256


def render_static(mattes, image=None):
    """The explorer's state that notebook 01 saves: the default sensor (:class:`lowlight.simulate.SimParams`)
    on ``image`` (default: the astronaut at :data:`PHOTO_SIDE`), with ``mattes``
    (:class:`lowlight.viz.widgets.MatteModels`) in the second row. Returns ``(figure, stats)``."""
    from . import widgets

    photo = widgets.default_image(PHOTO_SIDE) if image is None else image
    return widgets.render(photo, params=sim.SimParams(), mattes=mattes, reference=mattes.reference(photo))


def save_static(profile: config.Profile) -> dict:
    """Render the figure with the models on disk now (:meth:`MatteModels.load`: the original MODNet
    and, when notebook 06 has trained it, the fine-tuned one) and save it like notebook 01 does.
    Returns ``{"figure", "models", "fine_tuned", "checkpoint", "missing"}`` (paths as
    :func:`lowlight.config.display_path` shows them)."""
    import matplotlib.pyplot as plt

    from . import save_fig, widgets

    profile = config.require_profile(profile, where="save_static")
    mattes = widgets.MatteModels.load(profile)
    fig, _ = render_static(mattes)
    try:
        path = save_fig(fig, FIGURE, profile, dpi=DPI)
    finally:
        plt.close(fig)
    return {"figure": config.display_path(path), "models": list(mattes.models), "fine_tuned": mattes.fine_tuned,
            "checkpoint": mattes.checkpoint, "missing": mattes.missing}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lowlight.viz.explorer_static", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=None, help=f"one of {', '.join(config.PROFILES)} "
                                                    "(default: $LOWLIGHT_PROFILE or quick)")
    args = ap.parse_args(argv)
    try:
        profile = config.get_profile(args.profile)
    except ValueError as exc:
        ap.error(str(exc))
    import matplotlib

    matplotlib.use("Agg")
    from ..assets import AssetError
    from ..io import CheckpointError

    config.set_threads(profile)
    try:
        drawn = save_static(profile)
    except (AssetError, CheckpointError) as exc:     # MODNet's weights, or a broken fine-tuned checkpoint
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(drawn), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
