"""lowlight.evaluation: 8-bit mattes and trimaps, the protocol end to end on smoke, EV bins, the
exposure grid with stub matters, paired bootstrap, seed averaging, the brightness switch,
missing checkpoints, text tables, and MODNet under simulated low light."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from lowlight import config, metrics
from lowlight import evaluation as E
from lowlight.color import LUMA_WEIGHTS, luminance
from lowlight.data import LLMatteDataset
from lowlight.inference import BrightnessSwitch
from lowlight.evaluation import protocol, report
from lowlight.metrics import all_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


class _Const(nn.Module):
    """alpha = c everywhere (a model whose scores can be computed by hand)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.full((x.shape[0], 1, *x.shape[-2:]), float(self.c)) + 0 * self.dummy


class _Luma(nn.Module):
    """alpha = luminance of the input (depends on the input, so low != normal)."""

    def forward(self, x):
        w = torch.tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True).clamp(0, 1)


# =========================================================================== protocol basics
def test_quantize_and_trimap_conversion():
    a = np.array([[0.0, 0.5, 1.0, 0.499 / 255]])
    assert E.quantize_alpha(a).tolist() == [[0, 128, 255, 0]]
    assert E.quantize_alpha(torch.tensor(a)[None]).dtype == np.uint8
    t = torch.tensor([[[0.0, 0.5, 1.0]]])
    assert E.trimap_to_uint8(t).tolist() == [[0, 128, 255]]
    with pytest.raises(ValueError, match="trimap"):
        E.trimap_to_uint8(np.array([[0.0, 0.3]]))
    with pytest.raises(ValueError, match="NaN"):
        E.quantize_alpha(np.array([[np.nan]]))


def test_ev_bins_edges_and_outside():
    assert protocol.ev_bin(-5.0) == "[-5, -4)"
    assert protocol.ev_bin(-4.0) == "[-4, -2)"
    assert protocol.ev_bin(-6.99) == "[-7, -5)"
    assert protocol.ev_bin(-7.5) == "< -7"
    assert protocol.ev_bin(-1.0) == ">= -2"


def test_verdict_words():
    assert E.verdict(-30.0, -35.5).startswith("same direction, comparable")
    assert E.verdict(-10.0, -35.5) == "same direction, 28% of the article's size"
    assert E.verdict(-1.0, -35.5).startswith("no clear change")
    assert E.verdict(+8.0, -35.5) == "opposite direction"
    assert E.verdict(float("nan"), -35.5) == "not measured"


def test_row_labels():
    assert E.row_label("staged/s1") == E.ROW_LABELS["staged"] + " (seed 1)"
    assert E.row_label("original") == E.ROW_LABELS["original"]
    assert E.row_label("mystery") == "mystery"


def test_pick_scenario_prefers_background():
    class DS:
        items = [{"family": "solid", "background": "night"}, {"family": "hair", "background": "photo"},
                 {"family": "portrait", "background": "night"}]
    assert E.pick_scenario(DS(), ("portrait", "hair"), ("night",)) == 2
    assert E.pick_scenario(DS(), ("hair",), ("backlit",)) == 1
    with pytest.raises(ValueError, match="product"):
        E.pick_scenario(DS(), ("product",))


