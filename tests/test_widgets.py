"""The explorer's callback as a plain function and inside ipywidgets (callbacks hide their
exceptions from papermill, so they are tested here directly)."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from lowlight import simulate as sim, widgets


@pytest.fixture(scope="module")
def photo():
    return widgets.default_image(64)


def test_callback_renders_and_stats_follow_exposure(photo):
    import matplotlib.pyplot as plt

    fig1, dark = widgets.explorer_callback(photo, ev=-6.0, full_well=4000, read_noise=3, cast_b=0.85)
    fig2, brighter = widgets.explorer_callback(photo, ev=-2.0, full_well=4000, read_noise=3, cast_b=0.85)
    assert len(fig1.axes) == 4
    assert brighter["mean_luma_dn"] > 3 * dark["mean_luma_dn"]
    assert brighter["snr"] > dark["snr"]
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


def test_slider_updates_the_output():
    """Set the first slider's value as a browser would; the callback must run without error."""
    w = widgets.explorer(widgets.default_image(48))
    slider = w.children[0]
    assert slider.description.startswith("exposure")
    outputs = []
    w.out.observe(lambda change: outputs.append(change), names="outputs")
    slider.value = -2.5
    w.update()  # interactive runs its callback synchronously
    assert w.result is None  # update() returns None
    assert slider.value == -2.5
    # no traceback captured in the Output widget
    assert not any(o.get("output_type") == "error" for o in w.out.outputs)
