"""The exposure / noise explorer of notebook 01 (ipywidgets), with MODNet's matte.

:func:`render` draws one state of the explorer as a matplotlib figure: the normal-light
photo and its simulated low-light version side by side, their luminance histograms, and
noise statistics measured against the noise-free rendering of the same exposure; given
:class:`MatteModels`, a second row shows what MODNet makes of the simulated image -- the
original model and, once notebook 06 has trained it, the fine-tuned one.

:func:`explorer` wraps it in sliders. The callback is a plain function
(:func:`explorer_views`, built on :func:`explorer_callback`), so tests can call it without a
browser; it returns two figures, the simulation and the matte panel, which the widget shows as
two images (the browser test watches the second). Notebooks call :func:`render` once
statically so papermill and nbval see a figure too.

Three more sliders drive the phone's processing (:func:`lowlight.simulate.camera_pipeline`): the
**gain** (``auto`` = auto-exposure), the **denoise** strength (NL-means ``h``, DN; 0 = off) and the
**JPEG quality**. With them the third panel shows the photo as a phone delivers it -- the same
noise as the simulated panel, amplified by the gain, then denoised, sharpened and compressed --
instead of a plain display stretch (:func:`phone_view`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import config
from .. import simulate as sim
from ..color import luminance

__all__ = ["MODELS", "MATTE_SIDE", "GAIN_CHOICES", "MatteModels", "default_image", "simulate_pair", "phone_view",
           "render", "render_mattes", "explorer_callback", "explorer_views", "explorer"]

MODELS = ("physical", "article")
#: the long side MODNet mattes at in the explorer: interactive on a CPU (~0.1-0.5 s per matte)
MATTE_SIDE = 256
#: the gain slider's stops: (label, value); 0 = auto-exposure
GAIN_CHOICES = (("auto", 0.0),) + tuple((f"{2 ** k}x", float(2 ** k)) for k in range(8))
ORIGINAL = "original MODNet"
FINE_TUNED = "fine-tuned MODNet"


def default_image(size: int = 256) -> np.ndarray:
    """scikit-image's astronaut (a real photo shipped with the package), resized."""
    import cv2
    from skimage import data

    img = data.astronaut()
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- the models
@dataclass
class MatteModels:
    """The matting models the explorer runs on the simulated image, built once.

    ``models`` maps a label to a network (display order); ``missing`` says why the fine-tuned
    model is not there (``None`` when it is). Calling the object mattes a uint8 RGB image with
    every model (:func:`lowlight.inference.matte_image` at ``max_side``) and returns
    ``{label: uint8 H x W matte}``.
    """

    models: dict = field(default_factory=dict)
    missing: str | None = None
    max_side: int = MATTE_SIDE
    checkpoint: str | None = None   # where the fine-tuned weights came from

    @classmethod
    def load(cls, profile: config.Profile, fine_tuned: bool = True, max_side: int = MATTE_SIDE) -> "MatteModels":
        """The original MODNet (real weights, :func:`lowlight.models.create_model`) and, when
        ``runs/<profile>/train/modnet-staged/seed0/stage3/last.pt`` exists (notebook 06), the
        fine-tuned one (:func:`lowlight.models.model_from_checkpoint`)."""
        from ..models import create_model, model_from_checkpoint

        models = {ORIGINAL: create_model("modnet").eval()}
        missing = shown = None
        if fine_tuned:
            ckpt = config.RunLayout.of(profile).checkpoint("modnet", "staged", 0, "stage3")
            try:
                shown = str(ckpt.relative_to(config.ROOT))
            except ValueError:
                shown = str(ckpt)
            if ckpt.is_file():
                models[FINE_TUNED] = model_from_checkpoint(ckpt)
            else:
                missing, shown = f"fine-tuned MODNet absent: no {shown} (notebook 06 trains it)", None
        return cls(models, missing, max_side, shown)

    def title(self) -> str:
        """What the matte panel shows, and where the fine-tuned model is (or that it is absent)."""
        head = "MODNet's matte of the simulated image"
        if self.missing:
            return f"{head}\n{self.missing}"
        if self.checkpoint:
            return f"{head}\nfine-tuned weights: {self.checkpoint}"
        return head

    @property
    def fine_tuned(self) -> bool:
        return FINE_TUNED in self.models

    def __call__(self, img: np.ndarray) -> dict:
        from ..inference import matte_image

        return {label: matte_image(m, img, max_side=self.max_side) for label, m in self.models.items()}

    def reference(self, image: np.ndarray) -> np.ndarray:
        """The original model's matte of the normal-light image: what the dark mattes are compared with."""
        from ..inference import matte_image

        return matte_image(self.models[ORIGINAL], image, max_side=self.max_side)