# =========================================================================== evaluate() on smoke
def test_evaluation_end_to_end_on_smoke():
    P = config.get_profile("smoke")
    ds = LLMatteDataset("test", P, mode="low", progress=False)
    models = {"original": _Const(0.5), "staged": _Luma()}
    timings = {}
    recs = E.evaluate(models, ds, ("low", "normal"), batch_size=3, timings=timings)
    n = len(ds)
    assert len(recs) == 2 * 2 * n and set(timings) == {"original", "staged"}
    assert [(r["model"], r["mode"]) for r in recs[:: n]] == [("original", "low"), ("original", "normal"),
                                                             ("staged", "low"), ("staged", "normal")]
    # the EV bins cover every low-light image, the normal-light ones form their own bin
    for r in recs:
        if r["mode"] == "low":
            assert r["bin"] == protocol.ev_bin(r["ev"]) and r["bin"].startswith("["), r["bin"]
        else:
            assert r["bin"] == protocol.NORMAL_BIN
    # a constant 0.5 matte: scores recomputed by hand from the sample
    s = ds[0]
    gt = np.round(s["alpha"][0].numpy() * 255).astype(np.uint8)
    tri = np.select([s["trimap"][0].numpy() == 0, s["trimap"][0].numpy() == 1], [0, 255], 128).astype(np.uint8)
    rec = next(x for x in recs if x["model"] == "original" and x["mode"] == "low" and x["index"] == 0)
    unk = tri == 128
    assert rec["n_unknown"] == int(unk.sum()) > 0
    assert rec["sad"] == pytest.approx(np.abs(128 / 255 - gt[unk] / 255).sum() / 1000, rel=1e-6)
    assert rec["mse"] == pytest.approx(np.mean((128 / 255 - gt[unk] / 255) ** 2), rel=1e-6)
    # an input-dependent model scores differently on the two versions, and equals all_metrics
    rl = next(x for x in recs if x["model"] == "staged" and x["mode"] == "low" and x["index"] == 0)
    rn = next(x for x in recs if x["model"] == "staged" and x["mode"] == "normal" and x["index"] == 0)
    assert rl["luma"] < rn["luma"] and rl["sad"] != rn["sad"]
    pred = E.quantize_alpha(_Luma()(s["normal"][None])[0])
    assert rn["sad"] == pytest.approx(all_metrics(pred, gt, tri)["sad"], rel=1e-9)
    with pytest.raises(ValueError, match="modes"):
        E.evaluate(models, ds, ("dark",))


# =========================================================================== the exposure grid
def _item():
    """A 16 x 16 item with a known matte and trimap: left half foreground, right half background,
    a 4-pixel unknown band in the middle holding alpha 200."""
    gt = np.zeros((16, 16), np.uint8)
    gt[:, :8] = 255
    gt[:, 6:10] = 200
    tri = np.full((16, 16), 255, np.uint8)
    tri[:, 8:] = 0
    tri[:, 6:10] = 128
    img = np.random.default_rng(0).integers(40, 220, (16, 16, 3), dtype=np.uint8)
    return {"name": "square", "image": img, "alpha": gt, "trimap": tri}


def test_score_grid_with_stub_matters_gives_the_hand_computed_numbers():
    item = _item()
    half = lambda img: np.full(img.shape[:2], 0.5, np.float32)      # noqa: E731 - always 128 after quantising
    seen = []

    def luma(img):
        seen.append(img.copy())
        return luminance(img)

    recs = E.score_grid({"half": half, "luma": luma}, [item], evs=(0.0, -3.0), seeds=(0, 1))
    assert len(recs) == 2 * (1 + 2 * 2)                               # rows x (clean + EVs x seeds)
    assert [(r["ev"], r["seed"]) for r in recs[::2]] == [(E.CLEAN, 0), (0.0, 0), (0.0, 1), (-3.0, 0), (-3.0, 1)]
    e = np.abs(128 - item["alpha"].astype(float)) / 255
    unk = item["trimap"] == 128
    for r in (r for r in recs if r["model"] == "half"):
        assert r["target"] == "true" and r["item"] == "square"
        assert r["sad"] == pytest.approx(e[unk].sum() / 1000)        # 64 px x 72/255
        assert r["mse"] == pytest.approx((e[unk] ** 2).mean())
        assert r["sad_image"] == pytest.approx((96 * 127 + 64 * 72 + 96 * 128) / 255 / 1000)
        assert r["sad_image"] == pytest.approx(e.sum() / 1000)
        assert r["mse_image"] == pytest.approx((e ** 2).mean())
        assert r["mad"] == pytest.approx(e.mean(), abs=1e-6)
    # the clean condition is the image itself; the darkened ones are darker and seed-dependent
    np.testing.assert_array_equal(seen[0], item["image"])
    lumas = {(r["ev"], r["seed"]): r["luma"] for r in recs if r["model"] == "luma"}
    assert lumas[(-3.0, 0)] < lumas[(0.0, 0)] and lumas[(-3.0, 0)] < lumas[(E.CLEAN, 0)] / 2
    assert not np.array_equal(seen[3], seen[4])                      # two noise seeds, two draws
    np.testing.assert_array_equal(seen[3], E.darken(item["image"], -3.0, 0, "square"))   # keyed, repeatable
    # the luma matter against the true matte: whole-image errors of its own prediction
    r = next(r for r in recs if r["model"] == "luma" and r["ev"] == E.CLEAN)
    p = E.quantize_alpha(luminance(item["image"]))
    assert r == {**r, **E.whole_image_errors(p, item["alpha"])}
    # grid means: over items and seeds, clean first then bright to dark
    means = E.grid_means(recs, "sad_image")
    assert list(means["half"]) == [E.CLEAN, 0.0, -3.0]
    assert means["luma"][-3.0] == pytest.approx(np.mean([x["sad_image"] for x in recs
                                                         if x["model"] == "luma" and x["ev"] == -3.0]))


