"""lowlight.augment: alpha stays soft and untouched by photometric transforms, the darkening
gamma darkens, cut-out holes respect their bound, determinism, DataLoader workers; and the
throughput helpers of notebook 02 (lowlight.teaching.AugmentedSamples, loader_rates)."""
import warnings

import albumentations as A
import numpy as np
import pytest
import torch

from lowlight import augment as aug
from lowlight.color import luminance


def _sample(h=160, w=200, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip((min(h, w) / 3 - np.hypot(yy - h / 2, xx - w / 2)) / 8, 0, 1).astype(np.float32)
    # thin soft strands
    for k in range(6):
        x = int(rng.integers(10, w - 10))
        alpha[:, x] = np.maximum(alpha[:, x], 0.35)
    return img, alpha


def _frac(a):
    return int(((a > 1e-3) & (a < 1 - 1e-3)).sum())


def test_geometric_equal_scale_keeps_fractional_alpha():
    img, alpha = _sample(128, 128)
    t = aug.MattingCompose([aug.UnknownCenteredCrop((128, 128), scale=(1, 1), ratio=(1, 1)), A.HorizontalFlip(p=1)], seed=0)
    out = t(image=img, alpha=alpha)
    assert out["alpha"].min() >= 0 and out["alpha"].max() <= 1
    assert _frac(out["alpha"]) >= 0.95 * _frac(alpha)
    assert np.array_equal(out["alpha"], alpha[:, ::-1])


def test_full_pipeline_alpha_range_and_soft():
    img, alpha = _sample()
    for seed in range(8):
        out = aug.train_transform(96, seed=seed)(image=img, alpha=alpha)
        a = out["alpha"]
        assert a.shape == (96, 96) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
        assert _frac(a) > 0  # never binarised
        assert out["image"].shape == (96, 96, 3) and out["image"].dtype == np.uint8


def test_uint8_alpha_gives_the_float_result_in_8_bits():
    """An 8-bit matte goes through the same crop, flip and resize as its float version (same seed):
    the image is identical and the matte equal within 1.5 grey levels (rounding before and after)."""
    img, alpha = _sample()
    for seed in range(4):
        f = aug.train_transform(64, seed=seed)(image=img, alpha=alpha)
        u = aug.train_transform(64, seed=seed)(image=img, alpha=(alpha * 255).round().astype(np.uint8))
        assert u["alpha"].dtype == np.uint8 and u["alpha"].shape == (64, 64)
        assert np.array_equal(u["image"], f["image"])
        assert np.abs(u["alpha"] / 255.0 - f["alpha"]).max() <= 1.5 / 255
        assert _frac(u["alpha"] / 255.0) > 0


def test_photometric_transforms_leave_alpha_bit_identical():
    img, alpha = _sample()
    t = aug.train_transform(64, photometric=True, cutout=False, unknown_crop=False, darken="simulate", seed=3)
    geo_only = aug.train_transform(64, photometric=False, cutout=False, unknown_crop=False, seed=3)
    # same seed -> same crop/flip draws come first, so alpha must agree bit for bit
    a1 = t(image=img, alpha=alpha)["alpha"]
    a2 = geo_only(image=img, alpha=alpha)["alpha"]
    assert np.array_equal(a1, a2)
    # and each photometric transform alone never changes alpha
    for tr in [A.ColorJitter(0.3, 0.3, 0.2, 0.1, p=1), A.GaussNoise(std_range=aug.GAUSS_NOISE_STD, p=1),
               A.RandomGamma(gamma_limit=aug.DARKENING_GAMMA_LIMIT, p=1), A.RandomBrightnessContrast(0.4, 0.4, p=1),
               A.MotionBlur(blur_limit=7, p=1), aug.SimulateLowLight(p=1)]:
        out = aug.MattingCompose([tr], seed=0)(image=img, alpha=alpha)
        assert np.array_equal(out["alpha"], alpha), type(tr).__name__


def test_darkening_gamma_darkens_and_article_gamma_brightens():
    flat = np.full((32, 32, 3), 100, np.uint8)
    a = np.zeros((32, 32), np.float32)
    ours = aug.MattingCompose([A.RandomGamma(gamma_limit=aug.DARKENING_GAMMA_LIMIT, p=1)], seed=0)(image=flat, alpha=a)
    article = aug.MattingCompose([A.RandomGamma(gamma_limit=(30, 60), p=1)], seed=0)(image=flat, alpha=a)
    assert luminance(ours["image"]).mean() < luminance(flat).mean() * 0.5
    assert article["image"].mean() > 150          # the article's setting brightens a flat 100


def test_gauss_noise_std_matches_article_variance():
    flat = np.full((256, 256, 3), 128, np.uint8)
    out = aug.MattingCompose([A.GaussNoise(std_range=aug.GAUSS_NOISE_STD, p=1)], seed=0)(image=flat, alpha=np.zeros((256, 256), np.float32))
    var = out["image"].astype(float).var()
    assert 10 * 0.8 <= var <= 50 * 1.2


def test_article_var_limit_is_ignored_with_a_warning():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        A.GaussNoise(var_limit=(10.0, 50.0))
    assert any("var_limit" in str(x.message) for x in w)


def test_cutout_area_bound_and_valid_mask():
    img, alpha = _sample(120, 150)
    t = aug.MattingCompose([aug.CutoutWithAlpha(max_area_ratio=0.1, p=1)], seed=0)
    for seed in range(30):
        t.set_random_seed(seed)
        out = t(image=img, alpha=alpha)
        holes = out["valid"] == 0
        assert 0 < holes.sum() <= 0.1 * holes.size
        assert np.array_equal(out["alpha"], alpha)                # alpha unchanged
        assert np.array_equal(out["image"][~holes], img[~holes])   # image unchanged outside holes
    sup = aug.MattingCompose([aug.CutoutWithAlpha(p=1, supervise_holes=True)], seed=0)(image=img, alpha=alpha)
    assert sup["valid"].all()


def test_same_seed_same_sample():
    img, alpha = _sample()
    a = aug.train_transform(64, darken="simulate", seed=11)(image=img, alpha=alpha)
    b = aug.train_transform(64, darken="simulate", seed=11)(image=img, alpha=alpha)
    c = aug.train_transform(64, darken="simulate", seed=12)(image=img, alpha=alpha)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["image"], c["image"])


