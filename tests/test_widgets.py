"""The explorer's callback as a plain function, and the function the widget really calls.

ipywidgets catches every exception of an ``interactive`` callback (without a kernel it only logs
a warning), so setting a slider's value and calling ``w.update()`` can never fail a test. These
tests therefore call the widget's own callback (``w.f``) directly with the values its sliders
hold, assert on what it displays, and prove that an error in it reaches the test.
"""
import re

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch
import torch.nn as nn

from lowlight.viz import widgets


class _Bright(nn.Module):
    """A stand-in matting model: alpha = the input's mean over channels (no weights to load)."""

    def forward(self, x):
        return x.mean(1, keepdim=True)


class _Zero(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x[:, :1])


@pytest.fixture(scope="module")
def photo():
    return widgets.default_image(64)


@pytest.fixture
def shown(monkeypatch):
    """Everything the widget's callback passes to IPython's ``display`` (patched before the widget
    is built: the callback binds ``display`` when :func:`widgets.explorer` runs)."""
    import IPython.display

    out = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: out.extend(objs))
    return out


def _values(w) -> dict:
    """The keyword arguments the widget passes to its callback: one per control, as set."""
    return {c._kwarg: c.get_interact_value() for c in w.kwargs_widgets}


def _mean_luma(fig) -> float:
    """The mean low-light luma (DN) printed in the histogram panel's title."""
    m = re.match(r"mean ([0-9.]+) DN", fig.axes[-1].get_title())
    assert m, fig.axes[-1].get_title()
    return float(m.group(1))


def test_callback_renders_and_stats_follow_exposure(photo):
    import matplotlib.pyplot as plt

    fig1, dark = widgets.explorer_callback(photo, ev=-6.0, full_well=4000, read_noise=3, cast_b=0.85)
    fig2, brighter = widgets.explorer_callback(photo, ev=-2.0, full_well=4000, read_noise=3, cast_b=0.85)
    assert len(fig1.axes) == 4
    assert brighter["mean_luma_dn"] > 3 * dark["mean_luma_dn"]
    assert brighter["snr"] > dark["snr"]
    assert _mean_luma(fig1) == pytest.approx(dark["mean_luma_dn"], abs=0.06)
    plt.close("all")


def test_article_mode_has_tiny_noise(photo):
    import matplotlib.pyplot as plt

    _, st = widgets.explorer_callback(photo, ev=-5, full_well=4000, read_noise=3, cast_b=1.0, model="article")
    _, phys = widgets.explorer_callback(photo, ev=-5, full_well=4000, read_noise=3, cast_b=1.0)
    assert st["noise_std_dn"] < 0.5 < phys["noise_std_dn"]
    plt.close("all")


def test_bad_model_named(photo):
    with pytest.raises(ValueError, match="model"):
        widgets.simulate_pair(photo, model="magic")


def test_the_widgets_callback_follows_its_sliders(shown):
    """Call the function the widget runs, with the values its sliders hold, before and after
    moving the EV slider as a browser would; the displayed figure must follow."""
    w = widgets.explorer(widgets.default_image(48))
    slider = w.children[0]
    assert slider.description.startswith("exposure") and slider._kwarg == "ev"
    assert set(_values(w)) == {"ev", "full_well", "read_noise", "cast_b", "model", "gamma",
                               "gain", "denoise", "jpeg_quality"}
    shown.clear()                                    # building the widget ran the callback once

    w.f(**_values(w))                                # the default exposure
    assert len(shown) == 1 and len(shown[0].axes) == 4
    assert f"EV {slider.value:+.1f}" in shown[0].axes[1].get_title()
    dark = _mean_luma(shown[0])

    slider.value = -1.0                              # what moving the slider does (ipywidgets re-runs
    assert _values(w)["ev"] == -1.0                  # the callback itself, hiding any error)
    shown.clear()
    w.f(**_values(w))
    assert len(shown) == 1 and "EV -1.0" in shown[0].axes[1].get_title()
    assert _mean_luma(shown[0]) > 2 * dark           # brighter exposure, brighter simulated image

    shown.clear()
    w.f(**{**_values(w), "model": "article", "gamma": 0.5})   # the toggle and the article's gamma
    assert len(shown) == 1 and "article: gamma 0.5" in shown[0].axes[1].get_title()


