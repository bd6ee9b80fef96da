"""The held-out camera (lowlight.evaluation.heldout_camera): an evaluation-only degradation written
apart from lowlight.simulate -- its Bayer pattern, its noise line, its demosaic, its exposure, its
JPEG, its determinism, its parameter checks and its independence from the training simulator."""
from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from lowlight.color import linear_to_srgb, srgb_to_linear
from lowlight.evaluation import heldout_camera as hc
from lowlight.evaluation.heldout_camera import (BAYER_SITES, HELDOUT_EVS, HeldOutCameraParams, conversion_gain,
                                                develop, raw_mosaic, render, tone_curve)

#: processing that keeps the colours and means as they are (no chroma blur, no JPEG)
PLAIN = dict(chroma_blur=0.0, jpeg_quality=None)


def flat(value, size=32) -> np.ndarray:
    """A flat uint8 RGB image of ``value`` (an int, or an (r, g, b) triple)."""
    return np.broadcast_to(np.asarray(value, np.uint8), (size, size, 3)).copy()


def sites(raw: np.ndarray, channel: int) -> np.ndarray:
    """The values of the photosites of one colour channel (0 R, 1 G, 2 B), flattened."""
    return np.concatenate([raw[dy::2, dx::2].ravel() for (dy, dx), c in BAYER_SITES.items() if c == channel])


