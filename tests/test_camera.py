"""The phone's night photo (lowlight.simulate.camera) and the backlit LL-Matte option."""
import cv2
import numpy as np
import pytest

from lowlight import config, data, simulate as sim
from lowlight.color import luminance, srgb_to_linear
from lowlight.data.backgrounds import backlight_foreground, make_background

SMOKE = config.get_profile("smoke")


@pytest.fixture(scope="module")
def photo():
    return cv2.resize(data.load_photo("coffee"), (96, 64), interpolation=cv2.INTER_AREA)


FLAT = np.full((256, 256, 3), 128, np.uint8)


# --------------------------------------------------------------------------- the gain and the noise
@pytest.mark.parametrize("shot_noise", ["gaussian", "poisson"])
def test_gain_amplifies_the_noise_by_gain_squared(shot_noise):
    """On a flat patch, the variance after the gain (before any processing) is the sensor model's
    variance times gain**2, within 2 %, in every channel."""
    p = sim.CameraParams(sensor=sim.SimParams(shot_noise=shot_noise), target=0.5)
    _, st = sim.camera_pipeline(FLAT, p, rng=1, return_stages=True)
    g = st["gain"]
    assert 10 < g < p.max_gain                               # auto-exposure brightened the dark image
    lin = srgb_to_linear(st["gained"].astype(np.float64) / 255)
    a0, b0 = sim.noise_model(p.sensor)                        # the dark image's noise line
    for c in range(3):
        mean = lin[..., c].mean()
        model = (a0 * mean / g + b0) * g ** 2                 # dark variance at the same scene point x g²
        assert lin[..., c].var() == pytest.approx(model, rel=0.02)
        a, b = sim.noise_after_gain(p, g)
        assert a * mean + b == pytest.approx(model, rel=1e-9)
    raw = srgb_to_linear(st["raw"].astype(np.float64) / 255)
    assert lin.mean() == pytest.approx(g * raw.mean(), rel=0.02)   # the same draws, scaled


def test_fixed_gain_and_auto_exposure(photo):
    _, st = sim.camera_pipeline(photo, sim.CameraParams(gain=8.0), rng=0, return_stages=True)
    assert st["gain"] == 8.0
    for target in (0.3, 0.5):
        _, st = sim.camera_pipeline(photo, sim.CameraParams(target=target, max_gain=256.0), rng=0, return_stages=True)
        assert luminance(st["gained"]).mean() == pytest.approx(target, abs=0.01)
    bright = sim.CameraParams(sensor=sim.SimParams(exposure=1.0), target=0.1)
    assert sim.camera_pipeline(photo, bright, rng=0, return_stages=True)[1]["gain"] == 1.0   # never below 1
    capped = sim.CameraParams(sensor=sim.SimParams(exposure=0.001), max_gain=16.0)
    assert sim.camera_pipeline(photo, capped, rng=0, return_stages=True)[1]["gain"] == 16.0


