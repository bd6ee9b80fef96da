"""lowlight.viz.evaluation and lowlight.viz.people: the evaluation's figures explain themselves --
readable axis labels with units (no code names), a labelled colour bar on the error maps, axes cut
where one outlier would squash the rest -- and the notebooks' calls keep working. Synthetic data."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lowlight.evaluation import CLEAN, EVS, grid_change  # noqa: E402
from lowlight.viz import evaluation as V  # noqa: E402
from lowlight.viz.people import show_people_mattes, show_people_outlines  # noqa: E402

CODE_NAMES = ("sad_image", "conn_disconnect", "mse_image", "connectivity", "sad", "mad")


def _records(outlier: float = 1.0) -> list[dict]:
    """Five rows x four items over the whole grid; ``staged/s2`` is ``outlier`` times worse at EV -7."""
    rng = np.random.default_rng(0)
    recs = []
    rows = (("original", 10.0), ("staged/s0", 3.0), ("staged/s1", 3.5), ("staged/s2", 3.2), ("empty", 12.0))
    for model, base in rows:
        for item in range(4):
            for k, c in enumerate([CLEAN, *EVS]):
                v = base * (1 + 0.2 * k) * (1 + 0.05 * rng.standard_normal())
                if model == "staged/s2" and c == -7.0:
                    v *= outlier
                recs.append({"model": model, "item": f"i{item}", "ev": c, "seed": 0, "sad_image": v, "sad": 0.3 * v,
                             "mse": 0.01 * v, "connectivity": 0.2 * v, "conn_disconnect": 0.3 * v, "mad": 0.001 * v})
    return recs


def _labels(fig) -> list[str]:
    return [t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title())]


def _close(fig, tmp_path, name):
    fig.savefig(tmp_path / f"{name}.png", dpi=40)
    plt.close(fig)
    assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_grid_labels_are_readable_with_units(tmp_path):
    metrics = ("sad_image", "sad", "connectivity", "conn_disconnect", "mad")
    fig = V.plot_grid(_records(), metrics, ["original", "staged", "empty"], title="t")
    labels = _labels(fig)
    assert not [t for t in labels if t.split(" (")[0] in CODE_NAMES], labels
    ylabels = [ax.get_ylabel() for ax in fig.axes]
    assert ylabels == ["SAD (÷ 1000)"] * 2 + ["Connectivity (÷ 1000)"] * 2 + ["mean |Δα|"]
    assert all(ax.get_xlabel().startswith("exposure (EV)") for ax in fig.axes)
    assert fig.axes[0].get_title().startswith("SAD, whole image")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][:3] == ["clean", "0", "\u22122"]
    assert all(-0.05 * ax.get_ylim()[1] < ax.get_ylim()[0] <= 0 for ax in fig.axes)   # errors: from (just below) 0
    rows = sorted({round(ax.get_position().y0, 3) for ax in fig.axes})
    assert len(rows) == 3, rows                    # five panels wrap into rows of two: readable on a page
    assert V.metric_axis_label("sad_image") == "SAD (÷ 1000)" and V.metric_axis_label("other") == "other"
    _close(fig, tmp_path, "grid")


def test_grid_cuts_an_outlier_and_writes_its_value(tmp_path):
    calm = V.plot_grid(_records(), ("sad_image",), ["original", "staged", "empty"])
    assert not [c for c in calm.axes[0].texts if c.get_text().startswith("↑")]      # nothing to cut
    wild = V.plot_grid(_records(outlier=60.0), ("sad_image",), ["original", "staged", "empty"])
    ax = wild.axes[0]
    top = ax.get_ylim()[1]
    assert top < 100, top                       # the seed at ~3 x 2.4 x 60 would have set it near 450
    cut = [t.get_text() for t in ax.texts if t.get_text().startswith("↑")]
    assert len(cut) == 1, cut                   # the mean of the three seeds at EV -7, written at the edge
    uncut = V.plot_grid(_records(outlier=60.0), ("sad_image",), ["original", "staged", "empty"], clip=None)
    assert uncut.axes[0].get_ylim()[1] > 400 and not uncut.axes[0].texts
    for i, f in enumerate((calm, wild, uncut)):
        _close(f, tmp_path, f"cut{i}")


def test_grid_keeps_its_positional_call():
    """Notebook 07 calls plot_grid(records, metrics, rows, title=...)."""
    fig = V.plot_grid(_records(), ("sad_image", "conn_disconnect"), ["original", "staged"], "a title")
    assert fig._suptitle.get_text() == "a title" and len(fig.axes) == 2
    plt.close(fig)


def test_changes_keep_the_cut_and_name_the_axis(tmp_path):
    recs = _records()
    ch = {"A": grid_change(recs, "original", ["staged/s0", "staged/s1"], "sad_image", pooled=[-3.0, -5.0]),
          "B": grid_change(recs, "staged/s0", "empty", "sad_image", pooled=[-3.0, -5.0])}
    fig = V.plot_changes(ch, "t", limit=150.0)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] == 150.0
    assert ax.get_xlabel().startswith("exposure (EV)") and "%" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["clean", "EV 0"]
    assert any(t.get_text().startswith("↑") for t in ax.texts)     # 'empty' is far above +150 %
    _close(fig, tmp_path, "changes")


def _disk_item(with_alpha: bool = True) -> dict:
    yy, xx = np.mgrid[:48, :48]
    alpha = (np.clip(1.2 - np.hypot(yy - 24, xx - 24) / 15, 0, 1) * 255).astype(np.uint8)
    img = np.dstack([alpha, 255 - alpha, np.full_like(alpha, 120)]).astype(np.uint8)
    return {"name": "disk", "image": img, **({"alpha": alpha} if with_alpha else {})}


MATTERS = {"original": lambda x: (x[..., 0] / 255.0).astype(np.float32),
           "staged/s0": lambda x: np.full(x.shape[:2], 0.3, np.float32)}


@pytest.mark.parametrize("with_alpha, target", [(True, "true α"), (False, "original's clean α")])
def test_error_maps_have_a_labelled_colour_bar(tmp_path, with_alpha, target):
    dim = (-6.0, lambda img, ev, seed, key: (img * 0.02).astype(np.uint8), "dim")
    fig = V.plot_examples(MATTERS, _disk_item(with_alpha), [CLEAN, -4.0, dim], seed=0, title="t")
    bars = [ax for ax in fig.axes if ax.get_ylabel().startswith("|error|")]
    assert len(bars) == 1, [ax.get_ylabel() for ax in fig.axes]
    assert target in bars[0].get_ylabel() and bars[0].get_ylim() == (0.0, 1.0)
    titles = [ax.get_title() for ax in fig.axes]
    assert sum(t.startswith("|error|, SAD (÷ 1000)") for t in titles) == 6
    assert titles[0] == "clean" and titles[5].startswith("EV \u22124")
    _close(fig, tmp_path, f"examples{int(with_alpha)}")


def test_switch_axes_name_their_units(tmp_path):
    rng = np.random.default_rng(0)
    lum = lambda n: list(np.exp(rng.uniform(np.log(0.01), np.log(0.6), n)))  # noqa: E731
    sw = {"threshold": 0.4, "val_luma": {"low": lum(6), "normal": lum(6)},
          "test_luma": {"low": lum(6), "normal": lum(6)},
          "selection": {"candidates": np.sort(lum(12)), "errors": np.linspace(4, 3, 12)}}
    fig = V.plot_switch(sw)
    assert "÷ 1000" in fig.axes[1].get_ylabel() and "luminance" in fig.axes[1].get_xlabel()
    _close(fig, tmp_path, "switch")


def _fake_photo(pid: str, small: bool) -> SimpleNamespace:
    img = np.full((40, 60, 3), 128, np.uint8)
    persons = [{"polygon": [[5, 5], [25, 5], [25, 35], [5, 35]]}]
    if small:
        persons.append({"polygon": [[40, 10], [50, 10], [50, 20]], "small": True})
    return SimpleNamespace(id=pid, image=img, persons=persons, kinds=("portrait",))


def test_people_outlines_have_a_legend(tmp_path):
    fig = show_people_outlines([_fake_photo("a", False), _fake_photo("b", True)], cols=2, size=2)
    texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert any("person outline" in t for t in texts) and any("small" in t for t in texts), texts
    _close(fig, tmp_path, "outlines")
    fig = show_people_outlines([_fake_photo("a", False)], cols=1, size=2)
    assert len(fig.legends[0].get_texts()) == 1            # no dashed entry without a small person
    _close(fig, tmp_path, "outlines1")


def test_people_mattes_explain_their_titles(tmp_path):
    mask = np.zeros((40, 60), bool)
    mask[5:35, 5:25] = True
    mattes = {"original": mask.astype(np.float32), "m/s0": np.full((40, 60), 0.5, np.float32)}
    panel = lambda cam, ev: {"camera": cam, "ev": ev, "image": np.full((40, 60, 3), 90, np.uint8),  # noqa: E731
                             "mattes": mattes}
    ex = [{"id": "a", "mask": mask, "panels": [panel("daylight", "clean"), panel("simulator", -5.0)]}]
    fig = show_people_mattes(ex)
    caption = " ".join(t.get_text() for t in fig.texts)
    assert "SAD" in caption and "out:" in caption and "miss:" in caption and "original's daylight α" in caption
    _close(fig, tmp_path, "mattes")
