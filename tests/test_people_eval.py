"""lowlight.evaluation.people: per-photo scoring of real people against the original's daylight matte
and the hand-drawn outlines, through the training simulator and the held-out camera; the daylight
drift guard; the per-photo tables. Stub models whose numbers are known, at a small size."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from lowlight.data import people_photos, person_mask
from lowlight.evaluation import people as EP
from lowlight.evaluation.stats import MIN_IMAGES

SIDE = 128                                       # small working size: fast, still >= the models' stride
IDS = ("astronaut", "grace_hopper", "voc_cafeteria")   # three distinct working shapes at 128 px


class Zero(nn.Module):
    """A model that gives up: alpha 0 everywhere."""

    def forward(self, x):
        return torch.zeros_like(x[:, :1])


class Masks(nn.Module):
    """Returns the union of a photo's person outlines (recognised by the input's size), whatever the
    exposure, plus ``extra`` (a bool mask per size) where given."""

    def __init__(self, photos, extra=None):
        super().__init__()
        self.by_shape = {}
        for p in photos:
            shape = EP.working_image(p.image, SIDE).shape[:2]
            m = person_mask(p.id, shape)
            if extra is not None:
                m = m | extra[p.id]
            self.by_shape[shape] = torch.from_numpy(m.astype(np.float32))

    def forward(self, x):
        return self.by_shape[tuple(x.shape[-2:])][None, None].to(x.dtype).expand(x.shape[0], 1, -1, -1)


class Luma(nn.Module):
    """An image-derived matte: mean of the channels to a power (it changes in the dark)."""

    def __init__(self, gamma: float = 1.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, x):
        return x.mean(1, keepdim=True) ** self.gamma


def _outside_blob(photo, fraction: float) -> np.ndarray:
    """``fraction`` of the working image, all outside every person (the first such pixels in raster order)."""
    shape = EP.working_image(photo.image, SIDE).shape[:2]
    outside = np.flatnonzero(~person_mask(photo.id, shape))
    blob = np.zeros(shape[0] * shape[1], bool)
    blob[outside[: int(round(fraction * blob.size))]] = True
    return blob.reshape(shape)


def _score(models, photos, **kw):
    return EP.score_people(models, photos, evs_sim=(-3.0, -5.0), evs_heldout=(-5.0,), max_side=SIDE, **kw)


@pytest.fixture(scope="module")
def photos():
    return people_photos(IDS)


@pytest.fixture(scope="module")
def stub_records(photos):
    return _score({"original": Masks(photos), "zero": Zero()}, photos)


def test_one_record_per_photo_model_camera_and_ev(stub_records):
    assert len(stub_records) == len(IDS) * 2 * (1 + 2 + 1)
    keys = {(r["photo"], r["model"], r["camera"], r["ev"]) for r in stub_records}
    assert len(keys) == len(stub_records)
    conds = {(r["camera"], r["ev"]) for r in stub_records}
    assert conds == {("daylight", "clean"), ("simulator", -3.0), ("simulator", -5.0), ("heldout", -5.0)}
    assert {r["render"] for r in stub_records} == {"none", "phone", "heldout_camera"}
    assert all(max(r["height"], r["width"]) == SIDE for r in stub_records)


def test_the_original_has_no_drift_and_is_its_own_daylight_target(stub_records):
    day = [r for r in stub_records if r["model"] == "original" and r["camera"] == "daylight"]
    assert len(day) == len(IDS) and all(r["sad"] == 0.0 and r["mad"] == 0.0 for r in day)


def test_outline_counts_are_exact_for_known_mattes(stub_records, photos):
    for r in stub_records:
        if r["model"] == "zero":          # nothing anywhere: nothing outside, every person missed
            assert r["fg_outside"] == 0.0 and r["person_missed"] == 1.0, r
        else:                              # exactly the outlines: nothing outside, nothing missed
            assert r["fg_outside"] == 0.0 and r["person_missed"] == pytest.approx(0.0, abs=1e-12), r
    for p in photos:                       # the all-zero matte's SAD is the reference's whole mass
        shape = EP.working_image(p.image, SIDE).shape[:2]
        mass = person_mask(p.id, shape).sum() / 1000.0
        for r in stub_records:
            if r["photo"] == p.id and r["model"] == "zero":
                assert r["sad"] == pytest.approx(mass)
                assert r["mad"] == pytest.approx(mass * 1000 / (r["height"] * r["width"]))


def test_guard_flags_a_blob_outside_the_people(photos):
    big = {p.id: _outside_blob(p, 0.05) for p in photos}
    small = {p.id: _outside_blob(p, 0.01) for p in photos}
    models = {"original": Masks(photos), "blob/s0": Masks(photos, big), "speck/s1": Masks(photos, small)}
    recs = EP.score_people(models, photos, evs_sim=(), evs_heldout=(), max_side=SIDE)
    flagged = EP.daylight_drift_guard(recs)
    assert set(flagged) == {(p.id, "blob/s0") for p in photos}
    for p in photos:
        assert flagged[(p.id, "blob/s0")] == pytest.approx(big[p.id].mean(), abs=1e-9)
        r = next(r for r in recs if r["photo"] == p.id and r["model"] == "blob/s0")
        assert r["fg_outside"] == pytest.approx(big[p.id].mean(), abs=1e-9)   # the blob is all outside
    assert EP.daylight_drift_guard(recs, limit=0.005).keys() >= {(p.id, "speck/s1") for p in photos}
    assert EP.daylight_drift_guard(recs, limit=0.5) == {}


def test_records_are_deterministic_and_the_draw_is_shared(photos):
    models = {"original": Luma(), "ft/s0": Luma(0.7)}
    a, b = _score(models, photos[:1]), _score(models, photos[:1])
    assert a == b
    c = _score(models, photos[:1], seed=1)
    assert [r["luma"] for r in a if r["camera"] != "daylight"] != [r["luma"] for r in c if r["camera"] != "daylight"]
    # every model sees the very same input at a condition (its luma is recorded per record)
    for cam, ev in {(r["camera"], r["ev"]) for r in a}:
        lumas = {r["luma"] for r in a if (r["camera"], r["ev"]) == (cam, ev)}
        assert len(lumas) == 1, (cam, ev)
    img = EP.working_image(photos[0].image, SIDE)
    for cam in ("simulator", "heldout"):
        np.testing.assert_array_equal(EP.camera_input(img, photos[0].id, cam, -5.0, 0),
                                      EP.camera_input(img, photos[0].id, cam, -5.0, 0))
    assert not np.array_equal(EP.camera_input(img, photos[0].id, "heldout", -5.0, 0),
                              EP.camera_input(img, "another", "heldout", -5.0, 0))


def test_people_table_numbers_and_no_verdict_below_ten_photos(photos):
    models = {"original": Luma(), "ft/s0": Luma(0.8), "ft/s1": Luma(1.25)}
    recs = _score(models, photos)
    t = EP.people_table(recs, n_boot=200)
    assert t["finetuned"] == ["ft/s0", "ft/s1"] and t["photos"] == list(IDS)
    for cam, evs in (("simulator", [-3.0, -5.0]), ("heldout", [-5.0])):
        assert t["evs"][cam] == evs
        for p in IDS:
            cell = t["per_photo"][cam][p]["sad"]
            want = {m: np.mean([r["sad"] for r in recs if (r["photo"], r["model"], r["camera"]) == (p, m, cam)])
                    for m in models}
            assert cell["original"] == pytest.approx(want["original"])
            assert cell["seeds"] == pytest.approx({"ft/s0": want["ft/s0"], "ft/s1": want["ft/s1"]})
            assert cell["finetuned"] == pytest.approx((want["ft/s0"] + want["ft/s1"]) / 2)
            assert cell["change_pct"] == pytest.approx(100 * (cell["finetuned"] / cell["original"] - 1))
        ch = t["pooled"][cam]["change"]
        assert ch.verdict is None and ch.n_images == len(IDS) < MIN_IMAGES and ch.n_seeds == 2
        assert set(ch.per_image) == set(IDS) and set(t["pooled"][cam]["seed_medians"]) == {"ft/s0", "ft/s1"}
    for p in IDS:
        for m in ("ft/s0", "ft/s1"):
            day = next(r for r in recs if (r["photo"], r["model"], r["camera"]) == (p, m, "daylight"))
            assert t["drift"][p][m] == day["mad"]
    assert t["verdict_withheld"]
    assert "fewer than 10: no pooled verdict" in t["text"] and "too few for an interval" in t["text"]
    for p in IDS:
        assert p in t["text"]


def test_people_table_needs_the_reference(photos):
    recs = EP.score_people({"original": Zero(), "z/s0": Zero()}, photos[:2], evs_sim=(), evs_heldout=(),
                           max_side=SIDE)
    with pytest.raises(ValueError, match="reference 'base'"):
        EP.people_table(recs, reference="base")
    with pytest.raises(ValueError, match="no reference 'nope'"):
        EP.score_people({"a": Zero()}, photos[:1], reference="nope")


def test_evaluation_never_imports_training_nor_matplotlib():
    """In a fresh interpreter: import and run the people evaluation; no training module, no matplotlib."""
    code = (
        "import sys, torch\n"
        "from lowlight.evaluation import people as EP\n"
        "from lowlight.data import people_photos\n"
        "class Z(torch.nn.Module):\n"
        "    def forward(self, x): return torch.zeros_like(x[:, :1])\n"
        "recs = EP.score_people({'original': Z()}, people_photos(['astronaut']), evs_sim=(-3.0,), "
        "evs_heldout=(-5.0,), max_side=64)\n"
        "assert len(recs) == 3, recs\n"
        "bad = sorted(m for m in sys.modules if m.startswith('lowlight.training') or m.split('.')[0] == 'matplotlib')\n"
        "print('BAD', bad)\n"
        "sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_figure_of_mattes(photos, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from lowlight.viz.people import show_people_mattes

    ex = EP.people_examples({"original": Masks(photos), "zero": Zero()}, photos[:2], max_side=SIDE)
    assert [p["camera"] for p in ex[0]["panels"]] == ["daylight", "simulator", "heldout"]
    assert [p["ev"] for p in ex[0]["panels"]] == ["clean", min(EP.SIM_EVS), min(EP.HELDOUT_CAMERA_EVS)]
    fig = show_people_mattes(ex)
    fig.savefig(tmp_path / "mattes.png", dpi=40)
    assert (tmp_path / "mattes.png").stat().st_size > 1000


def test_a_reference_that_misses_the_people_is_named(photos):
    """An original that sees nobody: its daylight matte misses every outlined person, the table says
    so, and a pooled relative change against an all-zero baseline is refused with the reason."""
    recs = EP.score_people({"original": Zero(), "m/s0": Masks(photos)}, photos, evs_sim=(-3.0,), evs_heldout=(-5.0,),
                           max_side=SIDE)
    t = EP.people_table(recs, n_boot=50)
    assert t["reference_missed"] == {p: 1.0 for p in IDS}
    assert "specification is itself wrong" in t["text"]
    assert t["pooled"]["simulator"]["change"] is None and "positive baseline" in t["pooled"]["simulator"]["error"]
    assert "no pooled change" in t["text"]


def _synthetic_records(n_photos=12, seeds=(0, 1, 2)):
    """Records of a case whose answer is known: on every photo and EV the treatment's SAD is half the
    original's, the control's equal to it (so the difference in differences is exactly -50 points)."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(n_photos):
        photo = f"p{k}"
        for camera, evs in (("simulator", (-3.0, -4.0)), ("heldout", (-3.0, -5.0))):
            for ev in evs:
                base = float(rng.uniform(1.0, 20.0))
                out.append({"photo": photo, "model": "original", "camera": camera, "ev": ev, "sad": base})
                for s in seeds:
                    out.append({"photo": photo, "model": f"night/s{s}", "camera": camera, "ev": ev, "sad": base / 2})
                    out.append({"photo": photo, "model": f"night_clean/s{s}", "camera": camera, "ev": ev, "sad": base})
    return out


