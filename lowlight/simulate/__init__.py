"""Low-light simulation (notebook 01).

Two simulators live here.

``article_low_light``
    The article's §2.1 formula, reproduced in behaviour so the course can measure it::

        x     = I / 255
        dark  = x ** (1 / gamma) * scale          # gamma = 0.4, scale = 0.3
        noise = Poisson(dark * 255) / 255
        out   = uint8(clip(dark + 0.05 * noise, 0, 1) * 255)   # truncating cast

    Its flaws (measured in notebook 01): the Poisson sample is *added* to the signal, so
    the mean rises by 5 %; the 0.05 factor makes the noise tiny (a fraction of one digital
    number at typical dark levels); the cast truncates instead of rounding; and the
    darkening is a power law applied to gamma-encoded values, not a change of exposure.

``simulate`` / ``simulate_torch``
    A physically based camera model. A normal-light sRGB image is taken back to linear
    light (the real sRGB curve, IEC 61966-2-1), tinted by white-balance gains (colour cast
    of artificial light), blurred (defocus, hand shake), scaled by the exposure factor,
    turned into photo-electrons on a sensor whose ``full_well`` electrons map to white,
    given photon shot noise (Poisson, variance = signal) and Gaussian read noise,
    digitised by a 12-bit ADC with rounding, gamma-encoded to sRGB and rounded to 8 bits.

    In linear units ``y`` (1 = white) the noise follows the classic Poisson-Gaussian line
    ``Var[y] = a * E[y] + b`` with ``a = gain / full_well`` and
    ``b = (gain * read_noise / full_well) ** 2`` (see :func:`noise_model`); notebook 01
    measures this line on flat patches.

    ``shot_noise="gaussian"`` (default) draws one normal sample with the Poisson-Gaussian
    mean and variance -- exact in the first two moments and an order of magnitude faster
    than a Poisson draw; ``"poisson"`` draws the exact Poisson count; ``"none"`` renders
    the noise-free exposure (useful as a reference).

Both simulators take a ``numpy.random.Generator`` (or a seed) and are deterministic
with it. :func:`simulate_torch` is the same maths on batched ``N x 3 x H x W`` tensors
(for on-the-fly simulation on a GPU).

``camera_pipeline``
    What a phone delivers at night: the sensor model, an auto-exposure gain on the linear signal
    (the noise amplified with it), a tone curve, denoising (OpenCV NL-means or bilateral),
    sharpening and JPEG, settings in :class:`CameraParams` (see :mod:`lowlight.simulate.camera`).
    It runs on numpy images (OpenCV's denoisers and codec); there is no batched version.

The blurs (defocus, unsharp mask) are the Gaussian of :mod:`lowlight.filters`.
"""
from __future__ import annotations
from .article import article_low_light
from .batched import simulate_torch
from .camera import (CAMERA_RANGES, DENOISERS, STAGES, TONE_CURVES, CameraParams, auto_exposure_gain,
                     camera_pipeline, noise_after_gain, sample_camera_params, tone_lut)
from .params import MAX_FULL_WELL, MAX_GAIN, MAX_READ_NOISE, PARAM_RANGES, SimParams, noise_model, sample_params
from .sensor import check_kernel_fits, motion_kernel, simulate, simulate_linear

__all__ = [
    "article_low_light",
    "SimParams",
    "PARAM_RANGES",
    "sample_params",
    "simulate",
    "simulate_linear",
    "simulate_torch",
    "noise_model",
    "motion_kernel",
    "check_kernel_fits",
    "MAX_FULL_WELL",
    "MAX_READ_NOISE",
    "MAX_GAIN",
    "CameraParams",
    "CAMERA_RANGES",
    "DENOISERS",
    "TONE_CURVES",
    "STAGES",
    "camera_pipeline",
    "sample_camera_params",
    "auto_exposure_gain",
    "noise_after_gain",
    "tone_lut",
]