# --------------------------------------------------------------------------- OpenCV does the processing
def _spy(monkeypatch, name):
    calls = []
    real = getattr(cv2, name)

    def wrapper(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(cv2, name, wrapper)
    return calls


def test_jpeg_and_nlmeans_come_from_opencv(monkeypatch, photo):
    enc = _spy(monkeypatch, "imencode")
    nlm = _spy(monkeypatch, "fastNlMeansDenoisingColored")
    out, st = sim.camera_pipeline(photo, sim.CameraParams(jpeg_quality=40, denoise_strength=9.0), rng=0,
                                  return_stages=True)
    assert len(enc) == 1 and enc[0][0][0] == ".jpg" and list(enc[0][0][2]) == [cv2.IMWRITE_JPEG_QUALITY, 40]
    assert len(nlm) == 1 and nlm[0][0][2:4] == (9.0, 9.0)
    assert not np.array_equal(st["denoised"], st["toned"]) and not np.array_equal(out, st["sharpened"])


def test_bilateral_and_switches_off(monkeypatch, photo):
    bil = _spy(monkeypatch, "bilateralFilter")
    enc = _spy(monkeypatch, "imencode")
    nlm = _spy(monkeypatch, "fastNlMeansDenoisingColored")
    sim.camera_pipeline(photo, sim.CameraParams(denoise="bilateral", denoise_strength=5.0, jpeg_quality=None), rng=0)
    assert len(bil) == 1 and bil[0][0][2] == 10.0 and not enc and not nlm
    plain = sim.CameraParams(denoise="none", unsharp_amount=0.0, jpeg_quality=None)
    out, st = sim.camera_pipeline(photo, plain, rng=0, return_stages=True)
    assert np.array_equal(out, st["gained"]) and len(bil) == 1 and not enc and not nlm


def test_sharpening_and_tone_curve(photo):
    base = sim.CameraParams(denoise="none", jpeg_quality=None)
    _, st = sim.camera_pipeline(photo, base.replace(unsharp_amount=1.0), rng=0, return_stages=True)
    assert st["sharpened"].astype(float).std() > st["denoised"].astype(float).std()
    _, st = sim.camera_pipeline(photo, base.replace(tone_curve="lift"), rng=0, return_stages=True)
    assert np.array_equal(st["toned"], sim.tone_lut("lift")[st["gained"]])
    assert st["toned"].mean() > st["gained"].mean()
    assert np.array_equal(sim.tone_lut(None), np.arange(256))


# --------------------------------------------------------------------------- determinism, shapes, errors
def test_deterministic_by_seed_and_same_shape():
    img = np.random.default_rng(0).integers(0, 256, (40, 72, 3), dtype=np.uint8)
    a = sim.camera_pipeline(img, rng=7)
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, sim.camera_pipeline(img, rng=np.random.default_rng(7)))
    assert not np.array_equal(a, sim.camera_pipeline(img, rng=8))
    _, st = sim.camera_pipeline(img, rng=7, return_stages=True)
    assert np.array_equal(st["raw"], sim.simulate(img, sim.SimParams(), rng=7))   # the sensor's own image
    assert set(sim.STAGES) <= set(st) and {"gain", "seconds"} <= set(st)
    f = sim.camera_pipeline(img.astype(np.float32) / 255, rng=7)                  # float in [0, 1] accepted
    assert f.dtype == np.uint8 and np.array_equal(f, a)


@pytest.mark.parametrize("image, err, match", [
    (np.zeros((32, 32), np.uint8), ValueError, "image.*grayscale"),
    (np.zeros((32, 32, 1), np.uint8), ValueError, "image: greyscale"),
    (np.zeros((32, 32, 4), np.uint8), ValueError, "image: RGBA"),
    (np.zeros((32, 32, 3), np.int64), TypeError, "image: expected dtype"),
    (np.full((32, 32, 3), 1.5, np.float32), ValueError, "image: float values must lie in"),
    ([[1, 2, 3]], TypeError, "image: expected a numpy array"),
])
def test_bad_images_are_named(image, err, match):
    with pytest.raises(err, match=match):
        sim.camera_pipeline(image)


@pytest.mark.parametrize("field, value", [
    ("target", 0.0), ("target", 1.5), ("max_gain", 0.5), ("gain", -1.0), ("gain", float("nan")),
    ("denoise", "median"), ("denoise_strength", -1.0), ("unsharp_amount", -0.1), ("unsharp_radius", 0.0),
    ("jpeg_quality", 0), ("jpeg_quality", 101), ("jpeg_quality", 90.0), ("tone_curve", "hdr"),
    ("max_gain", 1e6),
])
def test_bad_parameters_are_named(field, value):
    with pytest.raises(ValueError, match=f"CameraParams.{field}"):
        sim.CameraParams(**{field: value})


