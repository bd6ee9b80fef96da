"""lowlight.filters: the one Gaussian (its radius rule against scikit-image's), the blurs in numpy
and torch, and the binary morphology against OpenCV."""
import ast
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.filters import gaussian as sk_gaussian

from lowlight import filters
from lowlight import losses as L


def _skimage_ssim_radius(sigma: float) -> int:
    """The radius of skimage's SSIM window: ``structural_similarity(gaussian_weights=True)`` filters
    with ``truncate=3.5``, i.e. scipy's rule ``int(3.5 sigma + 0.5)``."""
    return int(3.5 * sigma + 0.5)


# --------------------------------------------------------------------------- the Gaussian
def test_radius_rule():
    assert [filters.gaussian_radius(s) for s in (0.1, 0.34, 1.0, 1.2, 1.5, 2.7)] == [1, 2, 3, 4, 5, 9]


def test_ssim_window_is_skimages_at_sigma_1_5():
    """At SSIM's sigma 1.5 the shared rule gives skimage's radius (5: an 11 x 11 window), and the
    kernel is skimage's window: the impulse response of its Gaussian filter with SSIM's truncation."""
    r = filters.gaussian_radius(1.5)
    assert r == _skimage_ssim_radius(1.5) == 5
    impulse = np.zeros((31, 31))
    impulse[15, 15] = 1.0
    response = sk_gaussian(impulse, sigma=1.5, truncate=3.5, mode="constant", preserve_range=True)
    support = np.argwhere(response > 0)
    assert support.min(0).tolist() == [15 - r] * 2 and support.max(0).tolist() == [15 + r] * 2
    k = filters.gaussian_kernel1d(1.5)
    np.testing.assert_allclose(response[15 - r:16 + r, 15 - r:16 + r], np.outer(k, k), rtol=1e-12, atol=1e-15)


def test_other_ssim_sigmas_use_the_shared_window_as_documented():
    """SSIM accepts another sigma, with the package's window: at sigma 1 that is 7 x 7, where
    skimage's would be 9 x 9 (the module docstring of lowlight.losses.ssim says so)."""
    assert filters.gaussian_radius(1.0) == 3 and _skimage_ssim_radius(1.0) == 4
    x, y = torch.rand(1, 1, 20, 24, dtype=torch.float64), torch.rand(1, 1, 20, 24, dtype=torch.float64)
    assert L.ssim_map(x, y, sigma=1.0).shape[-2:] == (20 - 6, 24 - 6)
    assert L.ssim_map(x, y).shape[-2:] == (20 - 10, 24 - 10)
    with pytest.raises(TypeError):
        L.ssim(x, y, truncate=3.5)          # one radius rule: no truncation option


def test_kernel_is_a_normalised_gaussian():
    for sigma in (0.3, 1.5, 4.2):
        k = filters.gaussian_kernel1d(sigma)
        r = filters.gaussian_radius(sigma)
        assert k.dtype == np.float64 and k.shape == (2 * r + 1,) and k.sum() == pytest.approx(1.0, abs=1e-15)
        np.testing.assert_allclose(k / k[r], np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2), rtol=1e-13)
        assert filters.gaussian_kernel1d(sigma, np.float32).tobytes() == k.astype(np.float32).tobytes()


@pytest.mark.parametrize("sigma", [0.6, 1.5, 3.1])
def test_blurs_match_scipy_and_each_other(sigma):
    """numpy (OpenCV) and torch blurs = scipy's Gaussian with the same radius and mirrored borders."""
    rng = np.random.default_rng(0)
    img = rng.random((23, 31, 3)).astype(np.float32)
    r = filters.gaussian_radius(sigma)
    ref = ndimage.gaussian_filter(img.astype(np.float64), sigma=(sigma, sigma, 0), mode="mirror", truncate=r / sigma)
    ours = filters.gaussian_blur(img, sigma)
    assert ours.dtype == np.float32 and ours.shape == img.shape
    np.testing.assert_allclose(ours, ref, atol=2e-6)
    t = filters.gaussian_blur_torch(torch.from_numpy(img).permute(2, 0, 1)[None], sigma)
    np.testing.assert_allclose(t[0].permute(1, 2, 0).numpy(), ref, atol=2e-6)


