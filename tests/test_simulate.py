"""Behaviour of lowlight.simulate: the article's formula, the physical model, its noise statistics."""
import numpy as np
import pytest
import torch

from lowlight import simulate as sim
from lowlight import color
from lowlight.color import luminance


def test_article_formula_bit_for_bit():
    """An independent transcription of the article's §2.1 code, same Generator stream."""
    img = np.random.default_rng(5).integers(0, 256, (37, 41, 3), dtype=np.uint8)
    ours = sim.article_low_light(img, gamma=0.4, scale=0.3, rng=np.random.default_rng(123))
    g = np.random.default_rng(123)
    img_norm = img.astype(np.float32) / 255.0
    img_dark = img_norm ** (1 / 0.4) * 0.3
    noise = g.poisson(img_dark * 255) / 255.0
    expected = (np.clip(img_dark + noise * 0.05, 0, 1) * 255).astype(np.uint8)
    assert ours.dtype == np.uint8
    assert np.array_equal(ours, expected)


def test_article_formula_flaws_are_measurable():
    flat = np.full((128, 128, 3), 128, np.uint8)
    out = sim.article_low_light(flat, rng=np.random.default_rng(0)).astype(float)
    dark = (128 / 255) ** 2.5 * 0.3 * 255
    assert out.std() < 0.25                      # tiny noise: a fraction of one DN
    assert out.mean() > dark                     # biased upwards by the added Poisson mean
    assert len(np.unique(out)) <= 4


def test_article_keeps_alpha():
    rgba = np.random.default_rng(0).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    out = sim.article_low_light(rgba, rng=0)
    assert out.shape == rgba.shape and np.array_equal(out[..., 3], rgba[..., 3])


@pytest.mark.parametrize("mode", ["gaussian", "poisson"])
@pytest.mark.parametrize("level", [2e-3, 2e-2, 0.2])
def test_flat_patch_mean_and_variance_match_model(mode, level):
    p = sim.SimParams(full_well=2000.0, read_noise=4.0, shot_noise=mode)
    a, b = sim.noise_model(p)
    y = sim.simulate_linear(np.full((512, 512), level / p.exposure, np.float32), p, rng=np.random.default_rng(7))
    var_model = a * level + b
    assert abs(y.var() / var_model - 1) < 0.02
    # the mean is unbiased: within 2 % of the level, or 4 standard errors for the darkest patch
    se = np.sqrt(var_model / y.size)
    assert abs(y.mean() - level) < max(0.02 * level, 4 * se)


def test_noise_model_formula():
    p = sim.SimParams(full_well=1000.0, read_noise=2.0, gain=4.0)
    assert sim.noise_model(p) == pytest.approx((4.0 / 1000.0, (4.0 * 2.0 / 1000.0) ** 2))


def test_simulate_is_deterministic_and_darkens():
    img = np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    a = sim.simulate(img, rng=np.random.default_rng(9))
    b = sim.simulate(img, rng=np.random.default_rng(9))
    c = sim.simulate(img, rng=np.random.default_rng(10))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.dtype == np.uint8 and a.shape == img.shape
    assert luminance(a).mean() < 0.5 * luminance(img).mean()


def test_fast_path_equals_general_path_without_noise():
    img = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    p = sim.SimParams(shot_noise="none")
    fast = sim.simulate(img, p)
    general = sim.simulate(img.astype(np.float64) / 255, p)
    assert np.array_equal(fast, np.round(general * 255).astype(np.uint8))


def test_rgba_float_and_rounding():
    rgba = np.random.default_rng(3).random((16, 16, 4))
    out = sim.simulate(rgba, rng=0)
    assert out.dtype == rgba.dtype and np.array_equal(out[..., 3], rgba[..., 3])
    assert np.allclose(out[..., :3] * 255, np.round(out[..., :3] * 255))  # 8-bit levels