def test_other_bad_arguments():
    with pytest.raises(TypeError, match="CameraParams.sensor"):
        sim.CameraParams(sensor="night")
    with pytest.raises(TypeError, match="params"):
        sim.camera_pipeline(FLAT[:32, :32], params=sim.SimParams())
    with pytest.raises(ValueError, match="unsharp_radius"):
        sim.camera_pipeline(FLAT[:8, :8], sim.CameraParams(unsharp_radius=5.0))
    with pytest.raises(ValueError, match="ev"):
        sim.CameraParams.from_ev(1.0)
    with pytest.raises(ValueError, match="histograms"):
        sim.auto_exposure_gain(np.ones(256), sim.CameraParams())


def test_from_ev_and_sampling():
    night = sim.CameraParams.from_ev(-6.0)
    assert night.sensor.exposure == pytest.approx(2 ** -6) and night.denoise == "nlmeans"
    dusk = sim.CameraParams.from_ev(-2.0)
    assert night.denoise_strength > dusk.denoise_strength > 0      # darker: more gain, more denoising
    assert sim.CameraParams.from_ev(sim.SimParams().ev).denoise_strength == sim.CameraParams().denoise_strength
    assert sim.CameraParams.from_ev(-4.0, jpeg_quality=70, denoise_strength=3.0).denoise_strength == 3.0
    a, b = sim.sample_camera_params(3), sim.sample_camera_params(3)
    assert a == b and a != sim.sample_camera_params(4)
    r = sim.CAMERA_RANGES
    for seed in range(20):
        p = sim.sample_camera_params(seed)
        assert r["target"][0] <= p.target <= r["target"][1] and p.denoise in r["denoise"]
        assert r["jpeg_quality"][0] <= p.jpeg_quality <= r["jpeg_quality"][1] and p.tone_curve in r["tone_curve"]
    assert sim.sample_camera_params(0, jpeg_quality=None).jpeg_quality is None


# --------------------------------------------------------------------------- backlit scenes
def test_backlit_background_clips_and_darkens_the_subject():
    bg, info = make_background("backlit_clipped", 96, np.random.default_rng(0))
    assert info["kind"] == "backlit_clipped" and info["clipped"] > 0.02
    assert info["clipped"] == pytest.approx(float((bg == 255).all(axis=2).mean()))
    fg = np.full((96, 96, 3), 180, np.uint8)
    dark = backlight_foreground(fg, {**info, "haze": 0.0})
    expected = srgb_to_linear(180 / 255) * 2 ** info["subject_ev"]
    assert srgb_to_linear(dark.mean() / 255) == pytest.approx(expected, rel=0.03)
    hazy = backlight_foreground(fg, {**info, "haze": 0.1})
    assert hazy.mean() > dark.mean()                          # flare lifts the subject's blacks


@pytest.mark.parametrize("family", ["product", "portrait"])
def test_backlit_option_in_llmatte(family):
    for index in range(3):
        s = data.make_sample(index, "test", 96, seed=0, family=family, backlit_clipped=1.0)
        m, a = s["meta"], s["alpha"]
        assert m["background"] == "backlit_clipped" and m["backlit_subject_ev"] < -1
        behind = a == 0
        assert (s["normal"][behind] == 255).all(axis=1).mean() > 0.02       # clipped highlights behind
        y = luminance(s["normal"])
        assert y[a == 255].mean() < y[behind].mean()                        # the subject darker
        # the stored layers still satisfy the compositing equation
        assert np.array_equal(data.composite(s["fg"], a, s["bg"]), s["normal"])


def test_backlit_option_changes_only_what_it_should():
    for index, family in [(0, "hair"), (1, "product"), (2, None)]:
        kw = dict(family=family) if family else {}
        base = data.make_sample(index, "train", 64, seed=1, **kw)
        same = data.make_sample(index, "train", 64, seed=1, backlit_clipped=0.0, **kw)
        assert all(np.array_equal(base[k], same[k]) for k in ("normal", "low", "alpha")) and base["meta"] == same["meta"]
    hair = data.make_sample(0, "train", 64, seed=1, family="hair", backlit_clipped=1.0)   # other families untouched
    assert np.array_equal(hair["normal"], data.make_sample(0, "train", 64, seed=1, family="hair")["normal"])
    # the cache key moves only when the option is used
    assert data.llmatte_dir(SMOKE) == data.llmatte_dir(SMOKE, backlit_clipped=0.0)
    assert data.llmatte_dir(SMOKE) != data.llmatte_dir(SMOKE, backlit_clipped=0.5)
    assert "backlit_clipped" not in data.LLMatteSpec().to_dict()
    assert data.LLMatteSpec(backlit_clipped=0.5).to_dict()["backlit_clipped"] == 0.5
    for bad in (-0.1, 1.5, "yes", True):
        with pytest.raises(ValueError, match="backlit_clipped"):
            data.LLMatteSpec(backlit_clipped=bad)
    with pytest.raises(ValueError, match="backlit_clipped"):
        data.make_sample(0, backlit_clipped=2.0)