def test_valid_filter_is_the_interior_of_the_same_size_blur():
    x = torch.rand(2, 3, 19, 26, dtype=torch.float64)
    r = filters.gaussian_radius(1.5)
    valid = filters.gaussian_filter_valid(x, 1.5)
    assert valid.shape == (2, 3, 19 - 2 * r, 26 - 2 * r) and valid.dtype == torch.float64
    same = filters.gaussian_blur_torch(x.float(), 1.5)[..., r:-r, r:-r]
    torch.testing.assert_close(valid.float(), same, atol=1e-6, rtol=0)


def test_filters_run_in_their_input_dtype_under_autocast():
    x = torch.rand(1, 2, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert filters.gaussian_filter_valid(x, 1.5).dtype == torch.float32
        assert filters.laplacian_pyramid(x, 2)[0].dtype == torch.float32
        assert filters.sobel(x)[0].dtype == torch.float32


# --------------------------------------------------------------------------- morphology
@pytest.mark.parametrize("padding, border", [("reflect", cv2.BORDER_REFLECT_101), ("replicate", cv2.BORDER_REPLICATE),
                                             ("zeros", cv2.BORDER_CONSTANT)])
def test_erode_matches_opencv(padding, border):
    rng = np.random.default_rng(1)
    m = (rng.random((17, 22)) > 0.15).astype(np.float32)
    for size in (3, 5):
        ref = cv2.erode(m, np.ones((size, size), np.uint8), borderType=border, borderValue=1.0)
        got = filters.erode(torch.from_numpy(m)[None, None], size, padding)[0, 0].numpy()
        np.testing.assert_array_equal(got, ref)
        valid = filters.erode(torch.from_numpy(m)[None, None], size)[0, 0].numpy()
        r = size // 2
        np.testing.assert_array_equal(valid, ref[r:-r, r:-r])


def test_dilate_matches_opencv_with_an_ellipse():
    rng = np.random.default_rng(2)
    m = (rng.random((3, 1, 21, 18)) > 0.93).astype(np.float32)
    for width in (1, 3):
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
        got = filters.dilate(torch.from_numpy(m), k)
        assert got.dtype == torch.float32
        for i in range(3):
            ref = cv2.dilate(m[i, 0], k, borderType=cv2.BORDER_CONSTANT, borderValue=0)
            np.testing.assert_array_equal(got[i, 0].numpy(), ref)
    with pytest.raises(ValueError, match="odd"):
        filters.dilate(torch.from_numpy(m), np.ones((2, 3)))


# --------------------------------------------------------------------------- the module's place
def test_filters_import_only_torch_numpy_opencv_and_the_standard_library():
    tree = ast.parse(Path(filters.__file__).read_text(encoding="utf-8"))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
    assert all(n.level == 0 for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))    # nothing of lowlight
    assert names <= {"__future__", "contextlib", "math", "numpy", "torch", "cv2"}, names


def test_simulate_and_ssim_share_one_radius():
    """The simulator's kernel check, the camera's unsharp mask and SSIM all cut at gaussian_radius."""
    from lowlight import simulate as sim

    sigma = 2.2                                     # radius 7: fits 8 px, not 7
    sim.check_kernel_fits(sim.SimParams(blur_sigma=sigma), 8, 8)
    with pytest.raises(ValueError, match=r"radius 7 px"):
        sim.check_kernel_fits(sim.SimParams(blur_sigma=sigma), 7, 9)
    assert filters.gaussian_radius(sigma) == math.ceil(3 * sigma) == 7