def test_score_grid_records_both_connectivity_rules():
    item = _item()
    zero = lambda img: np.zeros(img.shape[:2], np.float32)          # noqa: E731 - a model that gives up
    recs = E.score_grid({"zero": zero, "truth": lambda img: item["alpha"] / 255.0}, [item], evs=(-3.0,))
    assert "conn_disconnect" in E.ALL_METRICS
    for r in recs:
        want = metrics.connectivity_error(np.zeros_like(item["alpha"]) if r["model"] == "zero" else item["alpha"],
                                          item["alpha"], item["trimap"], empty="disconnect")
        assert r["conn_disconnect"] == want
    z = [r for r in recs if r["model"] == "zero"]
    assert all(r["connectivity"] == 0.0 and r["conn_disconnect"] > 0.01 and r["sad"] > 0.01 for r in z)
    assert all(r["connectivity"] == r["conn_disconnect"] == 0.0 for r in recs if r["model"] == "truth")


def test_score_grid_without_a_matte_uses_the_reference_rows_clean_matte():
    item = {k: v for k, v in _item().items() if k in ("name", "image")}
    recs = E.score_grid({"original": luminance, "zero": lambda img: np.zeros(img.shape[:2])}, [item], evs=(-2.0,))
    clean = {r["model"]: r for r in recs if r["ev"] == E.CLEAN}
    assert clean["original"]["target"] == "reference"
    assert clean["original"]["sad_image"] == 0 and clean["original"]["mad"] == 0     # its own matte
    ref = E.quantize_alpha(luminance(item["image"]))
    assert clean["zero"]["sad_image"] == pytest.approx(ref.sum() / 255 / 1000)
    with pytest.raises(ValueError, match="no alpha"):
        E.score_grid({"zero": lambda img: np.zeros(img.shape[:2])}, [item], evs=())


# =========================================================================== comparisons
def test_paired_bootstrap_on_known_data():
    base = np.random.default_rng(0).uniform(1.0, 5.0, 30)
    r = E.paired_bootstrap(base, base * 0.5, n_boot=500)
    assert r["change_pct"] == pytest.approx(-50.0) and r["n"] == 30
    assert r["lo"] <= -50.0 + 1e-9 and r["hi"] >= -50.0 - 1e-9        # contains -50 ...
    assert r["hi"] < 0                                               # ... and excludes 0
    assert r["base"] == pytest.approx(base.mean()) and r["new"] == pytest.approx(base.mean() / 2)
    same = E.paired_bootstrap(base, base, n_boot=500)
    assert same["change_pct"] == 0.0 and same["lo"] == 0.0 and same["hi"] == 0.0
    # noisy but clearly better: the interval is around the change and excludes 0
    rng = np.random.default_rng(1)
    noisy = E.paired_bootstrap(base, base * rng.uniform(0.6, 0.8, 30), n_boot=500)
    assert noisy["lo"] < noisy["change_pct"] < noisy["hi"] < 0
    with pytest.raises(ValueError, match="equal-length"):
        E.paired_bootstrap([1.0, 2.0], [1.0])


def _rec(model, item, ev, value, seed=0):
    return {"model": model, "item": item, "ev": ev, "seed": seed, "sad_image": value}


