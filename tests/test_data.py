"""Tests of lowlight.data: compositing, foreground families, trimaps, the LL-Matte cache,
real-data folders and their error messages, the torch datasets."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from lowlight import config
from lowlight import data
from lowlight.color import luminance
from lowlight.data import _draw

SMOKE = config.get_profile("smoke")


def _h(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def smoke_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("llmatte")
    path = data.build_llmatte(SMOKE, root=root, progress=False, verbose=False)
    return root, path


# --------------------------------------------------------------------------- compositing
def test_composite_equation_within_half_level():
    rng = np.random.default_rng(0)
    fg = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    alpha = rng.random((40, 50)).astype(np.float32)
    out = data.composite(fg, alpha, bg)
    a = data.to_alpha_uint8(alpha).astype(np.float64)[..., None] / 255
    ref = a * fg + (1 - a) * bg
    assert out.dtype == np.uint8
    assert np.abs(out - ref).max() <= 0.5 + 1e-9
    # alpha 0 / 1 give exactly B / F
    assert np.array_equal(data.composite(fg, np.zeros((40, 50)), bg), bg)
    assert np.array_equal(data.composite(fg, np.ones((40, 50), np.uint8) * 255, bg), fg)


def test_generated_sample_satisfies_compositing_equation():
    s = data.make_sample(3, "test", 64, seed=5)
    a = s["alpha"].astype(np.float64)[..., None] / 255
    ref = a * s["fg"] + (1 - a) * s["bg"]
    assert np.abs(s["normal"] - ref).max() <= 1.0  # within 1/255 after 8-bit rounding


def test_composite_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="sizes differ"):
        data.composite(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9)), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="fg: expected an RGB image"):
        data.composite(np.zeros((8, 8), np.uint8), np.zeros((8, 8)), np.zeros((8, 8, 3), np.uint8))


def test_foreground_estimation_removes_colour_bleeding():
    # a red subject with a soft edge photographed on green, re-composited on blue
    h = w = 48
    alpha = np.clip((np.arange(w)[None, :].repeat(h, 0) - 12) / 24.0, 0, 1).astype(np.float32)
    fg = np.zeros((h, w, 3), np.uint8); fg[...] = (200, 30, 30)
    old = np.zeros((h, w, 3), np.uint8); old[...] = (0, 220, 0)
    new = np.zeros((h, w, 3), np.uint8); new[...] = (0, 0, 220)
    photo = data.composite(fg, alpha, old)
    truth = data.composite(fg, alpha, new).astype(float)
    naive = data.recomposite(photo, alpha, new, method="none").astype(float)
    fixed = data.recomposite(photo, alpha, new, method="ml").astype(float)
    soft = (alpha > 0.05) & (alpha < 0.95)
    err_naive = np.abs(naive - truth)[soft].mean()
    err_fixed = np.abs(fixed - truth)[soft].mean()
    assert err_fixed < 0.5 * err_naive, (err_fixed, err_naive)


# --------------------------------------------------------------------------- trimaps
def test_trimap_values_and_band():
    s = data.make_sample(0, "val", 96, seed=1, family="hair")
    a = s["alpha"]
    for width in (0, 2, 5):
        t = data.trimap_from_alpha(a, width)
        assert t.dtype == np.uint8 and set(np.unique(t)) <= {0, 128, 255}
        frac = (a > 0) & (a < 255)
        assert (t[frac] == 128).all()                  # every fractional pixel is unknown
        assert (a[t == 255] == 255).all() and (a[t == 0] == 0).all()
    t0, t5 = data.trimap_from_alpha(a, 0), data.trimap_from_alpha(a, 5)
    assert np.array_equal(t0 == 128, (a > 0) & (a < 255))   # width 0: exactly the fractional pixels
    assert (t5 == 128).sum() > (t0 == 128).sum()
    with pytest.raises(ValueError, match="width must be an int >= 0"):
        data.trimap_from_alpha(a, -1)


# --------------------------------------------------------------------------- families
# minimum share of fractional (0 < a < 1) pixels among object pixels, per family
MIN_FRACTIONAL = {"solid": 0.03, "hair": 0.2, "transparent": 0.9, "smoke": 0.9, "portrait": 0.1, "product": 0.04}


@pytest.mark.parametrize("family", data.FAMILIES)
def test_every_family_has_fractional_alpha(family):
    fr = []
    for seed in range(6):
        f = data.make_foreground(family, 96, np.random.default_rng(seed))
        assert f.fg.shape == (96, 96, 3) and f.fg.dtype == np.uint8
        assert f.alpha.shape == (96, 96) and f.alpha.dtype == np.float32
        assert 0.0 <= f.alpha.min() and f.alpha.max() <= 1.0
        assert (f.alpha > 0).mean() > 0.02, "the object should be visible"
        fr.append(data.fractional_fraction(f.alpha, "object"))
    assert min(fr) >= MIN_FRACTIONAL[family], (family, fr)
    if family == "transparent":
        # glass and veils: most of the body between 0.2 and 0.7
        f = data.make_foreground(family, 96, np.random.default_rng(0))
        body = f.alpha[f.alpha > 0.1]
        assert 0.2 <= np.median(body) <= 0.7


def test_hair_strands_are_drawn_with_coverage_not_thresholded():
    strand = [np.array([[5.0, 5.3], [60.0, 40.7], [90.0, 80.2]])]
    p, a = _draw.strand_layer(strand, np.array([[200.0, 120.0, 60.0]]), np.array([1]), 96)
    assert 0.1 < a.max() < 0.7            # a sub-pixel strand never reaches alpha 1
    on = a > 0
    # premultiplied colour = alpha * strand colour, to within the 8-bit canvas' rounding
    err = np.abs(p[on] * 255 - a[on, None] * np.array([200, 120, 60]))
    assert err.max() <= 1.0, err.max()
    h = data.make_foreground("hair", 96, np.random.default_rng(1)).alpha
    vals = np.unique(data.to_alpha_uint8(h))
    assert len(vals) > 100                # a continuum of values, not a few levels


def test_backgrounds_all_kinds():
    for kind in data.BACKGROUND_KINDS:
        img, info = data.make_background(kind, 64, np.random.default_rng(2))
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and info["kind"] == kind
    night = data.make_background("night", 64, np.random.default_rng(3))[0]
    backlit = data.make_background("backlit", 64, np.random.default_rng(3))[0]
    assert luminance(night).mean() < luminance(backlit).mean()
    with pytest.raises(ValueError, match="unknown kind"):
        data.make_background("moon", 64, np.random.default_rng(0))


def test_photos_load_offline():
    for name in data.PHOTOS:
        img = data.load_photo(name)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    # the licences of the photos the generator uses; every photo (people too) has one
    assert set(data.photo_licences()) <= set(data.PHOTOS) and all(lic for _, lic in data.PHOTOS.values())


def test_matplotlibs_sample_photo_is_read_without_matplotlib():
    """grace_hopper is a file of matplotlib's sample data: read with OpenCV, without importing
    matplotlib, pixel for pixel what matplotlib's own reader gives."""
    import subprocess
    import sys

    code = ("import sys, hashlib; from lowlight.data import load_photo; im = load_photo('grace_hopper'); "
            "print(hashlib.sha256(im.tobytes()).hexdigest(), 'matplotlib' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    digest, imported = r.stdout.split()
    assert imported == "False"
    import matplotlib.cbook
    import matplotlib.image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        reference = np.ascontiguousarray(np.asarray(matplotlib.image.imread(fh, format="jpg"))[..., :3])
    assert digest == _h(reference) and np.array_equal(data.load_photo("grace_hopper"), reference)


def test_data_functions_take_a_resolved_profile(tmp_path):
    calls = {"build_llmatte": lambda: data.build_llmatte("smoke", root=tmp_path),
             "llmatte_dir": lambda: data.llmatte_dir(None),
             "LLMatteDataset": lambda: data.LLMatteDataset("test", "smoke", path=tmp_path),
             "finetune_llmatte": lambda: data.finetune_llmatte("smoke"),
             "LLMatteSpec.from_profile": lambda: data.LLMatteSpec.from_profile(SMOKE.data)}
    for name, call in calls.items():
        with pytest.raises(TypeError, match="argument 'profile' must be a lowlight.config.Profile"):
            call()
    assert not list(tmp_path.iterdir())
    assert data.LLMatteSpec.from_profile(SMOKE) == data.LLMatteSpec(seed=0, image_size=64, eval_size=64, n_train=16,
                                                                    n_val=8, n_test=8)


# --------------------------------------------------------------------------- samples and cache
def test_make_sample_is_a_pure_function_of_its_arguments():
    a = data.make_sample(7, "train", 64, seed=3)
    data.make_sample(8, "train", 64, seed=3)            # generating others in between changes nothing
    b = data.make_sample(7, "train", 64, seed=3)
    keys = ("normal", "low", "alpha", "trimap")
    assert _h(*[a[k] for k in keys]) == _h(*[b[k] for k in keys])
    assert a["meta"] == b["meta"]
    c = data.make_sample(7, "train", 64, seed=4)
    assert _h(c["normal"]) != _h(a["normal"])
    # alpha is the ground truth of both versions; the low-light one is darker
    assert a["low"].mean() < a["normal"].mean()
    assert a["meta"]["ev"] < 0 and a["meta"]["lowlight"] == "physical"


def test_article_formula_option():
    s = data.make_sample(0, "test", 64, seed=0, lowlight="article")
    assert s["meta"]["lowlight"] == "article" and s["meta"]["gamma"] == 0.4
    assert s["low"].mean() < s["normal"].mean() and s["meta"]["ev"] < 0
    with pytest.raises(ValueError, match="lowlight"):
        data.make_sample(0, "test", 64, lowlight="moonlight")


def test_build_is_byte_identical_and_cached(smoke_build, tmp_path):
    root, path = smoke_build
    m1 = data.load_manifest(path)
    assert m1["seed"] == SMOKE.seed
    for split, n in (("train", SMOKE.data.n_train), ("val", SMOKE.data.n_val), ("test", SMOKE.data.n_test)):
        assert len(m1["splits"][split]) == n
        assert len(list((path / split / "low").glob("*.png"))) == n
    # exposure / simulator parameters of every sample are in the manifest
    it = m1["splits"]["test"][0]
    for k in ("ev", "exposure", "full_well", "read_noise", "family", "files"):
        assert k in it
    # a second build elsewhere gives the same bytes
    path2 = data.build_llmatte(SMOKE, root=tmp_path, progress=False, verbose=False)
    m2 = data.load_manifest(path2)
    assert path2.name == path.name
    assert json.dumps(m1["splits"], sort_keys=True) == json.dumps(m2["splits"], sort_keys=True)
    # the cache is reused (nothing rewritten) while the parameters do not change
    stamp = (path / "manifest.json").stat().st_mtime_ns
    assert data.build_llmatte(SMOKE, root=root, progress=False, verbose=False) == path
    assert (path / "manifest.json").stat().st_mtime_ns == stamp
    assert data.verify_llmatte(path) == []


def test_changed_parameters_rebuild_and_test_split_is_stable(smoke_build, tmp_path):
    root, path = smoke_build
    other = data.build_llmatte(SMOKE, root=tmp_path, progress=False, verbose=False, n_train=2, n_val=1)
    assert other.name != path.name
    a, b = data.load_manifest(path), data.load_manifest(other)
    # the test split does not depend on how many training samples exist
    assert [i["files"] for i in a["splits"]["test"]] == [i["files"] for i in b["splits"]["test"]]
    # tampering is detected
    f = other / "test" / "alpha" / "test-00000.png"
    f.write_bytes(f.read_bytes()[:-20])
    assert data.verify_llmatte(other) == [str(f)]


def test_parallel_generation_gives_the_same_bytes(tmp_path):
    small = dict(n_train=3, n_val=1, n_test=4, progress=False, verbose=False)
    one = data.build_llmatte(SMOKE, root=tmp_path / "one", workers=1, **small)
    two = data.build_llmatte(SMOKE, root=tmp_path / "two", workers=2, **small)
    assert data.load_manifest(one)["splits"] == data.load_manifest(two)["splits"]


def test_cache_key_follows_code_not_prose(tmp_path):
    from lowlight.data.llmatte_cache import _code_fingerprint

    def fp(src):
        f = tmp_path / "m.py"
        f.write_text(src)
        return _code_fingerprint(f)

    base = fp('"""Doc."""\ndef f(x):\n    """Doc."""\n    return x + 1  # note\n')
    assert fp('"""Other doc."""\n# a comment\ndef f(x):\n    return x + 1\n') == base
    assert fp('"""Doc."""\ndef f(x):\n    return x + 2\n') != base


# --------------------------------------------------------------------------- torch datasets
def test_llmatte_dataset_samples_and_collate(smoke_build):
    import torch

    _, path = smoke_build
    ds = data.LLMatteDataset("test", profile=SMOKE, path=path)
    assert len(ds) == SMOKE.data.n_test
    s = ds[0]
    assert s["image"].shape == (3, 64, 64) and s["image"].dtype == torch.float32
    assert s["normal"].shape == (3, 64, 64)
    assert s["alpha"].shape == (1, 64, 64) and 0 <= s["alpha"].min() and s["alpha"].max() <= 1
    assert set(torch.unique(s["trimap"]).tolist()) <= {0.0, 0.5, 1.0}
    assert s["valid"].shape == (1, 64, 64)
    raw = data.read_sample(path, "test", s["meta"]["id"])
    assert torch.equal(s["image"], torch.from_numpy(raw["low"]).permute(2, 0, 1).float() / 255)
    batch = next(iter(data.make_loader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 64, 64)
    assert isinstance(batch["meta"]["id"], list) and batch["meta"]["ev"].shape == (4,)


def test_modes_and_determinism_across_workers(smoke_build):
    import torch

    _, path = smoke_build
    low = data.LLMatteDataset("train", profile=SMOKE, path=path, mode="low")
    normal = data.LLMatteDataset("train", profile=SMOKE, path=path, mode="normal")
    assert torch.equal(normal[1]["image"], normal[1]["normal"])
    assert not torch.equal(low[1]["image"], low[1]["normal"])
    mixed = data.LLMatteDataset("train", profile=SMOKE, path=path, mode="mixed", normal_fraction=0.5)
    inputs = [mixed[i]["meta"]["input"] for i in range(len(mixed))]
    assert {"low", "normal"} == set(inputs)
    assert inputs == [mixed[i]["meta"]["input"] for i in range(len(mixed))]
    mixed.set_epoch(1)
    assert inputs != [mixed[i]["meta"]["input"] for i in range(len(mixed))]
    mixed.set_epoch(0)
    b0 = [b["image"] for b in data.make_loader(mixed, 4, shuffle=True, seed=1, num_workers=0)]
    b2 = [b["image"] for b in data.make_loader(mixed, 4, shuffle=True, seed=1, num_workers=2)]
    assert all(torch.equal(x, y) for x, y in zip(b0, b2))
    with pytest.raises(ValueError, match="mode"):
        data.LLMatteDataset("train", profile=SMOKE, path=path, mode="dark")


def test_transform_hook_albumentations_and_callable(smoke_build):
    import albumentations as A
    import torch

    _, path = smoke_build
    plain = data.LLMatteDataset("val", profile=SMOKE, path=path)
    flip = A.Compose([A.HorizontalFlip(p=1.0)], additional_targets={"alpha": "mask", "normal": "image"})
    ds = data.LLMatteDataset("val", profile=SMOKE, path=path, transform=flip)
    a, b = plain[2], ds[2]
    assert torch.equal(b["image"], a["image"].flip(-1))
    assert torch.equal(b["alpha"], a["alpha"].flip(-1))
    assert torch.equal(b["normal"], a["normal"].flip(-1))
    # without 'normal' declared, the sample has no (misaligned) normal image
    only_alpha = A.Compose([A.HorizontalFlip(p=1.0)], additional_targets={"alpha": "mask"})
    assert "normal" not in data.LLMatteDataset("val", profile=SMOKE, path=path, transform=only_alpha)[0]
    with pytest.raises(ValueError, match="additional_targets=\\{'alpha': 'mask'\\}"):
        data.LLMatteDataset("val", profile=SMOKE, path=path, transform=A.Compose([A.HorizontalFlip(p=1)]))

    def crop(image, alpha, rng):
        y = int(rng.integers(0, 32))
        return {"image": image[y:y + 32, :32], "alpha": alpha[y:y + 32, :32]}

    c = data.LLMatteDataset("val", profile=SMOKE, path=path, transform=crop)
    s = c[0]
    assert s["image"].shape == (3, 32, 32) and s["trimap"].shape == (1, 32, 32) and "normal" not in s
    assert torch.equal(c[0]["image"], s["image"])        # the hook's rng is per sample


# --------------------------------------------------------------------------- real data folders
def _write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), img)
    return path