def test_difference_in_differences_on_people_records_with_a_known_answer():
    recs = _synthetic_records()
    keys = lambda r: [f"{r}/s{s}" for s in (0, 1, 2)]  # noqa: E731
    for camera in ("simulator", "heldout"):
        ch = EP.people_did(recs, keys("night"), keys("night_clean"), camera, n_boot=500)
        assert ch.change_pct == pytest.approx(-50.0)
        assert ch.lo == pytest.approx(-50.0) and ch.hi == pytest.approx(-50.0)      # nothing varies
        assert set(ch.per_image) == {f"p{k}" for k in range(12)}
        assert all(v == pytest.approx(-50.0) for v in ch.per_image.values())
        assert ch.n_images == 12 and ch.verdict is not None
    # swapping the arms gives +50
    assert EP.people_did(recs, keys("night_clean"), keys("night"), "simulator", n_boot=200).change_pct == \
        pytest.approx(50.0)
    with pytest.raises(ValueError, match="dark one"):
        EP.people_did(recs, keys("night"), keys("night_clean"), "daylight")


def _bar_table(changes, seed_medians, drifts):
    """A people_table-shaped dict whose bar is known: per-photo SAD changes (%) for both dark cameras."""
    per = {p: {"sad": {"change_pct": c}} for p, c in changes.items()}
    return {"metric": "sad", "limit": EP.DRIFT_LIMIT,
            "per_photo": {EP.DAYLIGHT: {}, "simulator": per, "heldout": per},
            "pooled": {cam: {"seed_medians": dict(seed_medians)} for cam in ("simulator", "heldout")},
            "drift": {p: dict(d) for p, d in drifts.items()}}