# --------------------------------------------------------------------------- computation
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


def phone_view(image: np.ndarray, params: sim.SimParams | None = None, seed: int = 0, gain: float | None = None,
               denoise_strength: float | None = None, jpeg_quality: int | None = None):
    """The photo as a phone delivers it (:func:`lowlight.simulate.camera_pipeline`) with the
    explorer's settings: ``gain`` (``None`` or 0 = auto-exposure), NL-means ``denoise_strength``
    (DN, 0 = off; ``None`` = the camera's default) and ``jpeg_quality`` (``None`` = the default).
    Same noise as ``simulate(image, params, rng=seed)``. Returns ``(image, stats)``: ``phone_gain``,
    ``phone_auto`` (auto-exposure or not), ``phone_mean_luma_dn``, ``phone_detail_dn`` (std of the
    luma's high-pass, DN: grain plus fine detail, lowered by the denoiser) and
    ``phone_jpeg_error_dn`` (mean |JPEG - its input|, DN)."""
    import cv2

    params = params or sim.SimParams()
    changes = {"sensor": params, "gain": float(gain) if gain else None}
    if denoise_strength is not None:
        changes["denoise_strength"] = float(denoise_strength)
    if jpeg_quality is not None:
        changes["jpeg_quality"] = int(jpeg_quality)
    cam = sim.CameraParams(**changes)
    out, stages = sim.camera_pipeline(image[..., :3], cam, rng=seed, return_stages=True)
    y = luminance(out) * 255
    detail = y - cv2.GaussianBlur(y, (0, 0), 1.0)
    jpeg_err = np.abs(out.astype(np.float32) - stages["sharpened"].astype(np.float32)).mean()
    return out, {"phone_gain": stages["gain"], "phone_auto": cam.gain is None, "phone_mean_luma_dn": float(y.mean()),
                 "phone_detail_dn": float(detail.std()), "phone_jpeg_error_dn": float(jpeg_err),
                 "phone_denoise": cam.denoise_strength, "phone_jpeg_quality": cam.jpeg_quality}


def _matte_stats(low: np.ndarray, mattes: MatteModels, reference: np.ndarray | None) -> dict:
    alphas = mattes(low)
    st = {"mattes": alphas}
    for label, a in alphas.items():
        key = "original" if label == ORIGINAL else "fine_tuned"
        st[f"matte_mean_{key}"] = float(a.mean()) / 255
        if reference is not None:
            st[f"matte_diff_{key}"] = float(np.abs(a.astype(np.float32) - reference).mean()) / 255
    return st


# --------------------------------------------------------------------------- drawing
def _draw_simulation(axes, image, low, st, model, params, gamma, scale, brighten, phone=None):
    axes[0].imshow(image)
    axes[0].set_title("normal light", fontsize=9)
    axes[1].imshow(low)
    title = f"EV {params.ev:+.1f}" if model == "physical" and params else f"article: gamma {gamma}, scale {scale}"
    axes[1].set_title(f"simulated ({title})", fontsize=9)
    k = 2
    if phone is not None:
        # what a phone would save: gain, denoising, sharpening, JPEG
        axes[2].imshow(phone)
        how = "auto " if st["phone_auto"] else ""
        axes[2].set_title(f"as a phone delivers it: {how}gain x{st['phone_gain']:.1f},\n"
                          f"denoise {st['phone_denoise']:g} DN, JPEG {st['phone_jpeg_quality']}", fontsize=9)
        k = 3
    elif brighten:
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
    h.set_title(f"mean {st['mean_luma_dn']:.1f} DN, noise std {st['noise_std_dn']:.2f} DN, "
                f"SNR {st['snr']:.1f}", fontsize=9)