def test_grid_change_averages_training_seeds_per_item():
    recs = []
    for item, b in (("a", 2.0), ("b", 4.0)):
        recs.append(_rec("original", item, -3.0, b))
        recs.append(_rec("original", item, -3.0, b, seed=1))              # a second noise draw, same value
    # two training seeds of the new row: per item the mean of the seeds is used
    recs += [_rec("staged/s0", "a", -3.0, 1.0), _rec("staged/s1", "a", -3.0, 2.0),
             _rec("staged/s0", "b", -3.0, 1.0, seed=0), _rec("staged/s0", "b", -3.0, 3.0, seed=1),
             _rec("staged/s1", "b", -3.0, 3.0)]
    recs += [_rec("original", "c", -3.0, 9.0)]                             # no partner: left out
    ch = E.grid_change(recs, "original", ["staged/s0", "staged/s1"], n_boot=200)
    r = ch[-3.0]
    # item a: (1 + 2) / 2 = 1.5 ; item b: seed 0 -> mean over noise (1 + 3) / 2 = 2, seed 1 -> 3: 2.5
    assert r["n"] == 2 and r["base"] == pytest.approx(3.0) and r["new"] == pytest.approx(2.0)
    assert r["change_pct"] == pytest.approx(100 * (2.0 - 3.0) / 3.0)
    assert r["seeds"]["staged/s0"] == pytest.approx(100 * (1.5 - 3.0) / 3.0)
    assert r["seeds"]["staged/s1"] == pytest.approx(100 * (2.5 - 3.0) / 3.0)
    single = E.grid_change(recs, "original", "staged/s0", n_boot=200)[-3.0]
    assert single["new"] == pytest.approx(1.5) and list(single["seeds"]) == ["staged/s0"]
    # pooling conditions: the images are the units, each with all its conditions; an image missing
    # a condition is left out of the pooled entry (here b, scored at -3 only)
    recs2 = recs + [_rec("original", "a", -5.0, 6.0), _rec("staged/s0", "a", -5.0, 3.0),
                    _rec("staged/s1", "a", -5.0, 3.0)]
    pooled = E.grid_change(recs2, "original", ["staged/s0", "staged/s1"], pooled=[-3.0, -5.0], n_boot=200)
    assert set(pooled) == {-3.0, -5.0, "pooled"} and pooled["pooled"]["n"] == 1
    assert pooled["pooled"]["base"] == pytest.approx((2 + 6) / 2) and pooled["pooled"]["verdict"] is None
    # a pooled condition the grid never scored is left out, not a reason to drop every image
    wider = E.grid_change(recs2, "original", ["staged/s0", "staged/s1"], pooled=[-3.0, -4.0, -5.0], n_boot=200)
    assert wider["pooled"]["n"] == 1 and wider["pooled"]["base"] == pytest.approx(pooled["pooled"]["base"])


def test_grid_change_resamples_images_with_their_exposures_together():
    """A known answer: every image's error halves at every exposure, so the change is -50 % and any
    resampling of images gives -50 %: the interval is exactly that point. Then the exposures of one
    image move together (image-level noise): a bootstrap that treated 12 x 5 image-exposure pairs
    as independent would give a narrower interval than resampling the 12 images."""
    rng = np.random.default_rng(0)
    recs = []
    level = rng.uniform(1.0, 3.0, 12)
    for k, lv in enumerate(level):
        for ev in (-3.0, -4.0, -5.0, -6.0, -7.0):
            recs += [_rec("original", f"i{k}", ev, lv), _rec("staged/s0", f"i{k}", ev, lv / 2)]
    evs = [-3.0, -4.0, -5.0, -6.0, -7.0]
    r = E.grid_change(recs, "original", "staged/s0", pooled=evs, n_boot=500)["pooled"]
    assert r["n"] == 12 and r["change_pct"] == pytest.approx(-50.0)
    assert r["lo"] == pytest.approx(-50.0) and r["hi"] == pytest.approx(-50.0)
    assert "12 images resampled" in r["units"] and "5 exposures kept together" in r["units"]
    assert r["verdict"].startswith("decrease")
    recs = []
    shift = rng.normal(0.0, 0.5, 12)                     # each image better or worse at every exposure
    for k, lv in enumerate(level):
        for ev in evs:
            recs += [_rec("original", f"i{k}", ev, lv), _rec("staged/s0", f"i{k}", ev, lv * (0.8 + 0.3 * shift[k]))]
    clustered = E.grid_change(recs, "original", "staged/s0", pooled=evs, n_boot=2000)["pooled"]
    base = [r["sad_image"] for r in recs if r["model"] == "original"]
    new = [r["sad_image"] for r in recs if r["model"] == "staged/s0"]
    naive = E.paired_bootstrap(base, new, n_boot=2000)           # 60 pairs as if independent
    assert clustered["change_pct"] == pytest.approx(naive["change_pct"])
    assert clustered["hi"] - clustered["lo"] > 1.5 * (naive["hi"] - naive["lo"])