def test_people_bar_reads_the_issue_criteria_photo_by_photo_and_seed_by_seed():
    good = _bar_table({"a": -60.0, "b": -45.0, "c": -10.0}, {"s0": -50.0, "s1": -35.0},
                      {"a": {"s0": 0.01, "s1": 0.02}, "b": {"s0": 0.0, "s1": 0.005}})
    bar = EP.people_bar(good)
    assert bar["simulator"] == {"median_change": -45.0, "photos_worse": 0, "n": 3,
                                "seed_medians": {"s0": -50.0, "s1": -35.0}}
    assert bar["drift_max"] == 0.02 and bar["drift_over"] == 0 and bar["pairs"] == 4 and bar["met"]
    # each criterion alone breaks it
    assert not EP.people_bar(_bar_table({"a": -60.0, "b": -45.0, "c": +1.0}, {"s0": -50.0},
                                        {"a": {"s0": 0.0}}))["met"]            # one photo worse
    assert not EP.people_bar(_bar_table({"a": -60.0, "b": -39.0, "c": -10.0}, {"s0": -50.0},
                                        {"a": {"s0": 0.0}}))["met"]            # median only -39 %
    assert not EP.people_bar(_bar_table({"a": -60.0, "b": -45.0, "c": -10.0}, {"s0": -50.0, "s1": -29.0},
                                        {"a": {"s0": 0.0}}))["met"]            # one seed's median -29 %
    over = EP.people_bar(_bar_table({"a": -60.0, "b": -45.0, "c": -10.0}, {"s0": -50.0},
                                    {"a": {"s0": 0.0201}, "b": {"s0": 0.3}}))
    assert not over["met"] and over["drift_over"] == 2 and over["drift_max"] == 0.3