def _draw_mattes(axes, st, mattes: MatteModels, reference):
    """Panels: the reference (original, normal light), then each model on the simulated image,
    then a placeholder for an absent fine-tuned model."""
    i = 0
    if reference is not None:
        axes[i].imshow(reference, cmap="gray", vmin=0, vmax=255)
        axes[i].set_title(f"{ORIGINAL}, normal light\n(the reference)", fontsize=9)
        i += 1
    for label, a in st["mattes"].items():
        key = "original" if label == ORIGINAL else "fine_tuned"
        diff = st.get(f"matte_diff_{key}")
        extra = f"\nmean |diff| to reference {diff:.3f}" if diff is not None else ""
        axes[i].imshow(a, cmap="gray", vmin=0, vmax=255)
        axes[i].set_title(f"{label}, simulated image{extra}", fontsize=9)
        i += 1
    if mattes.missing:
        axes[i].text(0.5, 0.5, "fine-tuned MODNet absent\n\nrun notebook 06 to train it,\nthen re-run this notebook",
                     ha="center", va="center", fontsize=9, transform=axes[i].transAxes)
        axes[i].set_title("fine-tuned MODNet: absent", fontsize=9)
        axes[i].set_xticks([])
        axes[i].set_yticks([])
        i += 1
    for j, ax in enumerate(axes):
        if j >= i:
            ax.set_visible(False)
        elif not (mattes.missing and j == i - 1):
            ax.axis("off")


def _n_matte_panels(mattes: MatteModels, reference) -> int:
    return (reference is not None) + len(mattes.models) + bool(mattes.missing)


def render_mattes(st: dict, mattes: MatteModels, reference: np.ndarray | None = None):
    """The matte panel alone (the explorer's second image): ``st`` from :func:`explorer_callback`
    with ``mattes``. Returns the figure."""
    import matplotlib.pyplot as plt

    n = _n_matte_panels(mattes, reference)
    fig, axes = plt.subplots(1, n, figsize=(max(3.1 * n, 7.0), 3.6), squeeze=False, layout="constrained")
    _draw_mattes(list(axes[0]), st, mattes, reference)
    fig.suptitle(mattes.title(), fontsize=9)
    return fig


def render(image: np.ndarray | None = None, model: str = "physical", params: sim.SimParams | None = None,
           gamma: float = 0.4, scale: float = 0.3, seed: int = 0, brighten: bool = True,
           mattes: MatteModels | None = None, reference: np.ndarray | None = None):
    """One state of the explorer as one figure (returns ``(figure, stats)``). With ``mattes`` the
    figure has a second row: ``reference`` (the original model's normal-light matte, computed
    when not given) and each model's matte of the simulated image; its title says when the
    fine-tuned model is absent."""
    image = default_image() if image is None else image
    low, clean = simulate_pair(image, model, params, gamma, scale, seed)
    return _figure(image, low, clean, model, params, gamma, scale, brighten, mattes, reference)


def _figure(image, low, clean, model, params, gamma, scale, brighten, mattes=None, reference=None, phone=None,
            phone_stats=None):
    import matplotlib.pyplot as plt

    st = _stats(low, clean)
    st.update(phone_stats or {})
    brighten = brighten or phone is not None
    ncols = 4 if brighten else 3
    if mattes is None:
        fig, axes = plt.subplots(1, ncols, figsize=(13 if brighten else 10, 3.3))
        _draw_simulation(axes, image, low, st, model, params, gamma, scale, brighten, phone)
        fig.tight_layout()
        return fig, st
    if reference is None:
        reference = mattes.reference(image)
    st.update(_matte_stats(low, mattes, reference))
    n = _n_matte_panels(mattes, reference)
    fig = plt.figure(figsize=(13 if brighten else 10, 7.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.1])
    _draw_simulation(top.subplots(1, ncols), image, low, st, model, params, gamma, scale, brighten, phone)
    _draw_mattes(list(np.atleast_1d(bottom.subplots(1, max(n, 1)))), st, mattes, reference)
    bottom.suptitle(mattes.title(), fontsize=10)
    return fig, st


# --------------------------------------------------------------------------- the callback
def _params(ev: float, full_well: float, read_noise: float, cast_b: float) -> sim.SimParams:
    return sim.SimParams(exposure=float(2.0 ** ev), full_well=float(full_well), read_noise=float(read_noise),
                         cast=(1.0, 0.5 * (1.0 + cast_b), float(cast_b)))