def test_unknown_crop_contains_edges():
    img, alpha = _sample(400, 400)
    t = aug.MattingCompose([aug.UnknownCenteredCrop((64, 64), scale=(0.05, 0.05), p_unknown=1.0)], seed=0)
    hits = 0
    for s in range(20):
        t.set_random_seed(s)
        hits += _frac(t(image=img, alpha=alpha)["alpha"]) > 0
    assert hits == 20


def test_eval_transform_pads_to_multiple_and_marks_padding():
    img, alpha = _sample(100, 130)
    out = aug.eval_transform(32)(image=img, alpha=alpha)
    assert out["image"].shape[:2] == (128, 160) and out["content_hw"] == (100, 130)
    assert out["valid"][:100, :130].all() and not out["valid"][100:].any() and not out["valid"][:, 130:].any()
    assert np.array_equal(out["alpha"][:100, :130], alpha)
    again = aug.eval_transform(32)(image=img, alpha=alpha)
    assert all(np.array_equal(out[k], again[k]) for k in ("image", "alpha", "valid"))


def test_bad_inputs_named():
    img, alpha = _sample()
    t = aug.train_transform(32)
    with pytest.raises(ValueError, match="alpha"):
        t(image=img, alpha=np.stack([alpha] * 3, -1))
    with pytest.raises(ValueError, match="does not match"):
        t(image=img, alpha=alpha[:10])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        t(image=img, alpha=alpha * 3)
    with pytest.raises(ValueError, match="darken"):
        aug.train_transform(32, darken="night")


class _ToyDataset(torch.utils.data.Dataset):
    def __init__(self, transform):
        self.t = transform
        self.img, self.alpha = _sample(96, 96)

    def __len__(self):
        return 8

    def __getitem__(self, i):
        self.t.set_random_seed(1000 + i)
        out = self.t(image=self.img, alpha=self.alpha)
        return torch.from_numpy(out["image"]).float(), torch.from_numpy(out["alpha"])


def test_works_with_dataloader_workers():
    ds = _ToyDataset(aug.train_transform(48, darken="simulate"))
    single = [b for b in torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0)]
    multi = [b for b in torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)]
    for (x0, a0), (x1, a1) in zip(single, multi):
        assert torch.equal(x0, x1) and torch.equal(a0, a1)


def _sources(n=2):
    out = []
    for k in range(n):
        img, alpha = _sample(80, 80, seed=k)
        out.append({"normal": img, "low": (img // 8).astype(np.uint8), "alpha": (alpha * 255).round().astype(np.uint8)})
    return out


def test_augmented_samples_moved_to_teaching_and_seeded_by_index():
    from lowlight.teaching import AugmentedSamples

    assert not hasattr(aug, "AugmentedSamples")          # a teaching helper, not part of the pipeline module
    ds = AugmentedSamples(aug.train_transform(48), _sources(), 5, key="low")
    assert len(ds) == 5
    x, a = ds[3]
    assert x.shape == (48, 48, 3) and x.dtype == torch.uint8 and a.shape == (48, 48) and a.dtype == torch.float32
    x2, a2 = ds[3]
    assert torch.equal(x, x2) and torch.equal(a, a2)      # sample i is seeded with i
    geo = aug.train_transform(48, photometric=False, cutout=False)
    dark, bright = AugmentedSamples(geo, _sources(), 5, key="low"), AugmentedSamples(geo, _sources(), 5)
    assert dark[2][0].float().mean() < bright[2][0].float().mean() / 4   # ``key`` picks the source image
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(ValueError, match="sources"):
        AugmentedSamples(aug.train_transform(48), [], 3)
    with pytest.raises(ValueError, match="low"):
        AugmentedSamples(aug.train_transform(48), [{"normal": x.numpy(), "alpha": a.numpy()}], 3, key="low")


def test_loader_rates_reports_both_epochs():
    from lowlight.teaching import AugmentedSamples, loader_rates

    ds = AugmentedSamples(aug.train_transform(32), _sources(), 8)
    for workers in (0, 2):
        r = loader_rates(ds, workers, batch_size=4)
        assert set(r) == {"first_epoch", "steady", "startup_s"}
        assert r["first_epoch"] > 0 and r["steady"] > 0 and r["startup_s"] >= 0
    assert loader_rates(ds, 0, batch_size=4, direct=True)["direct"] > 0