@pytest.mark.parametrize("target", ["explorer_views", "explorer_callback"])
def test_an_error_in_the_callback_reaches_the_test(shown, monkeypatch, target):
    """The call path above can fail: a callback that raises propagates through ``w.f``, while the
    same error through ipywidgets' own ``update`` (what setting a slider triggers) is swallowed."""
    w = widgets.explorer(widgets.default_image(48))

    def broken(*args, **kwargs):
        raise RuntimeError("render failed")

    monkeypatch.setattr(widgets, target, broken)
    with pytest.raises(RuntimeError, match="render failed"):
        w.f(**_values(w))
    w.children[0].value = -3.0            # ipywidgets runs the callback and hides the error
    w.update()
    assert w.children[0].value == -3.0


def test_the_matte_panel_follows_the_sliders(shown):
    """With matting models the widget shows a second figure: the reference matte and each
    model's matte of the simulated image (stub models, so the numbers are known)."""
    img = widgets.default_image(48)
    mattes = widgets.MatteModels({widgets.ORIGINAL: _Bright(), widgets.FINE_TUNED: _Zero()}, max_side=64)
    assert mattes.fine_tuned and mattes.title() == "MODNet's matte of the simulated image"
    w = widgets.explorer(img, mattes=mattes)
    shown.clear()
    w.f(**{**_values(w), "ev": -6.0})
    assert len(shown) == 2                                       # the simulation, then the matte panel
    panel = shown[1]
    titles = [ax.get_title() for ax in panel.axes if ax.get_visible()]
    assert titles[0].startswith("original MODNet, normal light") and len(titles) == 3
    assert "fine-tuned MODNet, simulated image" in titles[2]
    dark = float(re.search(r"mean \|diff\| to reference ([0-9.]+)", titles[1]).group(1))
    shown.clear()
    w.f(**{**_values(w), "ev": -0.5})
    bright = float(re.search(r"mean \|diff\| to reference ([0-9.]+)", shown[1].axes[1].get_title()).group(1))
    assert bright < dark                # a brighter simulation is closer to the normal-light matte
    # the same numbers from the plain function
    figs, st = widgets.explorer_views(img, -6.0, 4000, 3, 0.85, mattes=mattes, reference=mattes.reference(img))
    assert len(figs) == 2 and set(st["mattes"]) == {widgets.ORIGINAL, widgets.FINE_TUNED}
    assert st["matte_mean_fine_tuned"] == 0.0 and st["matte_mean_original"] > 0
    assert st["mattes"][widgets.ORIGINAL].shape == (48, 48)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_an_absent_fine_tuned_model_is_said(shown):
    mattes = widgets.MatteModels({widgets.ORIGINAL: _Bright()}, missing="fine-tuned MODNet absent: no x.pt")
    assert "absent" in mattes.title() and not mattes.fine_tuned
    w = widgets.explorer(widgets.default_image(32), mattes=mattes)
    shown.clear()
    w.f(**_values(w))
    titles = [ax.get_title() for ax in shown[1].axes if ax.get_visible()]
    assert titles[-1] == "fine-tuned MODNet: absent"
    assert "no x.pt" in shown[1].get_suptitle()


def test_default_image_is_the_astronaut():
    """The explorer's photo is scikit-image's astronaut: it matches the astronaut downscaled by
    another resizer (skimage's anti-aliased resize) closely, and another photo (camera) not at all."""
    from skimage import data, transform

    img = widgets.default_image(40)
    assert img.shape == (40, 40, 3) and img.dtype == np.uint8
    ref = transform.resize(data.astronaut(), (40, 40), anti_aliasing=True) * 255
    assert np.abs(img.astype(float) - ref).mean() < 6.0
    assert np.corrcoef(img.ravel(), ref.ravel())[0, 1] > 0.97
    other = transform.resize(data.camera(), (40, 40), anti_aliasing=True)[..., None].repeat(3, 2) * 255
    assert np.corrcoef(img.ravel(), other.ravel())[0, 1] < 0.5