# --------------------------------------------------------------------------- processed LL-Matte
def test_processed_version_replays_the_same_sensor_draw():
    base = data.make_sample(3, "test", 96, seed=2, family="portrait")
    s = data.make_sample(3, "test", 96, seed=2, family="portrait", processed=True)
    # everything else is byte-identical to the raw-only sample
    assert all(np.array_equal(base[k], s[k]) for k in ("normal", "low", "alpha", "trimap"))
    assert {k: v for k, v in s["meta"].items() if not k.startswith("cam_") and k != "mean_luma_processed"} \
        == base["meta"]
    m = s["meta"]
    assert m["cam_denoise"] in sim.DENOISERS and 70 <= m["cam_jpeg_quality"] <= 95
    # the phone's photo is the same exposure brought back up: far brighter than the raw frame
    assert m["mean_luma_processed"] > 3 * m["mean_luma_low"]
    # its settings come from their own stream, tuned to the sample's own sensor
    cam = sim.sample_camera_params(np.random.default_rng(np.random.SeedSequence([2, 2, 3, 2])),
                                   sensor=sim.SimParams(**_sensor_of(m)))
    assert (cam.denoise, cam.jpeg_quality, cam.denoise_strength) == \
        (m["cam_denoise"], m["cam_jpeg_quality"], m["cam_denoise_strength"])
    with pytest.raises(TypeError, match="sensor"):
        sim.sample_camera_params(0, sensor={"exposure": 0.1})


def _sensor_of(meta):
    keys = ("exposure", "full_well", "read_noise", "blur_sigma", "motion_length", "motion_angle", "gain")
    out = {k: meta[k] for k in keys if k in meta}
    out["cast"] = (meta["cast_r"], meta["cast_g"], meta["cast_b"])
    return out


def test_processed_llmatte_folder_and_dataset(tmp_path):
    path = data.build_llmatte(SMOKE, root=tmp_path, progress=False, verbose=False, n_train=2, n_val=1,
                              n_test=1, processed=True)
    assert (path / "train" / "processed").is_dir() and not data.verify_llmatte(path)
    raw = data.LLMatteDataset("train", SMOKE, path=path)
    proc = data.LLMatteDataset("train", SMOKE, path=path, low="processed")
    r, p = raw.raw(0, None), proc.raw(0, None)
    assert np.array_equal(r["normal"], p["normal"]) and not np.array_equal(r["low"], p["low"])
    assert np.array_equal(p["low"], data.read_sample(path, "train", "train-00000")["processed"])
    # the default spec's folder has no processed version, and says how to get one
    plain = data.build_llmatte(SMOKE, root=tmp_path, progress=False, verbose=False, n_train=2, n_val=1, n_test=1)
    assert plain != path and "processed" not in data.LLMatteSpec().to_dict()
    with pytest.raises(ValueError, match="no processed version"):
        data.LLMatteDataset("train", SMOKE, path=plain, low="processed")
    with pytest.raises(ValueError, match="low"):
        data.LLMatteDataset("train", SMOKE, path=path, low="phone")
    with pytest.raises(ValueError, match="processed"):
        data.LLMatteSpec(processed=True, lowlight="article")
    with pytest.raises(ValueError, match="processed"):
        data.LLMatteSpec(processed="yes")