def _pairs_folder(root: Path, n: int = 3, size=(40, 56)) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        _write(root / "image" / f"p{i}.jpg", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
        a = np.zeros(size, np.uint8); a[8:30, 10:40] = 255; a[30:34, 10:40] = 128
        _write(root / "alpha" / f"p{i}.png", a)
    return root


def _comp1k_folder(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for i in range(2):
        _write(root / "fg" / f"f{i}.png", rng.integers(0, 256, (36, 48, 3), dtype=np.uint8))
        a = np.zeros((36, 48), np.uint8); a[5:30, 5:40] = 255; a[30:33, 5:40] = 100
        _write(root / "alpha" / f"f{i}.png", a)
    for j in range(3):
        _write(root / "bg" / f"b{j}.jpg", rng.integers(0, 256, (50 + 10 * j, 70, 3), dtype=np.uint8))
    return root


def test_image_alpha_folder_loads(tmp_path):
    import torch

    root = _pairs_folder(tmp_path / "am2k")
    ds = data.ImageAlphaFolder(root, size=32)
    assert len(ds) == 3 and ds.check() == 3
    s = ds[0]
    assert s["image"].shape == (3, 32, 32) and s["alpha"].shape == (1, 32, 32)
    assert s["meta"]["id"] == "p0" and s["meta"]["family"] == "real" and s["meta"]["ev"] < 0
    assert s["image"].mean() < s["normal"].mean()       # low light applied on the fly
    asis = data.ImageAlphaFolder(root, lowlight=None)
    s = asis[1]
    assert torch.equal(s["image"], s["normal"]) and s["image"].shape == (3, 40, 56)
    # re-composited on new backgrounds: where alpha is 0 the pixel is the new background
    _write(tmp_path / "newbg" / "blue.png", np.full((64, 64, 3), (10, 20, 230), np.uint8))
    rc = data.ImageAlphaFolder(root, lowlight=None, backgrounds=tmp_path / "newbg")
    s = rc[0]
    a = s["alpha"][0]
    assert torch.allclose(s["image"][:, a == 0].T, torch.tensor([10, 20, 230]) / 255.0)


def test_generated_split_reads_as_image_alpha_folder(smoke_build):
    """A generated split is also a plain image/alpha folder: every manifest id is paired, in order,
    and each sample holds exactly that id's normal image and alpha (no low-light simulation)."""
    import torch

    _, path = smoke_build
    ds = data.ImageAlphaFolder(path / "test", image_dir="normal", alpha_dir="alpha", lowlight=None)
    ids = [e["id"] for e in data.load_manifest(path)["splits"]["test"]]
    assert len(ds) == SMOKE.data.n_test == len(ids)
    for i in (0, len(ds) - 1):
        s = ds[i]
        assert s["meta"]["id"] == sorted(ids)[i]
        img = data.read_image(path / "test" / "normal" / f"{s['meta']['id']}.png")
        alpha = data.read_alpha(path / "test" / "alpha" / f"{s['meta']['id']}.png")
        assert torch.equal(s["normal"], torch.from_numpy(img).permute(2, 0, 1).float() / 255)
        assert torch.equal(s["image"], s["normal"])
        assert torch.allclose(s["alpha"][0], torch.from_numpy(alpha).float() / 255, atol=1e-7)


def test_composition1k_folder_loads(tmp_path):
    import torch

    root = _comp1k_folder(tmp_path / "c1k")
    ds = data.Composition1kFolder(root, bg_per_fg=3, lowlight=None, mode="normal")
    assert len(ds) == 6
    s = ds[0]
    fg = torch.from_numpy(data.read_image(root / "fg" / "f0.png")).permute(2, 0, 1).float() / 255
    opaque = s["alpha"][0] == 1
    assert torch.equal(s["image"][:, opaque], fg[:, opaque])   # F where alpha is 1
    assert ds[0]["meta"]["id"] != ds[1]["meta"]["id"]          # another background
    low = data.Composition1kFolder(root, size=24)
    assert low[1]["image"].shape == (3, 24, 24) and low[1]["image"].mean() < low[1]["normal"].mean()


# every bad input gets an error that names the file or folder
def test_error_missing_folder(tmp_path):
    with pytest.raises(data.DataFolderError, match="nowhere: data folder not found"):
        data.ImageAlphaFolder(tmp_path / "nowhere")
    (tmp_path / "x" / "image").mkdir(parents=True)
    with pytest.raises(data.DataFolderError, match=r"alpha: alpha folder not found|image folder is empty"):
        data.ImageAlphaFolder(tmp_path / "x")


def test_error_empty_folder(tmp_path):
    root = _pairs_folder(tmp_path / "d")
    shutil.rmtree(root / "alpha"); (root / "alpha").mkdir()
    with pytest.raises(data.DataFolderError, match=r"alpha: alpha folder is empty"):
        data.ImageAlphaFolder(root)
    c = _comp1k_folder(tmp_path / "c")
    shutil.rmtree(c / "bg"); (c / "bg").mkdir()
    with pytest.raises(data.DataFolderError, match=r"bg: background folder is empty"):
        data.Composition1kFolder(c)


def test_error_missing_pair(tmp_path):
    root = _pairs_folder(tmp_path / "d")
    os.remove(root / "alpha" / "p1.png")
    with pytest.raises(data.DataFolderError, match=r"p1\.jpg: missing pair: no alpha file named p1\.\*"):
        data.ImageAlphaFolder(root)
    root2 = _pairs_folder(tmp_path / "e")
    os.remove(root2 / "image" / "p2.jpg")
    with pytest.raises(data.DataFolderError, match=r"p2\.png: missing pair: no image file"):
        data.ImageAlphaFolder(root2)


def test_error_size_mismatch(tmp_path):
    root = _pairs_folder(tmp_path / "d")
    _write(root / "alpha" / "p0.png", np.zeros((41, 56), np.uint8))
    ds = data.ImageAlphaFolder(root)
    with pytest.raises(data.DataFolderError, match=r"p0\.png: size mismatch: 56x41 .* p0\.jpg is 56x40"):
        ds[0]


def test_error_alpha_not_single_channel(tmp_path):
    root = _pairs_folder(tmp_path / "d")
    _write(root / "alpha" / "p2.png", np.zeros((40, 56, 3), np.uint8))
    with pytest.raises(data.DataFolderError, match=r"p2\.png: alpha matte has 3 channels; expected a single-channel"):
        data.ImageAlphaFolder(root)[2]


def test_error_16_bit(tmp_path):
    root = _pairs_folder(tmp_path / "d")
    _write(root / "alpha" / "p1.png", np.zeros((40, 56), np.uint16))
    with pytest.raises(data.DataFolderError, match=r"p1\.png: 16-bit image; expected 8-bit"):
        data.ImageAlphaFolder(root).check()


def test_error_unreadable_image(tmp_path):
    root = _pairs_folder(tmp_path / "d")
    (root / "image" / "p0.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(data.DataFolderError, match=r"p0\.jpg: cannot read this file as an image"):
        data.ImageAlphaFolder(root)[0]


def test_error_duplicate_stem(tmp_path):
    root = _pairs_folder(tmp_path / "d")
    _write(root / "image" / "p0.png", np.zeros((40, 56, 3), np.uint8))
    with pytest.raises(data.DataFolderError, match=r"two image files share the name 'p0'"):
        data.ImageAlphaFolder(root)


# --------------------------------------------------------------------------- bad inputs found by the sweep
def test_binary_01_mask_is_refused_not_trained_on(tmp_path):
    """A 0/1 mask saved as an 8-bit PNG reads as alpha <= 1/255 (an almost empty matte): it was
    silently accepted by both folder loaders; now the error names the file and the conversion."""
    root = _pairs_folder(tmp_path / "d")
    mask = np.zeros((40, 56), np.uint8); mask[8:30, 10:40] = 1
    _write(root / "alpha" / "p1.png", mask)
    ds = data.ImageAlphaFolder(root, lowlight=None)
    ds[0]                                                   # the good pairs still load
    with pytest.raises(data.DataFolderError, match=r"p1\.png: alpha matte holds only 0 and 1 .*\* 255"):
        ds[1]
    _write(root / "alpha" / "p2.png", np.ones((40, 56), np.uint8))        # all 1: also a 0/1 export
    with pytest.raises(data.DataFolderError, match=r"p2\.png: alpha matte holds only 1 everywhere"):
        ds[2]
    _write(root / "alpha" / "p0.png", np.zeros((40, 56), np.uint8))       # all 0 is a valid (empty) matte
    assert float(ds[0]["alpha"].max()) == 0.0
    c = _comp1k_folder(tmp_path / "c")
    _write(c / "alpha" / "f1.png", mask[:36, :48])
    with pytest.raises(data.DataFolderError, match=r"f1\.png: alpha matte holds only 0 and 1"):
        data.Composition1kFolder(c, lowlight=None)[1]


def test_check_reads_every_file_and_names_all_bad_ones(tmp_path):
    """`check()` (called by training's make_datasets before the first epoch) reads every
    file of both folder layouts, backgrounds included, and names every bad file."""
    c = _comp1k_folder(tmp_path / "c")
    ds = data.Composition1kFolder(c, bg_per_fg=2, lowlight=None)
    assert ds.check() == 4
    (c / "bg" / "b1.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    (c / "fg" / "f0.png").write_bytes(b"")
    with pytest.raises(data.DataFolderError) as err:
        data.Composition1kFolder(c, lowlight=None).check()
    msg = str(err.value)
    assert msg.startswith(str(c / "fg" / "f0.png")) and "2 bad file(s)" in msg
    assert "b1.jpg: cannot read this file as an image" in msg
    root = _pairs_folder(tmp_path / "d")
    (root / "image" / "p2.jpg").write_bytes(b"not an image")
    _write(tmp_path / "bgs" / "ok.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "bgs" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(data.DataFolderError, match=r"p2\.jpg: bad file .*2 bad file\(s\)(.|\n)*bgs/bad\.png"):
        data.ImageAlphaFolder(root, backgrounds=tmp_path / "bgs").check()


def test_training_data_path_fails_before_training(tmp_path):
    """`--data-path` with a corrupt file: make_datasets raises up front, naming the file."""
    from lowlight.training.data import make_datasets

    c = _comp1k_folder(tmp_path / "c")
    (c / "alpha" / "f1.png").write_bytes(b"garbage")
    with pytest.raises(data.DataFolderError, match=r"f1\.png: bad file in data folder"):
        make_datasets(SMOKE, c, augment=False)


# --------------------------------------------------------------------------- issue 23: the LL-Matte cache checks itself
@pytest.fixture
def cached_copy(smoke_build, tmp_path):
    """A private copy of the smoke build under ``tmp_path`` (the folder name, so the cache key,
    unchanged): ``(root, folder)``, free to damage."""
    _, path = smoke_build
    root = tmp_path / "llmatte"
    shutil.copytree(path, root / path.name)
    return root, root / path.name


def _rebuild(root, **kw):
    return data.build_llmatte(SMOKE, root=root, progress=False, verbose=False, **kw)


def test_cache_reuse_checks_sizes_and_hashes_and_names_the_damaged_file(cached_copy):
    """A cached PNG with one byte changed (same size), truncated, or deleted was reused unchecked;
    now the reuse fails naming the file and saying what to do, and force=True regenerates it."""
    root, path = cached_copy
    assert _rebuild(root) == path                                   # intact: reused
    f = path / "test" / "low" / "test-00003.png"
    good = f.read_bytes()
    f.write_bytes(good[:200] + bytes([good[200] ^ 0x01]) + good[201:])
    with pytest.raises(data.DataFolderError, match=r"SHA-256 differs") as err:
        _rebuild(root)
    msg = str(err.value)
    assert msg.startswith(str(f)) and "force=True" in msg and str(path) in msg
    f.write_bytes(good[:-20])
    with pytest.raises(data.DataFolderError, match=rf"{f.name}: {len(good) - 20} bytes, the manifest records {len(good)}"):
        _rebuild(root)
    f.unlink()
    with pytest.raises(data.DataFolderError, match=rf"{f.name}: missing"):
        _rebuild(root)
    assert _rebuild(root, force=True) == path
    assert f.read_bytes() == good and data.verify_llmatte(path) == []
    assert _rebuild(root) == path
    m = data.load_manifest(path)                                    # what the sizes check reads
    listed = {f"{s}/{k}/{it['id']}.png" for s, items in m["splits"].items() for it in items for k in it["files"]}
    assert set(m["file_bytes"]) == listed
    assert all((path / rel).stat().st_size == n for rel, n in m["file_bytes"].items())


def test_dead_builds_temp_folder_is_removed_on_next_start(tmp_path, capsys):
    """A killed build left ``.tmp-<profile>-<key>-<pid>`` (37 MB on quick) forever; the next build
    removes the temporary folders of processes that no longer run, and only those."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    key = data.llmatte_dir(SMOKE, root=tmp_path).name.rsplit("-", 1)[1]
    stale = tmp_path / f".tmp-smoke-{key}-{pid}"
    (stale / "train" / "low").mkdir(parents=True)
    (stale / "train" / "low" / "train-00000.png").write_bytes(b"half a data set")
    running = tmp_path / f".tmp-quick-0123456789ab-{os.getppid()}"     # a build still at work elsewhere
    not_ours = tmp_path / f".tmp-notes-{pid}"
    running.mkdir()
    not_ours.mkdir()
    path = data.build_llmatte(SMOKE, root=tmp_path, progress=False, verbose=True)
    assert not stale.exists() and running.is_dir() and not_ours.is_dir()
    assert f"removed {stale}" in capsys.readouterr().out.replace(os.sep + os.sep, os.sep)
    assert data.verify_llmatte(path) == []


def test_corrupt_manifest_error_names_the_file_and_what_to_do(cached_copy):
    """A corrupt manifest.json raised a bare JSONDecodeError ("Expecting value: line 1 column 1")
    that named no file; every reader now names it and says what to do."""
    root, path = cached_copy
    man = path / "manifest.json"
    text = man.read_text()
    for bad, why in ((text[: len(text) // 2], "cannot be read as JSON"), ("[]", "not an LL-Matte manifest"),
                     ('{"format": "llmatte/1", "splits": {"test": [{"id": 3}]}}', "'splits' are not lists"),
                     (b"\xff\xfe{}", "cannot be read as JSON")):
        man.write_bytes(bad if isinstance(bad, bytes) else bad.encode())
        for read in (lambda: data.load_manifest(path), lambda: _rebuild(root),
                     lambda: data.LLMatteDataset("test", SMOKE, path=path)):
            with pytest.raises(data.DataFolderError) as err:
                read()
            msg = str(err.value)
            assert msg.startswith(f"{man}: ") and why in msg and "force=True" in msg, msg
    assert _rebuild(root, force=True) == path and data.verify_llmatte(path) == []


def test_truncated_cached_png_error_names_the_file(cached_copy):
    """A cached PNG truncated after the dataset was opened: reading the sample (dataset, loader,
    read_sample) fails naming the file, the LL-Matte folder and how to regenerate it."""
    _, path = cached_copy
    ds = data.LLMatteDataset("test", SMOKE, path=path)
    for kind, index in (("low", 1), ("alpha", 2)):
        f = path / "test" / kind / f"test-{index:05d}.png"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        for read in (lambda: ds[index], lambda: data.read_sample(path, "test", f"test-{index:05d}"),
                     lambda: next(iter(data.make_loader(_subset(ds, index), batch_size=1)))):
            with pytest.raises(data.DataFolderError) as err:
                read()
            msg = str(err.value)
            assert msg.startswith(str(f)) and "cannot read this file as an image" in msg, msg
            assert f"LL-Matte data in {path}" in msg and "force=True" in msg
    assert ds[0]["image"].shape[-1] == SMOKE.data.eval_size          # the other samples still read


def _subset(ds, index):
    import torch

    return torch.utils.data.Subset(ds, [index])