# --------------------------------------------------------------------------- the phone's sliders
def _slider(w, kwarg):
    return next(c for c in w.kwargs_widgets if c._kwarg == kwarg)


def test_the_phone_sliders_drive_the_third_panel(shown):
    """Gain, denoise and JPEG quality sliders: the widget's own callback (``w.f``) shows the phone's
    photo in the third panel, and each slider changes what it should."""
    import matplotlib.pyplot as plt

    w = widgets.explorer(widgets.default_image(64))
    gain, denoise, quality = _slider(w, "gain"), _slider(w, "denoise"), _slider(w, "jpeg_quality")
    assert gain.value == 0.0 and gain.label == "auto"                      # auto-exposure by default
    assert denoise.value == widgets.sim.CameraParams().denoise_strength and quality.value == 85
    shown.clear()
    w.f(**_values(w))
    assert len(shown) == 1 and len(shown[0].axes) == 4
    title = shown[0].axes[2].get_title()
    assert title.startswith("as a phone delivers it: auto gain x") and "JPEG 85" in title

    gain.value = 4.0                                                       # a fixed, smaller gain: darker
    shown.clear()
    w.f(**_values(w))
    assert "as a phone delivers it: gain x4.0" in shown[0].axes[2].get_title()
    plt.close("all")


def test_the_phone_callback_follows_gain_denoise_and_quality(photo):
    import matplotlib.pyplot as plt

    def phone(**kw):
        fig, st = widgets.explorer_callback(photo, -5.0, 4000, 3, 0.85, **{"gain": 0.0, "denoise": 0.0,
                                                                          "jpeg_quality": 95, **kw})
        plt.close(fig)
        return st

    auto, low, high = phone(), phone(gain=2.0), phone(gain=64.0)
    assert auto["phone_auto"] and not low["phone_auto"] and low["phone_gain"] == 2.0
    assert low["phone_mean_luma_dn"] < auto["phone_mean_luma_dn"] < high["phone_mean_luma_dn"]
    assert phone(denoise=30.0)["phone_detail_dn"] < 0.8 * auto["phone_detail_dn"]     # NL-means smooths
    assert phone(jpeg_quality=10)["phone_jpeg_error_dn"] > 1.5 * auto["phone_jpeg_error_dn"]
    # the sensor part is untouched by the phone's settings, and the article's model has no phone panel
    assert phone(gain=64.0)["mean_luma_dn"] == auto["mean_luma_dn"]
    fig, st = widgets.explorer_callback(photo, -5.0, 4000, 3, 0.85, model="article", gain=8.0)
    assert "phone_gain" not in st and "to see the noise" in fig.axes[2].get_title()
    plt.close("all")


def test_phone_view_is_the_camera_pipeline(photo):
    img, st = widgets.phone_view(photo, widgets.sim.SimParams(), seed=3, gain=8.0, denoise_strength=5.0,
                                 jpeg_quality=70)
    cam = widgets.sim.CameraParams(gain=8.0, denoise_strength=5.0, jpeg_quality=70)
    assert np.array_equal(img, widgets.sim.camera_pipeline(photo, cam, rng=3)) and st["phone_gain"] == 8.0


def test_the_runners_explorer_figure_is_notebook_01s():
    """``lowlight.viz.explorer_static`` (the runner's final step) re-renders what notebook 01's cell
    saves: same photo, parameters, figure name and dpi -- so the committed file is the notebook's figure."""
    import json

    from lowlight import config, final_steps
    from lowlight.viz import explorer_static as es

    book = json.loads((config.NOTEBOOKS_DIR / final_steps.EXPLORER_NOTEBOOK).read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in book["cells"] if c["cell_type"] == "code")
    assert f"photo = widgets.default_image({es.PHOTO_SIDE})" in code
    assert "widgets.render(photo, params=sim.SimParams(), mattes=mattes, reference=reference)" in code
    assert f'viz.save_fig(fig, "{es.FIGURE}", P, dpi={es.DPI})' in code
    assert "reference = mattes.reference(photo)" in code and "mattes = widgets.MatteModels.load(P)" in code
