"""The exposure / noise explorer of notebook 01 (ipywidgets).

:func:`render` draws one state of the explorer as a matplotlib figure: the normal-light
photo and its simulated low-light version side by side, their luminance histograms, and
noise statistics measured against the noise-free rendering of the same exposure.
:func:`explorer` wraps it in sliders. The callback is a plain function
(:func:`explorer_callback`), so tests can call it without a browser, and notebooks
call :func:`render` once statically so papermill and nbval see a figure too.
"""
from __future__ import annotations

import numpy as np

from .. import simulate as sim
from ..color import luminance

MODELS = ("physical", "article")


def default_image(size: int = 256) -> np.ndarray:
    """scikit-image's astronaut (a real photo shipped with the package), resized."""
    import cv2
    from skimage import data

    img = data.astronaut()
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def _stats(low: np.ndarray, clean: np.ndarray) -> dict:
    y_low = luminance(low) * 255
    y_clean = luminance(clean) * 255
    noise = low.astype(np.float32) - clean.astype(np.float32)
    signal = float(y_clean.mean())
    std = float(noise.std())
    return {"mean_luma_dn": float(y_low.mean()), "clean_luma_dn": signal,
            "noise_std_dn": std, "snr": signal / std if std > 0 else float("inf")}


def simulate_pair(image: np.ndarray, model: str = "physical", params: sim.SimParams | None = None,
                  gamma: float = 0.4, scale: float = 0.3, seed: int = 0):
    """``(low, clean)``: the simulated low-light image and its noise-free counterpart."""
    if model not in MODELS:
        raise ValueError(f"model: expected one of {MODELS}, got {model!r}")
    if model == "physical":
        params = params or sim.SimParams()
        low = sim.simulate(image, params, rng=seed)
        clean = sim.simulate(image, params.replace(shot_noise="none", read_noise=0.0), rng=seed)
    else:
        low = sim.article_low_light(image, gamma=gamma, scale=scale, rng=seed)
        # the formula with its Poisson sample replaced by the sample's mean
        x = image[..., :3].astype(np.float32) / 255.0
        dark = x ** (1.0 / gamma) * scale
        clean = (np.clip(dark + 0.05 * dark, 0, 1) * 255).astype(np.uint8)
    return low, clean


def render(image: np.ndarray | None = None, model: str = "physical", params: sim.SimParams | None = None,
           gamma: float = 0.4, scale: float = 0.3, seed: int = 0, brighten: bool = True):
    """One state of the explorer as a figure (returns ``(figure, stats)``)."""
    import matplotlib.pyplot as plt

    image = default_image() if image is None else image
    low, clean = simulate_pair(image, model, params, gamma, scale, seed)
    st = _stats(low, clean)
    fig, axes = plt.subplots(1, 4 if brighten else 3, figsize=(13 if brighten else 10, 3.3))
    axes[0].imshow(image)
    axes[0].set_title("normal light")
    axes[1].imshow(low)
    title = f"EV {params.ev:+.1f}" if model == "physical" and params else f"article: gamma {gamma}, scale {scale}"
    axes[1].set_title(f"simulated ({title})", fontsize=9)
    k = 2
    if brighten:
        # stretch so the noise becomes visible (what a phone's night mode would have to undo)
        from . import brighten as _brighten

        shown, gain = _brighten(low, 128 / 255)
        axes[2].imshow(shown)
        axes[2].set_title(f"simulated x{gain:.1f} (to see the noise)", fontsize=9)
        k = 3
    for ax in axes[:k]:
        ax.axis("off")
    h = axes[k]
    bins = np.arange(0, 257, 4)
    h.hist((luminance(image) * 255).ravel(), bins=bins, alpha=0.5, label="normal", density=True)
    h.hist((luminance(low) * 255).ravel(), bins=bins, alpha=0.6, label="low light", density=True)
    h.set_yscale("log")
    h.set_xlabel("luma (DN)")
    h.legend(fontsize=8)
    h.set_title(f"mean {st['mean_luma_dn']:.1f} DN, noise std {st['noise_std_dn']:.2f} DN, SNR {st['snr']:.1f}", fontsize=9)
    fig.tight_layout()
    return fig, st


def explorer_callback(image, ev: float, full_well: float, read_noise: float, cast_b: float,
                      model: str = "physical", gamma: float = 0.4, seed: int = 0):
    """The slider callback as a plain function: builds the parameters and renders."""
    params = sim.SimParams(exposure=float(2.0 ** ev), full_well=float(full_well), read_noise=float(read_noise),
                           cast=(1.0, 0.5 * (1.0 + cast_b), float(cast_b)))
    return render(image, model=model, params=params, gamma=gamma, seed=seed)


def explorer(image: np.ndarray | None = None, seed: int = 0):
    """Sliders for exposure (EV), shot noise (full well), read noise and colour cast, plus the
    article's formula with its gamma. Returns the ``ipywidgets.interactive`` (its first child
    is the EV slider)."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    image = default_image() if image is None else image
    d = sim.SimParams()
    style = {"description_width": "150px"}
    layout = W.Layout(width="520px")

    def update(ev, full_well, read_noise, cast_b, model, gamma):
        fig, _ = explorer_callback(image, ev, full_well, read_noise, cast_b, model, gamma, seed)
        display(fig)
        plt.close(fig)

    return W.interactive(
        update,
        ev=W.FloatSlider(value=round(d.ev, 1), min=-8.0, max=0.0, step=0.1, description="exposure (EV)",
                         continuous_update=False, style=style, layout=layout),
        full_well=W.FloatLogSlider(value=d.full_well, base=2, min=7, max=15, step=0.25,
                                   description="full well (e-)", continuous_update=False, style=style, layout=layout),
        read_noise=W.FloatSlider(value=d.read_noise, min=0.0, max=12.0, step=0.5, description="read noise (e-)",
                                 continuous_update=False, style=style, layout=layout),
        cast_b=W.FloatSlider(value=d.cast[2], min=0.5, max=1.1, step=0.05, description="blue gain (cast)",
                             continuous_update=False, style=style, layout=layout),
        model=W.ToggleButtons(options=list(MODELS), value="physical", description="model", style=style),
        gamma=W.FloatSlider(value=0.4, min=0.2, max=1.0, step=0.05, description="article gamma",
                            continuous_update=False, style=style, layout=layout),
    )