def explorer_callback(image, ev: float, full_well: float, read_noise: float, cast_b: float,
                      model: str = "physical", gamma: float = 0.4, seed: int = 0,
                      mattes: MatteModels | None = None, reference: np.ndarray | None = None,
                      gain: float | None = None, denoise: float | None = None, jpeg_quality: int | None = None):
    """The simulation part of the slider callback as a plain function: builds the parameters and
    renders; returns ``(figure, stats)``. With ``mattes``, ``stats["mattes"]`` holds each model's
    uint8 matte of the simulated image (``stats["matte_diff_*"]``: mean |matte - reference| in
    [0, 1] when ``reference`` is given); the figure stays the simulation alone.

    ``gain`` (0 = auto-exposure), ``denoise`` (NL-means strength, DN) and ``jpeg_quality``: when any
    is given and the model is ``physical``, the third panel is the phone's photo (:func:`phone_view`)
    and ``stats`` holds its ``phone_*`` numbers; otherwise it is the display stretch."""
    params = _params(ev, full_well, read_noise, cast_b)
    low, clean = simulate_pair(image, model, params, gamma, seed=seed)
    phone = phone_st = None
    if model == "physical" and (gain is not None or denoise is not None or jpeg_quality is not None):
        phone, phone_st = phone_view(image, params, seed, gain, denoise, jpeg_quality)
    fig, st = _figure(image, low, clean, model, params, gamma, 0.3, True, phone=phone, phone_stats=phone_st)
    if mattes is not None:
        st.update(_matte_stats(low, mattes, reference))
    return fig, st


def explorer_views(image, ev: float, full_well: float, read_noise: float, cast_b: float,
                   model: str = "physical", gamma: float = 0.4, seed: int = 0,
                   mattes: MatteModels | None = None, reference: np.ndarray | None = None,
                   gain: float | None = None, denoise: float | None = None, jpeg_quality: int | None = None):
    """What the widget shows for one slider state, as a plain function: ``(figures, stats)``,
    ``figures`` = [simulation] or [simulation, matte panel] when ``mattes`` is given (the phone's
    settings as in :func:`explorer_callback`)."""
    fig, st = explorer_callback(image, ev, full_well, read_noise, cast_b, model, gamma, seed, mattes, reference,
                                gain, denoise, jpeg_quality)
    figs = [fig]
    if mattes is not None:
        figs.append(render_mattes(st, mattes, reference))
    return figs, st


def explorer(image: np.ndarray | None = None, seed: int = 0, mattes: MatteModels | None = None,
             reference: np.ndarray | None = None):
    """Sliders for exposure (EV), shot noise (full well), read noise and colour cast, plus the
    article's formula with its gamma, and the phone's gain (``auto`` = auto-exposure), denoise
    strength and JPEG quality (third panel: :func:`phone_view`); with ``mattes`` (built once, e.g. ``MatteModels.load(P)``)
    each state also shows MODNet's matte of the simulated image, next to ``reference`` (the
    original model's normal-light matte; computed once here when not given). Returns the
    ``ipywidgets.interactive`` (its first child is the EV slider)."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    image = default_image() if image is None else image
    if mattes is not None and reference is None:
        reference = mattes.reference(image)   # once, not per callback
    d = sim.SimParams()
    cam = sim.CameraParams()
    style = {"description_width": "150px"}
    layout = W.Layout(width="520px")

    def update(ev, full_well, read_noise, cast_b, model, gamma, gain, denoise, jpeg_quality):
        figs, _ = explorer_views(image, ev, full_well, read_noise, cast_b, model, gamma, seed, mattes, reference,
                                 gain, denoise, jpeg_quality)
        for fig in figs:
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
        # index, not value: value= leaves the readout label empty (ipywidgets 8.1)
        gain=W.SelectionSlider(options=list(GAIN_CHOICES), index=0, description="phone gain",
                               continuous_update=False, style=style, layout=layout),
        denoise=W.FloatSlider(value=cam.denoise_strength, min=0.0, max=30.0, step=0.5,
                              description="phone denoise (DN)", continuous_update=False, style=style, layout=layout),
        jpeg_quality=W.IntSlider(value=cam.jpeg_quality, min=5, max=100, step=5, description="phone JPEG quality",
                                 continuous_update=False, style=style, layout=layout),
    )