def test_grid_change_between_two_recipes_resamples_the_seeds_of_both():
    """Recipe A (3 seeds) against recipe B (3 seeds), same images. When A's seeds disagree (one seed
    of A is twice as bad on every image), averaging A's seeds per image first would hide that
    spread: the interval with A's seeds resampled is wider, and the footer says both were."""
    rng = np.random.default_rng(1)
    level = rng.uniform(1.0, 3.0, 16)
    a_seed = (1.0, 1.0, 2.0)                          # A's third seed: twice the error everywhere
    recs = []
    for k, lv in enumerate(level):
        for ev in (-3.0, -5.0):
            recs += [_rec(f"a/s{s}", f"i{k}", ev, lv * f) for s, f in enumerate(a_seed)]
            recs += [_rec(f"b/s{s}", f"i{k}", ev, lv * 0.8 * (1 + 0.01 * s)) for s in range(3)]
    a, b = [f"a/s{s}" for s in range(3)], [f"b/s{s}" for s in range(3)]
    both = E.grid_change(recs, a, b, pooled=[-3.0, -5.0], n_boot=2000)["pooled"]
    averaged = [dict(r, model="a") if r["model"] in a else r for r in recs]       # A's seeds pooled per image
    one = E.grid_change(averaged, "a", b, pooled=[-3.0, -5.0], n_boot=2000)["pooled"]
    assert both["change_pct"] == pytest.approx(one["change_pct"])                  # same means
    assert both["change_pct"] == pytest.approx(100 * (0.8 * 1.01 / (4 / 3) - 1), abs=1e-6)
    assert both["hi"] - both["lo"] > 3 * (one["hi"] - one["lo"])
    assert "the baseline's 3 training seeds resampled" in both["units"]
    assert "the new model's 3 training seeds resampled" in both["units"]


def test_text_tables():
    recs = []
    for model in ("original", "staged/s0", "staged/s1"):
        for ev in (E.CLEAN, 0.0, -3.0):
            recs.append({**_rec(model, "a", ev, 1.0 if model == "original" else 0.5)})
    grid = report.format_grid_table(recs, "sad_image")
    assert "clean" in grid.splitlines()[0] and "EV -3" in grid.splitlines()[0]
    assert E.ROW_LABELS["original"] in grid and "(2 seeds)" in grid
    change = report.format_change(E.grid_change(recs, "original", ["staged/s0", "staged/s1"], n_boot=50), "t")
    assert change.splitlines()[0] == "t" and "-50.0%" in change
    ours = {k: {"base": 1.0, "new": 0.5, "change_pct": -50.0, "lo": -60.0, "hi": -40.0} for k in protocol.METRICS}
    art = report.format_article_table(ours)
    assert "48.700" in art and "-50%" in art and "private data" in art


# =========================================================================== the brightness switch
def test_choose_threshold_separates_dark_from_bright():
    luma = [0.02, 0.05, 0.08, 0.30, 0.40, 0.50]
    err_normal_model = [0.9, 0.8, 0.7, 0.1, 0.1, 0.1]
    err_low_model = [0.2, 0.2, 0.2, 0.3, 0.3, 0.3]
    t, info = E.choose_threshold(luma, err_normal_model, err_low_model)
    assert 0.08 < t < 0.30
    assert info["best_error"] == pytest.approx(np.mean([0.2, 0.2, 0.2, 0.1, 0.1, 0.1]))
    # a low-light model better everywhere: everything goes to it
    t2, _ = E.choose_threshold(luma, [1.0] * 6, [0.5] * 6)
    assert t2 > 0.5
    with pytest.raises(ValueError, match="equal"):
        E.choose_threshold([0.1, 0.2], [0.1], [0.2])


def test_switch_routes_dark_and_bright_inputs_by_luminance():
    sw = BrightnessSwitch(_Const(0.0), _Const(1.0), threshold=0.2)   # normal -> 0, low -> 1
    x = torch.cat([torch.full((2, 3, 8, 8), 0.05), torch.full((1, 3, 8, 8), 0.7), torch.full((1, 3, 8, 8), 0.1)])
    a = sw(x)
    assert a.shape == (4, 1, 8, 8)
    assert a[:, 0, 0, 0].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert sw.route(x).tolist() == [True, True, False, True]
    assert not hasattr(sw, "last_route")                 # no state between calls
    # luminance, not the channel mean: a saturated blue image is dark, a green one is bright
    blue, green = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    blue[:, 2], green[:, 1] = 1.0, 0.4
    assert sw.route(blue).tolist() == [True] and sw.route(green).tolist() == [False]
    assert sw.is_dark(0.19) and not sw.is_dark(0.2)
    assert BrightnessSwitch(_Const(0.0), _Const(1.0), 0.2)(torch.full((1, 3, 4, 4), 0.9)).max() == 0.0
    with pytest.raises(ValueError):
        BrightnessSwitch(_Const(0.0), _Const(1.0), float("nan"))