def test_noise_free_exposure_rounds_not_truncates():
    # a mid-grey at exposure 1, no noise: must come back unchanged (truncation would lose a level)
    img = np.full((4, 4, 3), 200, np.uint8)
    out = sim.simulate(img, sim.SimParams(exposure=1.0, cast=(1, 1, 1), shot_noise="none", read_noise=0.0))
    assert np.array_equal(out, img)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((8, 8), np.uint8), "HxWx3"),
        (np.zeros((8, 8, 1), np.uint8), "HxWx3"),
        (np.zeros((8, 8, 3), np.uint16), "uint8"),
        (np.full((8, 8, 3), 1.5), r"\[0, 1\]"),
        (np.full((8, 8, 3), np.nan), "NaN"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_images_are_named(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        sim.simulate(bad)
    with pytest.raises((ValueError, TypeError), match=match):
        sim.article_low_light(bad)


@pytest.mark.parametrize(
    "kw, field",
    [({"exposure": 0}, "exposure"), ({"exposure": 2.0}, "exposure"), ({"full_well": -1}, "full_well"),
     ({"read_noise": -0.1}, "read_noise"), ({"cast": (1, 1)}, "cast"), ({"shot_noise": "pink"}, "shot_noise"),
     ({"motion_length": 2.5}, "motion_length"), ({"adc_bits": 4}, "adc_bits")],
)
def test_bad_params_name_the_field(kw, field):
    with pytest.raises(ValueError, match=f"SimParams.{field}"):
        sim.SimParams(**kw)


def test_sample_params_within_documented_ranges():
    rng = np.random.default_rng(0)
    r = sim.PARAM_RANGES
    ps = [sim.sample_params(rng) for _ in range(300)]
    assert all(r["exposure"][0] <= p.exposure <= r["exposure"][1] for p in ps)
    assert all(r["full_well"][0] <= p.full_well <= r["full_well"][1] for p in ps)
    assert all(r["read_noise"][0] <= p.read_noise <= r["read_noise"][1] for p in ps)
    assert all(p.motion_length <= r["motion_length"][1] for p in ps)
    assert any(p.blur_sigma > 0 for p in ps) and any(p.blur_sigma == 0 for p in ps)
    assert sim.sample_params(np.random.default_rng(4)) == sim.sample_params(np.random.default_rng(4))


def test_torch_matches_numpy_without_noise():
    img = np.random.default_rng(4).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    params = [sim.SimParams(shot_noise="none"), sim.SimParams(shot_noise="none", blur_sigma=1.0, motion_length=5, motion_angle=40.0)]
    batch = torch.from_numpy(img).permute(2, 0, 1).float().div(255).unsqueeze(0).repeat(2, 1, 1, 1)
    out = sim.simulate_torch(batch, params)
    for i, p in enumerate(params):
        t = (out[i].permute(1, 2, 0).numpy() * 255).round().astype(int)
        assert np.abs(t - sim.simulate(img, p).astype(int)).max() <= 1


def test_torch_noise_statistics_and_determinism():
    p = sim.SimParams(full_well=2000.0, read_noise=4.0, cast=(1, 1, 1), adc_bits=16)
    level = 0.01  # linear output level (scene linear 0.4 at exposure 0.025)
    srgb = float(color.linear_to_srgb(level / p.exposure))
    batch = torch.full((2, 3, 128, 128), srgb)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = sim.simulate_torch(batch, p, generator=g1), sim.simulate_torch(batch, p, generator=g2)
    assert torch.equal(a, b)
    # back to linear light: the mean is the level (8-bit rounding adds a little spread)
    lin = color.srgb_to_linear(a.double())
    assert abs(lin.mean().item() / level - 1) < 0.02


def test_torch_bad_input():
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        sim.simulate_torch(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sim.simulate_torch(torch.full((1, 3, 8, 8), 2.0))
    with pytest.raises(ValueError, match="list of 2"):
        sim.simulate_torch(torch.zeros(2, 3, 8, 8), [sim.SimParams()])


def test_motion_kernel_normalised():
    for length in (2, 5, 7):
        k = sim.motion_kernel(length, 33.0)
        assert k.shape[0] % 2 == 1 and abs(k.sum() - 1) < 1e-6 and (k >= 0).all()


# --------------------------------------------------------------------------- bad inputs found by the sweep
@pytest.mark.parametrize("bad_alpha, match", [(5.0, r"alpha channel .*\[0, 1\].*5\]"), (np.nan, "alpha channel .*NaN")])
def test_rgba_float_alpha_is_validated(bad_alpha, match):
    rgba = np.random.default_rng(3).random((8, 8, 4)).astype(np.float32)
    rgba[2, 3, 3] = bad_alpha
    with pytest.raises(ValueError, match=match):
        sim.simulate(rgba, rng=0)
    with pytest.raises(ValueError, match=match):
        sim.article_low_light(rgba, rng=0)


def test_params_accept_numpy_scalars():
    p = sim.SimParams(exposure=np.float32(0.1), full_well=np.float64(3000), read_noise=np.int64(2),
                      motion_length=np.int64(3), motion_angle=np.float32(10), adc_bits=np.int32(10),
                      cast=np.array([1.0, 0.9, 0.8], np.float32))
    assert type(p.exposure) is float and type(p.motion_length) is int and type(p.adc_bits) is int
    assert p == sim.SimParams(exposure=float(np.float32(0.1)), full_well=3000.0, read_noise=2.0, motion_length=3,
                              motion_angle=10.0, adc_bits=10, cast=tuple(float(c) for c in np.float32([1, 0.9, 0.8])))
    import json
    json.dumps(p.to_dict())
    with pytest.raises(ValueError, match="SimParams.motion_length"):
        sim.SimParams(motion_length=True)


@pytest.mark.parametrize("field", ["full_well", "read_noise", "gain"])
def test_params_out_of_range_are_named(field):
    # full_well=1e30 with Poisson noise used to end in numpy's bare "lam value too large"
    with pytest.raises(ValueError, match=f"SimParams.{field}: expected a finite number .* <= "):
        sim.SimParams(**{field: 1e30}, shot_noise="poisson")
    big = sim.SimParams(full_well=sim.MAX_FULL_WELL, exposure=1.0, shot_noise="poisson")
    assert sim.simulate(np.full((4, 4, 3), 255, np.uint8), big, rng=0).shape == (4, 4, 3)


def test_kernel_larger_than_image_is_refused_quickly():
    import time

    img = np.zeros((32, 40, 3), np.uint8)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"SimParams.motion_length=10000: .* 40x32 \(WxH\) image.*<= 63"):
        sim.simulate(img, sim.SimParams(motion_length=10000))
    assert time.perf_counter() - t0 < 1.0                      # was 27 s
    with pytest.raises(ValueError, match=r"SimParams.blur_sigma=50: .*40x32"):
        sim.simulate(img, sim.SimParams(blur_sigma=50.0))
    # the largest kernels that fit run on both paths
    fits = sim.SimParams(blur_sigma=10.0, motion_length=63, shot_noise="none")
    assert sim.simulate(img, fits).shape == img.shape
    assert sim.simulate_torch(torch.zeros(1, 3, 32, 40), fits).shape == (1, 3, 32, 40)


def test_torch_blur_larger_than_image_and_empty_batch_are_clear():
    batch = torch.rand(2, 3, 32, 40)
    with pytest.raises(ValueError, match=r"SimParams.blur_sigma=20: .*40x32 \(WxH\) batch \(sample 1\)"):
        sim.simulate_torch(batch, [sim.SimParams(), sim.SimParams(blur_sigma=20.0)])
    with pytest.raises(ValueError, match=r"SimParams.motion_length=65: .*<= 63"):
        sim.simulate_torch(batch, sim.SimParams(motion_length=65))
    for empty in (torch.zeros(0, 3, 8, 8), torch.zeros(2, 3, 0, 8)):
        with pytest.raises(ValueError, match=r"batch: empty"):
            sim.simulate_torch(empty)


@pytest.mark.parametrize("side", [1, 2, 3, 4, 5, 7, 10])
def test_kernel_advice_is_a_value_that_is_accepted(side):
    """The advice of a refused kernel is itself valid: for a 1-pixel side it used to suggest
    ``unsharp_radius <= 0`` (refused: the radius must be > 0), for 3 pixels ``<= 0.666667``
    (whose kernel does not fit either)."""
    import re

    img = np.full((side, side + 3, 3), 100, np.uint8)
    with pytest.raises(ValueError, match="blur_sigma") as info:
        sim.simulate(img, sim.SimParams(blur_sigma=50.0, shot_noise="none"))
    blur_msg = str(info.value)
    blur = re.search(r"blur_sigma <= ([0-9.]+)$", blur_msg)
    with pytest.raises(ValueError, match="unsharp_radius") as info:
        sim.camera_pipeline(img, sim.CameraParams(unsharp_radius=20.0, jpeg_quality=None))
    sharp = re.search(r"unsharp_radius <= ([0-9.]+)$", str(info.value))
    if side == 1:
        assert blur is None and sharp is None
        assert blur_msg.endswith("no Gaussian fits a 1-pixel side: use blur_sigma=0 (no blur)")
        assert str(info.value).endswith("no sharpening kernel fits a 1-pixel side: use unsharp_amount=0 (no sharpening)")
        sim.simulate(img, sim.SimParams(blur_sigma=0.0, shot_noise="none"))
        sim.camera_pipeline(img, sim.CameraParams(unsharp_amount=0.0, jpeg_quality=None))
    else:
        sim.simulate(img, sim.SimParams(blur_sigma=float(blur.group(1)), shot_noise="none"))
        sim.camera_pipeline(img, sim.CameraParams(unsharp_radius=float(sharp.group(1)), jpeg_quality=None))