def toy_portrait(size=48) -> np.ndarray:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:size, :size]
    img = np.stack([yy * 4, xx * 4, (yy + xx) * 2], axis=2) % 256
    img[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2] = (210, 160, 130)
    return np.clip(img + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- the mosaic
@pytest.mark.parametrize("channel", [0, 1, 2])
def test_each_primary_lands_on_its_rggb_photosites(channel):
    """A pure red / green / blue image: only the photosites of that colour carry signal above the
    black level -- R at (0, 0), G at (0, 1) and (1, 0), B at (1, 1)."""
    colour = [0, 0, 0]
    colour[channel] = 255
    p = HeldOutCameraParams(read_noise=0.0, row_noise=0.0)
    raw = raw_mosaic(flat(colour), -3, rng=0, params=p).astype(np.float64) - p.black_level
    for (dy, dx), c in BAYER_SITES.items():
        mean = raw[dy::2, dx::2].mean()
        if c == channel:
            assert mean > 100, f"site ({dy}, {dx}) of channel {c} should see the light: mean {mean:.1f} DN"
        else:
            assert mean == 0, f"site ({dy}, {dx}) of channel {c} lit by channel {channel}: mean {mean:.1f} DN"
    assert BAYER_SITES == {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 2}


@pytest.mark.parametrize("demosaic", ["bilinear", "ea"])
@pytest.mark.parametrize("channel", [0, 1, 2])
def test_demosaic_code_matches_rggb(channel, demosaic):
    """OpenCV's Bayer code in use turns the RGGB mosaic of a primary back into that primary
    (``COLOR_BayerRG2RGB`` would swap red and blue)."""
    colour = [0, 0, 0]
    colour[channel] = 200
    p = HeldOutCameraParams(read_noise=0.0, row_noise=0.0, demosaic=demosaic, **PLAIN)
    out = develop(raw_mosaic(flat(colour), -3, rng=0, params=p), p)[4:-4, 4:-4].reshape(-1, 3).mean(axis=0)
    assert int(np.argmax(out)) == channel, out
    assert out[channel] > 100 and np.delete(out, channel).max() < 5, out


@pytest.mark.parametrize("demosaic", ["bilinear", "ea"])
def test_demosaiced_flat_grey_stays_grey(demosaic):
    """White balance undoes the sensor's channel response: a flat grey comes out grey (the channel
    means within 2 % of each other), JPEG and chroma blur included."""
    out = render(flat(128, 64), -5, rng=3, params=HeldOutCameraParams(demosaic=demosaic))
    means = out.reshape(-1, 3).mean(axis=0)
    assert np.ptp(means) < 0.02 * means.mean(), means


# --------------------------------------------------------------------------- the noise
@pytest.mark.parametrize("bits", [10, 14])
def test_noise_variance_follows_the_poisson_gaussian_line(bits):
    """Flat patches at several signal levels: the photosites' variance in DN is
    ``K * S + (K * read_noise) ** 2 + 1/12`` (``S`` the mean above black, ``K`` DN per electron, 1/12
    the ADC's rounding) within 5 %, and the mean is ``K`` x the expected electrons."""
    p = HeldOutCameraParams(adc_bits=bits, black_level=64 if bits == 10 else 1024, row_noise=0.0)
    ev = -6.0
    k = conversion_gain(ev, p)
    for i, level in enumerate((30, 90, 170, 255)):
        raw = raw_mosaic(flat(level, 256), ev, rng=i, params=p)
        for channel in (0, 1):
            x = sites(raw, channel).astype(np.float64) - p.black_level
            linear = srgb_to_linear(level / 255.0)
            electrons = linear * p.channel_response[channel] * 2.0 ** ev * p.electrons_at_white
            assert x.mean() == pytest.approx(k * electrons, rel=0.01, abs=0.05)
            predicted = k * x.mean() + (k * p.read_noise) ** 2 + 1 / 12
            assert x.var() == pytest.approx(predicted, rel=0.05), (bits, level, channel)


def test_row_noise_makes_bands():
    """Row noise is one offset per row: the row means of a flat patch vary far more than its column means."""
    p = HeldOutCameraParams(row_noise=20.0, read_noise=2.0)
    raw = raw_mosaic(flat(60, 128), -5, rng=0, params=p).astype(np.float64)
    assert raw.mean(axis=1).var() > 20 * raw.mean(axis=0).var()


def test_ev_scales_the_signal_before_the_auto_gain():
    """Before any gain, the signal (electrons: DN above black over ``K``) halves per stop: EV -3 -> -5
    is a factor 4, and with the analog gain held at 1 the DN themselves scale so."""
    assert [hc.analog_gain(ev) for ev in (0.0, -3.0, -5.0, -8.0)] == [1.0, 4.0, 16.0, 16.0]  # one stop headroom, cap 16
    img = flat(150, 128)
    fixed = HeldOutCameraParams(max_analog_gain=1.0, adc_bits=14, black_level=1024)
    for p in (HeldOutCameraParams(), fixed):
        signal = {ev: (raw_mosaic(img, ev, rng=1, params=p).mean() - p.black_level) for ev in (-3.0, -5.0, -8.0)}
        electrons = {ev: s / conversion_gain(ev, p) for ev, s in signal.items()}
        assert electrons[-3.0] / electrons[-5.0] == pytest.approx(4.0, rel=0.02)
        assert electrons[-3.0] / electrons[-8.0] == pytest.approx(32.0, rel=0.05)
    assert signal[-3.0] / signal[-5.0] == pytest.approx(4.0, rel=0.02)    # the fixed-gain camera's DN


def test_auto_exposure_reaches_its_target_and_stops_at_its_limit():
    img = toy_portrait()
    p = HeldOutCameraParams(**PLAIN)
    for ev in (-3.0, -6.0):
        out, gain = develop(raw_mosaic(img, ev, rng=0, params=p), p, return_gain=True)
        assert hc.MIN_DIGITAL_GAIN < gain < p.max_digital_gain
        luma = (out / 255.0) @ np.asarray(hc.REC601)
        assert luma.mean() == pytest.approx(p.target, abs=0.03)
    capped = p.replace(max_digital_gain=2.0)
    _, gain = develop(raw_mosaic(img, -8.0, rng=0, params=capped), capped, return_gain=True)
    assert gain == 2.0


# --------------------------------------------------------------------------- tone, JPEG, determinism
def test_tone_curve_is_not_srgb():
    x = np.linspace(0, 2, 201)
    y = tone_curve(x)
    assert y[0] == 0 and y[-1] <= 1 and np.all(np.diff(y) >= 0)
    assert tone_curve(0.18) == pytest.approx(0.18 ** (1 / 2.2), rel=1e-5)      # below the shoulder: gamma 2.2
    assert abs(float(tone_curve(0.002)) - float(linear_to_srgb(0.002))) > 0.03   # no linear toe
    assert float(tone_curve(1.0)) < 0.97                                        # the shoulder rolls off
    assert tone_curve(1.5, shoulder=1.0) == 1.0


def test_jpeg_quality_is_honoured():
    img = toy_portrait()
    p = HeldOutCameraParams(jpeg_quality=None)
    plain = render(img, -4, rng=5, params=p)
    for q in (30, 55, 90):
        expected, _ = hc.jpeg_roundtrip(plain, q)
        ok, buf = cv2.imencode(".jpg", plain[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, q])
        assert np.array_equal(expected, cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
        assert np.array_equal(render(img, -4, rng=5, params=p.replace(jpeg_quality=q)), expected)
    sizes = [hc.jpeg_roundtrip(plain, q)[1] for q in (30, 55, 90)]
    assert sizes[0] < sizes[1] < sizes[2], sizes


def test_deterministic_by_seed():
    img = toy_portrait()
    a = render(img, -6, rng=11)
    assert a.dtype == np.uint8 and a.shape == img.shape
    assert np.array_equal(a, render(img, -6, rng=11))
    assert np.array_equal(a, render(img, -6, rng=np.random.default_rng(11)))
    assert not np.array_equal(a, render(img, -6, rng=12))
    assert np.array_equal(raw_mosaic(img, -6, rng=11), raw_mosaic(img, -6, rng=11))


def test_odd_sizes_and_float_input():
    img = toy_portrait(33)[:, :31]
    assert render(img, -4, rng=0).shape == img.shape
    assert np.array_equal(render(img / 255.0, -4, rng=0), render(img, -4, rng=0))


# --------------------------------------------------------------------------- parameter checks
@pytest.mark.parametrize("field, value", [
    ("electrons_at_white", 0.0), ("read_noise", -1.0), ("row_noise", float("nan")), ("adc_bits", 12),
    ("adc_bits", 10.0), ("black_level", 300), ("max_analog_gain", 0.5), ("channel_response", (1.0, 1.0)),
    ("channel_response", (0.5, 1.2, 0.7)), ("wb_gains", (1.0, 0.0, 1.0)), ("demosaic", "vng"), ("target", 0.0),
    ("max_digital_gain", True), ("shoulder", 0.1), ("gamma", 0.5), ("chroma_blur", -1.0), ("jpeg_quality", 0),
    ("jpeg_quality", 55.0),
])
def test_bad_params_are_rejected_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"HeldOutCameraParams\.{field}: expected"):
        HeldOutCameraParams(**{field: value})


def test_bad_calls_are_rejected():
    img = flat(100, 8)
    with pytest.raises(ValueError, match="ev: expected"):
        render(img, 1.0)
    with pytest.raises(ValueError, match="ev: expected"):
        render(img, -20.0)
    with pytest.raises(TypeError, match="params: expected HeldOutCameraParams"):
        render(img, -3, params={"read_noise": 1})
    with pytest.raises(TypeError, match="rng: expected"):
        render(img, -3, rng="seed")
    with pytest.raises(ValueError, match="RGBA"):
        render(np.zeros((8, 8, 4), np.uint8), -3)
    with pytest.raises(ValueError, match="raw: values up to"):
        develop(raw_mosaic(img, -3, rng=0, params=HeldOutCameraParams(adc_bits=14, black_level=2000)))


# --------------------------------------------------------------------------- held out from training
def test_defaults_lie_outside_the_training_ranges():
    """The camera's defaults sit where the training simulator never draws (module docstring table)."""
    from lowlight.simulate import CAMERA_RANGES, PARAM_RANGES, SimParams

    p = HeldOutCameraParams()
    assert p.electrons_at_white > PARAM_RANGES["full_well"][1]
    assert p.read_noise > PARAM_RANGES["read_noise"][1]
    assert p.adc_bits != SimParams().adc_bits
    assert p.jpeg_quality < CAMERA_RANGES["jpeg_quality"][0]
    assert p.target < CAMERA_RANGES["target"][0]
    assert min(HELDOUT_EVS) < math.log2(PARAM_RANGES["exposure"][0])


def test_module_imports_neither_simulate_nor_training():
    """Statically (every import statement of the file) and at run time (a fresh interpreter that
    imports the module without the package ``lowlight.evaluation``'s own imports)."""
    tree = ast.parse(open(hc.__file__, encoding="utf-8").read())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [("." * n.level) + (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if "simulate" in n or "training" in n], names
    probe = textwrap.dedent(f"""
        import sys, types
        import lowlight
        pkg = types.ModuleType("lowlight.evaluation")      # skip the package's __init__ imports
        pkg.__path__ = [{os.path.dirname(hc.__file__)!r}]
        sys.modules["lowlight.evaluation"] = pkg
        import lowlight.evaluation.heldout_camera as m
        m.render(m.np.full((8, 8, 3), 90, m.np.uint8), -5, rng=0)
        print(sorted(k for k in sys.modules if k.startswith(("lowlight.simulate", "lowlight.training"))))
    """)
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]", r.stdout