def test_switch_table_on_constructed_records():
    def rec(model, mode, i, luma, sad):
        return {"model": model, "mode": mode, "index": i, "luma": luma, "sad": sad, "mse": sad,
                "gradient": sad, "connectivity": sad}
    records = [rec("original", "low", 0, 0.05, 0.9), rec("ft_stage3", "low", 0, 0.05, 0.2),
               rec("original", "normal", 0, 0.4, 0.1), rec("ft_stage3", "normal", 0, 0.4, 0.3)]
    t = E.switch_table(records, 0.2)
    assert t["switch"]["sad"] == pytest.approx(0.15) and t["oracle"]["sad"] == pytest.approx(0.15)
    assert t["normal-light model only"]["sad"] == pytest.approx(0.5)
    assert t["low-light model only"]["sad"] == pytest.approx(0.25)
    assert t["routing"]["low"] == {"to_low_model": 1, "n": 1}
    assert t["routing"]["normal"] == {"to_low_model": 0, "n": 1}


def test_run_switch_end_to_end_on_smoke(tmp_path):
    P = config.get_profile("smoke")
    val = LLMatteDataset("val", P, mode="low", progress=False)
    test = LLMatteDataset("test", P, mode="low", progress=False)
    normal, low = _Luma(), _Const(0.5)
    test_records = E.evaluate({"original": normal, "ft_stage3": low}, test)
    sw = E.run_switch(normal, low, val, test_records, out_dir=tmp_path)
    assert sw["n_val"] == 2 * len(val) and math.isfinite(sw["threshold"])
    lo, hi = sw["selection"]["optimal_range"]
    assert lo <= sw["threshold"] <= hi
    assert sw["table"]["routing"]["low"]["n"] == len(test)
    saved = json.loads((tmp_path / "switch.json").read_text())
    assert saved["threshold"] == pytest.approx(sw["threshold"])
    assert (tmp_path / "switch.csv").read_text().splitlines()[0] == "row,n,to_low,sad,mse,gradient,connectivity"
    text = report.format_switch_table(sw)
    assert f"{sw['threshold']:.4f}" in text and "oracle" in text


# =========================================================================== runs on disk
def test_missing_checkpoint_names_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path)
    smoke = config.get_profile("smoke")
    assert E.checkpoint_path(smoke, "staged", 1) == config.RunLayout.of(smoke).checkpoint(
        "modnet", "staged", 1, "stage3")
    assert E.checkpoint_path(smoke, "onestage").parent.name == "full"
    with pytest.raises(FileNotFoundError, match="notebook 06") as exc:
        E.load_row(smoke, "staged", seed=0)
    assert "reproduce --only 06" in str(exc.value) and "staged" in str(exc.value)
    with pytest.raises(ValueError, match="row 'nonsense'"):
        E.load_row(smoke, "nonsense")
    with pytest.raises(FileNotFoundError, match="notebook 04"):
        E.load_llie(profile=smoke)
    with pytest.raises(TypeError, match="load_row: argument 'profile' must be a lowlight.config.Profile"):
        E.load_row("smoke", "original")


def test_modnet_degrades_in_the_dark():
    """MODNet as shipped on a real photo: its matte at EV -7 is far from its own daylight matte."""
    import cv2

    from lowlight.data import load_photo
    from lowlight.inference import ImageMatter
    from lowlight.models import create_model

    img = cv2.resize(load_photo("astronaut"), (256, 256), interpolation=cv2.INTER_AREA)
    matter = ImageMatter(create_model("modnet"), max_side=256)
    item = {"name": "astronaut", "image": img}
    recs = E.score_grid({"original": matter}, [item], evs=(0.0, -7.0))
    by = {r["ev"]: r for r in recs}
    assert list(by) == [E.CLEAN, 0.0, -7.0] and by[E.CLEAN]["sad_image"] == 0.0
    assert by[-7.0]["sad_image"] > 1.5 * by[0.0]["sad_image"]      # the dark matte is far worse
    assert by[-7.0]["luma"] < by[E.CLEAN]["luma"] / 10            # sRGB encoding: far less than 2^-7
    again = E.score_grid({"original": matter}, [item], evs=(-7.0,), clean=True)
    assert again[-1]["sad_image"] == by[-7.0]["sad_image"]        # the same noise draw twice
