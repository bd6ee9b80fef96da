"""Tests of lowlight.losses: each term against scikit-image / OpenCV, gradients, masks,
the dynamic edge weight (per batch vs per sample), the trimap's unknown band (numpy and
torch forms, lowlight.data.trimap) and the teaching fixture lowlight.teaching.perturb_alpha."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.filters import gaussian as sk_gaussian
from skimage.filters import sobel as sk_sobel
from skimage.metrics import structural_similarity

from lowlight import losses as L
from lowlight import teaching
from lowlight.color import mean_luminance
from lowlight.data.trimap import trimap_from_alpha, trimap_kernel, unknown_band, unknown_band_torch

torch.set_num_threads(1)

TERMS = {
    "mse": L.mse_loss,
    "l1": L.l1_loss,
    "ssim": L.ssim_loss,
    "edge": L.edge_loss,
    "laplacian": L.laplacian_loss,
}


def t(a, dtype=torch.float64):
    """numpy HxW (or NxHxW) -> N x 1 x H x W tensor."""
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    return torch.as_tensor(a[:, None], dtype=dtype)


def sk_ssim(x, y):
    return structural_similarity(np.asarray(x, np.float64), np.asarray(y, np.float64), gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False, data_range=1.0)


def sk_ssim_full(x, y):
    return structural_similarity(np.asarray(x, np.float64), np.asarray(y, np.float64), gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False, data_range=1.0, full=True)[1]


def portrait_alpha(size: int = 64, seed: int = 0, hair: bool = True) -> np.ndarray:
    """A test alpha drawn here (independent of lowlight.data): a head-and-shoulders
    silhouette with an anti-aliased, slightly blurred outline and -- if ``hair`` -- thin
    strands drawn at 4x and box-averaged, so they have fractional coverage. ``hair=False``
    gives the same silhouette without strands."""
    ss, big = 4, size * 4
    rng = np.random.default_rng(seed)
    cx, cy = 0.5 + rng.uniform(-0.04, 0.04), 0.42 + rng.uniform(-0.03, 0.03)
    rx, ry = 0.17 + rng.uniform(-0.015, 0.015), 0.21 + rng.uniform(-0.015, 0.015)
    body = np.zeros((big, big), np.float32)
    cv2.ellipse(body, (int(cx * big), int(cy * big)), (int(rx * big), int(ry * big)), 0, 0, 360, 1.0, -1)
    cv2.ellipse(body, (int(cx * big), int(1.04 * big)), (int(0.40 * big), int(0.33 * big)), 0, 0, 360, 1.0, -1)
    cv2.rectangle(body, (int((cx - 0.08) * big), int((cy + 0.1) * big)), (int((cx + 0.08) * big), int(0.8 * big)),
                  1.0, -1)
    strands = np.zeros_like(body)
    if hair:
        hrng = np.random.default_rng([seed, 1])
        for _ in range(max(10, size // 5)):
            a0 = hrng.uniform(-0.85 * math.pi, -0.15 * math.pi)
            x0, y0 = cx + 0.95 * rx * math.cos(a0), cy + 0.95 * ry * math.sin(a0)
            ang, length, curl = a0 + hrng.normal(0, 0.35), hrng.uniform(0.08, 0.22), hrng.normal(0, 2.5)
            s = np.linspace(0, 1, 25)
            a = ang + curl * s * s
            pts = np.stack([x0 + length * s * np.cos(a), y0 + length * s * np.sin(a)], 1)
            pts = np.round(pts * big).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(strands, [pts], False, float(hrng.uniform(0.7, 1.0)), int(hrng.integers(1, 4)))
    body = cv2.GaussianBlur(body.reshape(size, ss, size, ss).mean(axis=(1, 3)), (0, 0), 0.6)
    fine = strands.reshape(size, ss, size, ss).mean(axis=(1, 3))
    return np.clip(1.0 - (1.0 - body) * (1.0 - fine), 0.0, 1.0).astype(np.float32)


@pytest.fixture(scope="module")
def alpha64():
    return portrait_alpha(64, seed=3)


@pytest.fixture(scope="module")
def coins_alpha():
    """A real-image alpha: skimage's coins, thresholded and blurred (soft edges)."""
    from skimage import data

    img = data.coins()[:160, :224].astype(np.float64) / 255.0
    hard = (img > 0.45).astype(np.float64)
    return np.clip(sk_gaussian(hard, sigma=1.2), 0, 1)


# ---------------------------------------------------------------------------- zero / positive


@pytest.mark.parametrize("name", list(TERMS))
def test_term_zero_for_identical_and_positive_otherwise(name, alpha64):
    f = TERMS[name]
    gt = t(np.stack([alpha64, portrait_alpha(64, seed=4)]))
    assert abs(float(f(gt, gt))) < 1e-9
    assert torch.all(f(gt, gt, reduction="none").abs() < 1e-9)
    for kind in teaching.PERTURBATIONS:
        pred = t(np.stack([teaching.perturb_alpha(alpha64, kind), teaching.perturb_alpha(portrait_alpha(64, seed=4), kind)]))
        per_sample = f(pred, gt, reduction="none")
        assert per_sample.shape == (2,)
        assert torch.all(per_sample > 0), (name, kind, per_sample)
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 1, 16, 20, generator=g), torch.rand(3, 1, 16, 20, generator=g)
    assert float(f(a, b)) > 0
    assert float(f(a, a)) == pytest.approx(0.0, abs=1e-6)


def test_edge_and_laplacian_are_blind_to_a_constant_offset(alpha64):
    """Documented property: gradient-based terms ignore a DC shift, so pair them with MSE/L1."""
    gt = t(alpha64)
    shifted = gt + 0.1
    assert float(L.edge_loss(shifted, gt)) == pytest.approx(0.0, abs=1e-12)
    assert float(L.laplacian_loss(shifted, gt)) == pytest.approx(0.0, abs=1e-12)
    assert float(L.mse_loss(shifted, gt)) == pytest.approx(0.01, rel=1e-9)
    assert float(L.l1_loss(shifted, gt)) == pytest.approx(0.1, rel=1e-9)
    # the article's zero padding turns the offset into a border edge
    assert float(L.edge_loss(shifted, gt, padding="zeros")) > 1e-3


# ---------------------------------------------------------------------------- SSIM vs scikit-image


@pytest.mark.parametrize("shape", [(11, 11), (32, 32), (40, 57), (64, 23)])
def test_ssim_matches_skimage_on_random_images(shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.random(shape)
    for y in (rng.random(shape), np.clip(x + rng.normal(0, 0.1, shape), 0, 1), x ** 2):
        ref = sk_ssim(x, y)
        assert float(L.ssim(t(x), t(y))) == pytest.approx(ref, abs=1e-9)             # float64: exact maths
        assert float(L.ssim(t(x, torch.float32), t(y, torch.float32))) == pytest.approx(ref, abs=1e-3)


def test_ssim_matches_skimage_on_real_alphas(alpha64, coins_alpha):
    for gt in (alpha64, coins_alpha):
        for kind in teaching.PERTURBATIONS:
            pred = teaching.perturb_alpha(gt, kind, seed=1)
            ref = sk_ssim(pred, gt)
            assert float(L.ssim(t(pred, torch.float32), t(gt, torch.float32))) == pytest.approx(ref, abs=1e-3)
            assert float(L.ssim(t(pred), t(gt))) == pytest.approx(ref, abs=1e-9)
    # the map equals skimage's full map minus the reflected border skimage crops itself
    pred = teaching.perturb_alpha(coins_alpha, "blur")
    ours = L.ssim_map(t(pred), t(coins_alpha))[0, 0].numpy()
    np.testing.assert_allclose(ours, sk_ssim_full(pred, coins_alpha)[5:-5, 5:-5], atol=1e-9)


def test_ssim_per_sample_and_pooled(alpha64):
    gts = [alpha64, portrait_alpha(64, seed=5), portrait_alpha(64, seed=6)]
    preds = [teaching.perturb_alpha(g, k) for g, k in zip(gts, ("blur", "holes", "noise"))]
    per = L.ssim(t(np.stack(preds)), t(np.stack(gts)), reduction="none")
    ref = [sk_ssim(p, g) for p, g in zip(preds, gts)]
    np.testing.assert_allclose(per.numpy(), ref, atol=1e-9)
    assert float(L.ssim(t(np.stack(preds)), t(np.stack(gts)))) == pytest.approx(np.mean(ref), abs=1e-9)
    assert float(L.ssim_loss(t(np.stack(preds)), t(np.stack(gts)))) == pytest.approx(1 - np.mean(ref), abs=1e-9)


def test_ssim_half_precision_is_computed_in_float32(alpha64):
    pred = teaching.perturb_alpha(alpha64, "blur")
    out = L.ssim(t(pred, torch.float16), t(alpha64, torch.float16))
    assert out.dtype == torch.float32
    assert float(out) == pytest.approx(sk_ssim(pred.astype(np.float16), alpha64.astype(np.float16)), abs=1e-3)


def test_ssim_rejects_images_smaller_than_the_window():
    with pytest.raises(ValueError, match="at least 11 x 11"):
        L.ssim(torch.rand(1, 1, 10, 30), torch.rand(1, 1, 10, 30))


# ---------------------------------------------------------------------------- Sobel / edge vs OpenCV, skimage


@pytest.mark.parametrize("padding,border", [("reflect", cv2.BORDER_REFLECT_101), ("replicate", cv2.BORDER_REPLICATE),
                                            ("zeros", cv2.BORDER_CONSTANT)])
def test_sobel_matches_opencv(alpha64, padding, border):
    rng = np.random.default_rng(0)
    for x in (alpha64.astype(np.float64), rng.random((17, 29))):
        gx, gy = L.sobel(t(x), padding=padding)
        np.testing.assert_allclose(gx[0, 0].numpy(), cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3, borderType=border),
                                   atol=1e-12)
        np.testing.assert_allclose(gy[0, 0].numpy(), cv2.Sobel(x, cv2.CV_64F, 0, 1, ksize=3, borderType=border),
                                   atol=1e-12)


def test_sobel_magnitude_matches_skimage_inside(coins_alpha):
    """skimage's sobel is the same filter scaled: kernels / 4 and magnitude / sqrt(2);
    its border mode ('reflect' = symmetric) differs, so compare the interior."""
    mag = L.sobel_magnitude(t(coins_alpha), eps=0.0)[0, 0].numpy()
    np.testing.assert_allclose(mag[1:-1, 1:-1] / (4 * math.sqrt(2)), sk_sobel(coins_alpha)[1:-1, 1:-1], atol=1e-9)
    with_eps = L.sobel_magnitude(t(coins_alpha))[0, 0].numpy()
    assert np.all(with_eps >= 1e-4 - 1e-12) and np.abs(with_eps - mag).max() <= 1e-4 + 1e-12


def test_edge_loss_reproduces_the_article_snippet(alpha64):
    """padding='zeros' is the article's EdgeAwareLoss edge term (F.conv2d(padding=1), nn.MSELoss)."""
    gt, pred = t(alpha64, torch.float32), t(teaching.perturb_alpha(alpha64, "blur"), torch.float32)
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    ky = kx.transpose(-1, -2)

    def mag(x):
        return torch.sqrt(F.conv2d(x, kx, padding=1) ** 2 + F.conv2d(x, ky, padding=1) ** 2 + 1e-8)

    ref = F.mse_loss(mag(pred), mag(gt))
    assert float(L.edge_loss(pred, gt, padding="zeros")) == pytest.approx(float(ref), rel=1e-5)


# ---------------------------------------------------------------------------- Laplacian vs OpenCV


def test_laplacian_pyramid_matches_opencv_pyrdown_pyrup():
    x = np.random.default_rng(1).random((48, 32))
    bands = L.laplacian_pyramid(t(x), levels=5)
    assert [b.shape[-2:] for b in bands] == [(48, 32), (24, 16), (12, 8), (6, 4)]   # stops below 4 px
    # odd sizes are cropped to even before each level (as ViTMatte does)
    assert [b.shape[-2:] for b in L.laplacian_pyramid(t(x[:47, :30]), 3)] == [(46, 30), (22, 14), (10, 6)]
    cur = x
    for b in bands:
        down = cv2.pyrDown(cur)
        ref = cur - cv2.pyrUp(down, dstsize=(cur.shape[1], cur.shape[0]))
        np.testing.assert_allclose(b[0, 0].numpy(), ref, atol=1e-12)
        cur = down


def test_laplacian_loss_formula():
    g = torch.Generator().manual_seed(2)
    p, q = torch.rand(2, 1, 32, 32, generator=g, dtype=torch.float64), torch.rand(2, 1, 32, 32, generator=g,
                                                                                    dtype=torch.float64)
    bp, bq = L.laplacian_pyramid(p, 3), L.laplacian_pyramid(q, 3)
    ref = sum(2 ** i * (a - b).abs().mean() for i, (a, b) in enumerate(zip(bp, bq))) / 3
    assert float(L.laplacian_loss(p, q, levels=3)) == pytest.approx(float(ref), rel=1e-12)


# ---------------------------------------------------------------------------- gradients


def _small_pair(seed=0, n=2, h=12, w=13):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(n, 1, h, w, generator=g, dtype=torch.float64).requires_grad_(True)
    q = torch.rand(n, 1, h, w, generator=g, dtype=torch.float64)
    return p, q


@pytest.mark.parametrize("name", list(TERMS))
def test_gradcheck_each_term(name):
    f = TERMS[name]
    p, q = _small_pair()
    valid = torch.ones(2, 1, 12, 13, dtype=torch.float64)
    valid[0, :, 2:4, 3:6] = 0
    weight = torch.rand(2, 1, 12, 13, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: f(x, q), (p,))
    assert torch.autograd.gradcheck(lambda x: f(x, q, valid=valid, weight=weight, reduction="none"), (p,))


@pytest.mark.parametrize("dynamic", L.DYNAMIC_MODES)
def test_gradcheck_composite(dynamic):
    p, q = _small_pair(1)
    image = torch.rand(2, 3, 12, 13, dtype=torch.float64) * torch.tensor([0.3, 1.0], dtype=torch.float64).view(
        2, 1, 1, 1)
    crit = L.MattingLoss(dict(mse=1, ssim=0.5, edge=2, l1=0.3, laplacian=0.2), dynamic=dynamic)
    valid = torch.ones(2, 1, 12, 13, dtype=torch.float64)
    valid[1, :, 5:8, 5:8] = 0
    assert torch.autograd.gradcheck(lambda x: crit(x, q, image, valid=valid)[0], (p,))


# ---------------------------------------------------------------------------- masks


def _batch_with_hole(alpha64):
    gt = t(np.stack([alpha64, portrait_alpha(64, seed=8)]))
    pred = t(np.stack([teaching.perturb_alpha(alpha64, "blur"), teaching.perturb_alpha(portrait_alpha(64, seed=8), "noise")]))
    valid = torch.ones_like(gt)
    valid[0, :, 20:34, 24:40] = 0        # a CutoutWithAlpha-like hole across the silhouette
    valid[1, :, 40:52, 5:15] = 0
    return pred, gt, valid


@pytest.mark.parametrize("name", list(TERMS))
def test_masked_pixels_change_nothing(name, alpha64):
    f = TERMS[name]
    pred, gt, valid = _batch_with_hole(alpha64)
    base = f(pred, gt, valid=valid, reduction="none")
    hole = valid == 0
    pred2, gt2 = pred.clone(), gt.clone()
    pred2[hole] = torch.rand(int(hole.sum()), dtype=pred.dtype)
    gt2[hole] = float("nan")                     # even NaN in a hole must not leak
    again = f(pred2, gt2, valid=valid, reduction="none")
    torch.testing.assert_close(again, base, rtol=0, atol=1e-12)
    # ...and without the mask the change is seen
    assert not torch.allclose(f(pred2, gt.clone(), reduction="none"), f(pred, gt, reduction="none"))
    # no gradient reaches a masked pixel
    p = pred2.clone().requires_grad_(True)
    f(p, gt2, valid=valid).backward()
    assert torch.all(p.grad[hole] == 0) and torch.isfinite(p.grad).all()


def test_composite_honours_masks(alpha64):
    pred, gt, valid = _batch_with_hole(alpha64)
    image = torch.rand(2, 3, 64, 64, dtype=torch.float64) * torch.tensor([0.2, 0.9], dtype=torch.float64).view(
        2, 1, 1, 1)
    crit = L.MattingLoss(dict(mse=1, ssim=1, edge=1, l1=1, laplacian=1), dynamic="sample")
    total, logs = crit(pred, gt, image, valid=valid)
    pred2 = pred.clone()
    pred2[valid == 0] = 1.0 - pred2[valid == 0]
    total2, logs2 = crit(pred2, gt, image, valid=valid)
    assert float(total2) == pytest.approx(float(total), abs=1e-12)
    assert {k: float(v) for k, v in logs2.items()} == pytest.approx({k: float(v) for k, v in logs.items()}, abs=1e-12)


def test_mask_normalises_by_valid_pixels(alpha64):
    pred, gt, valid = _batch_with_hole(alpha64)
    keep = valid.bool()
    d = (pred - gt)[keep]
    assert float(L.mse_loss(pred, gt, valid=valid)) == pytest.approx(float((d ** 2).mean()), rel=1e-12)
    assert float(L.l1_loss(pred, gt, valid=valid)) == pytest.approx(float(d.abs().mean()), rel=1e-12)
    per = L.mse_loss(pred, gt, valid=valid, reduction="none")
    for i in range(2):
        assert float(per[i]) == pytest.approx(float(((pred - gt)[i][keep[i]] ** 2).mean()), rel=1e-12)


def test_ssim_mask_counts_only_windows_inside_valid(alpha64):
    """With a mask, SSIM is skimage's map averaged over the windows lying wholly on valid pixels."""
    pred, gt, valid = _batch_with_hole(alpha64)
    full = sk_ssim_full(pred[0, 0].numpy(), gt[0, 0].numpy())[5:-5, 5:-5]
    v = valid[0, 0].numpy()
    win_ok = np.ones_like(full, dtype=bool)
    for dy in range(11):
        for dx in range(11):
            win_ok &= v[dy:dy + full.shape[0], dx:dx + full.shape[1]] > 0.5
    assert float(L.ssim(pred[:1], gt[:1], valid=valid[:1])) == pytest.approx(full[win_ok].mean(), abs=1e-9)


def test_fully_masked_sample_contributes_nothing(alpha64):
    pred, gt, _ = _batch_with_hole(alpha64)
    valid = torch.ones_like(gt)
    valid[1] = 0
    for name, f in TERMS.items():
        per = f(pred, gt, valid=valid, reduction="none")
        assert float(per[1]) == 0.0, name
        assert float(f(pred, gt, valid=valid)) == pytest.approx(float(f(pred[:1], gt[:1])), rel=1e-9, abs=1e-12)


def test_weight_and_unknown_region(alpha64):
    gt = t(alpha64)
    band = unknown_band_torch(gt, width=3)
    assert set(np.unique(band.numpy())) <= {0.0, 1.0}
    frac = (gt > 0.01) & (gt < 0.99)
    assert torch.all(band[frac] == 1)                                   # every fractional pixel is unknown
    assert band[0, 0, 0, 0] == 0 and band[0, 0, -1, 32] == 0              # far background, deep foreground
    assert float(unknown_band_torch(gt, width=6).sum()) > float(band.sum())
    # residue far from the subject is invisible to an unknown-region loss, visible to the plain one
    pred = gt.clone()
    pred[0, 0, 2:6, 2:6] = 0.3
    assert float(L.mse_loss(pred, gt, weight=band)) == 0.0
    assert float(L.mse_loss(pred, gt)) > 0
    crit = L.MattingLoss(dict(mse=1, l1=1), region="unknown", unknown_width=3)
    assert float(crit(pred, gt)[0]) == 0.0
    assert float(L.MattingLoss(dict(mse=1, l1=1))(pred, gt)[0]) > 0


def _random_alphas(seed=0):
    """Random alphas with large definite regions, hard edges, fractional pixels and the
    values right at the 8-bit thresholds (0.5/255 and 254.5/255 round to 1 and 255)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(8):
        h, w = int(rng.integers(3, 48)), int(rng.integers(3, 48))
        coarse = rng.random((max(1, h // 6), max(1, w // 6)))
        a = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR if k % 2 else cv2.INTER_NEAREST)
        a = np.clip((a - 0.3) * 2.5 + rng.normal(0, 0.02, (h, w)) * (k % 3 == 0), 0, 1)
        edge = rng.random((h, w)) < 0.05
        a[edge] = rng.choice([0.5 / 255, 1 / 255, 254 / 255, 254.5 / 255, 1 - 1e-7, 1e-7], int(edge.sum()))
        out.append(a.astype(np.float32 if k % 2 else np.float64))
    return out


@pytest.mark.parametrize("width", [None, 0, 1, 2, 3, 5, 8])
def test_unknown_band_numpy_and_torch_agree_exactly(width):
    for a in _random_alphas(seed=width or 0):
        ref = unknown_band(a, width)
        assert ref.dtype == bool and ref.shape == a.shape
        for dtype in (torch.float32, torch.float64):
            band = unknown_band_torch(torch.from_numpy(a).to(dtype)[None, None], width)
            assert band.dtype == dtype and band.shape == (1, 1, *a.shape)
            np.testing.assert_array_equal(band[0, 0].numpy() > 0.5, ref)
        a8 = np.floor(np.clip(a.astype(np.float32), 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
        np.testing.assert_array_equal(unknown_band_torch(torch.from_numpy(a8)[None, None], width)[0, 0].numpy() > 0.5,
                                      unknown_band(a8, width))
        # the data set's trimap has exactly this band
        np.testing.assert_array_equal(trimap_from_alpha(a, width) == 128, ref)
    # a batch of several samples and channels is the per-image band
    alphas = [a[:3, :3] for a in _random_alphas(seed=7)]
    batch = torch.from_numpy(np.stack(alphas).astype(np.float32)).view(2, 4, 3, 3)
    out = unknown_band_torch(batch, width)
    for i, a in enumerate(alphas):
        np.testing.assert_array_equal(out.view(8, 3, 3)[i].numpy() > 0.5, unknown_band(a.astype(np.float32), width))


def test_unknown_band_kernel_and_definition():
    k = trimap_kernel(5)
    assert k.shape == (11, 11) and k[5].all() and k[:, 5].all()           # reaches 5 px along both axes
    assert k[0, 0] == 0 and k.sum() < 121 and np.array_equal(k, k[::-1, ::-1])  # elliptical, not the square
    a = np.zeros((40, 40), np.float32)
    a[:, 20:] = 1.0                                                       # one vertical hard edge
    band = unknown_band(a, 5)
    assert band[:, 15:25].all() and not band[:, :15].any() and not band[:, 25:].any()
    np.testing.assert_array_equal(unknown_band(a, 0), np.zeros_like(band))  # no fractional pixel
    a[10, 5] = 1 / 255                                                    # one 8-bit level off 0: not definite
    assert unknown_band(a, 0)[10, 5] and unknown_band(a, 2)[10, 7] and not unknown_band(a, 2)[10, 8]
    with pytest.raises(ValueError, match="width must be an int >= 0"):
        unknown_band_torch(torch.zeros(1, 1, 4, 4), -1)
    with pytest.raises(ValueError, match="N x C x H x W"):
        unknown_band_torch(torch.zeros(4, 4))


def test_module_forms_equal_the_functions(alpha64):
    pred, gt, valid = _batch_with_hole(alpha64)
    weight = torch.rand_like(gt)
    pairs = [(L.MSELoss(), L.mse_loss, {}), (L.L1Loss(), L.l1_loss, {}),
             (L.SSIMLoss(sigma=1.0), L.ssim_loss, {"sigma": 1.0}),
             (L.EdgeLoss(padding="zeros"), L.edge_loss, {"padding": "zeros"}),
             (L.LaplacianLoss(levels=3), L.laplacian_loss, {"levels": 3})]
    for module, fn, kw in pairs:
        assert torch.equal(module(pred, gt, valid, weight), fn(pred, gt, valid, weight, **kw))
        per = type(module)(reduction="none", **kw)(pred, gt)
        assert torch.equal(per, fn(pred, gt, reduction="none", **kw)) and per.shape == (2,)


def test_one_home_per_concept():
    """Luminance lives in lowlight.color, the band in lowlight.data.trimap, the filters in
    lowlight.filters, the fixture in lowlight.teaching; lowlight.losses re-exports exactly its __all__."""
    for gone in ("luminance", "LUMA_WEIGHTS", "unknown_region", "perturb_alpha", "PERTURBATIONS"):
        assert not hasattr(L, gone), gone
    assert all(hasattr(L, name) for name in L.__all__)
    from lowlight import filters

    assert L.sobel is filters.sobel and L.laplacian_pyramid is filters.laplacian_pyramid
    assert L.sobel_magnitude is filters.sobel_magnitude


# ---------------------------------------------------------------------------- dynamic weights


def _images(levels, size=16, seed=0):
    """N x 3 x size x size images whose Rec.709 luma mean is close to each level."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(len(levels), 3, size, size, generator=g, dtype=torch.float64) - 0.5
    base = torch.tensor(levels, dtype=torch.float64).view(-1, 1, 1, 1)
    return (base + 0.1 * noise * base).clamp(0, 1)


def test_luminance_rec709_and_article_mean():
    img = torch.zeros(2, 3, 4, 4)
    img[0, 2] = 1.0                                           # pure blue
    img[1] = 0.5                                              # grey
    np.testing.assert_allclose(mean_luminance(img).numpy(), [0.0722, 0.5], atol=1e-6)
    np.testing.assert_allclose(mean_luminance(img, "mean").numpy(), [1 / 3, 0.5], atol=1e-6)
    with pytest.raises(ValueError, match="normalis"):
        mean_luminance((img - 0.45) / 0.225)                    # ImageNet-normalised input
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        mean_luminance(torch.rand(2, 1, 4, 4))


def test_weights_agree_on_uniform_batches():
    for levels, expected in (([0.1, 0.15, 0.2], 3.0), ([0.5, 0.6, 0.7], 1.5)):
        img = _images(levels)
        for mode in ("batch", "batch_mean", "sample"):
            np.testing.assert_array_equal(L.dynamic_edge_weight(img, mode).numpy(), [expected] * 3)
    # and the composite gives the same total with per-batch and per-sample weights
    g = torch.Generator().manual_seed(3)
    p, q = torch.rand(3, 1, 16, 16, generator=g, dtype=torch.float64), torch.rand(3, 1, 16, 16, generator=g,
                                                                                    dtype=torch.float64)
    img = _images([0.1, 0.15, 0.2])
    totals = {m: float(L.MattingLoss(dynamic=m)(p, q, img)[0]) for m in ("batch", "batch_mean", "sample")}
    assert totals["batch"] == pytest.approx(totals["sample"], rel=1e-12)
    assert totals["batch_mean"] == pytest.approx(totals["sample"], rel=1e-12)
    fixed = L.MattingLoss(dict(mse=1, ssim=1, edge=3.0))(p, q)[0]
    assert totals["sample"] == pytest.approx(float(fixed), rel=1e-12)


def test_weights_differ_as_documented_on_mixed_batches(alpha64):
    img = _images([0.1, 0.15, 0.6, 0.7])                          # two dark, two bright; batch mean ~0.39
    np.testing.assert_array_equal(L.dynamic_edge_weight(img, "sample").numpy(), [3.0, 3.0, 1.5, 1.5])
    np.testing.assert_array_equal(L.dynamic_edge_weight(img, "batch").numpy(), [2.25] * 4)      # article
    np.testing.assert_array_equal(L.dynamic_edge_weight(img, "batch_mean").numpy(), [1.5] * 4)  # 0.39 >= 0.3
    smooth = L.dynamic_edge_weight(img, "smooth").numpy()
    assert np.all(np.diff(smooth) < 0) and np.all((smooth > 1.5) & (smooth < 3.0))
    np.testing.assert_allclose(smooth, [3.0, 3.0, 1.5, 1.5], atol=0.02)
    # the jump vs the ramp: exactly 2.25 at the threshold, monotone around it
    grey = torch.full((5, 3, 4, 4), 0.0, dtype=torch.float64) + torch.tensor(
        [0.24, 0.28, 0.3, 0.32, 0.36], dtype=torch.float64).view(5, 1, 1, 1)
    ramp = L.dynamic_edge_weight(grey, "smooth").numpy()
    assert ramp[2] == pytest.approx(2.25) and np.all(np.diff(ramp) < 0)
    np.testing.assert_array_equal(L.dynamic_edge_weight(grey[[0, 1, 3, 4]], "sample").numpy(), [3.0, 3.0, 1.5, 1.5])

    # composite: per-sample minus per-batch edge contribution = sum_i (w_i - w_bar) c_i E_i / sum c_i
    gts = [portrait_alpha(32, seed=s) for s in range(4)]
    preds = [teaching.perturb_alpha(gts[0], "hair_removed"), teaching.perturb_alpha(gts[1], "blur"),
             teaching.perturb_alpha(gts[2], "noise", 0.01), teaching.perturb_alpha(gts[3], "noise", 0.01)]
    pred, gt = t(np.stack(preds)), t(np.stack(gts))
    e = L.edge_loss(pred, gt, reduction="none")
    tot_s, logs_s = L.MattingLoss(dict(mse=1), dynamic="sample")(pred, gt, img)
    tot_b, logs_b = L.MattingLoss(dict(mse=1), dynamic="batch")(pred, gt, img)
    w = torch.tensor([3.0, 3.0, 1.5, 1.5], dtype=torch.float64)
    assert float(tot_s - tot_b) == pytest.approx(float(((w - w.mean()) * e).mean()), rel=1e-9)
    assert float(tot_s) > float(tot_b)           # the dark samples have the larger edge errors here
    assert float(logs_s["edge_weight"]) == pytest.approx(2.25) and float(logs_b["edge_weight"]) == 2.25


def test_article_snippet_luma_is_the_channel_mean():
    """The article's gray = mean over channels; a blue-cast night image (the typical cast of
    sodium-free street light) can be 'bright' by the mean and 'dark' by Rec. 709."""
    img = torch.zeros(1, 3, 8, 8)
    img[:, 0], img[:, 1], img[:, 2] = 0.2, 0.2, 0.6
    assert float(mean_luminance(img, "mean")) > 0.3 > float(mean_luminance(img))
    assert float(L.dynamic_edge_weight(img, "sample", weights="mean")) == 1.5
    assert float(L.dynamic_edge_weight(img, "sample")) == 3.0


# ---------------------------------------------------------------------------- composite API


def test_composite_returns_total_and_detached_logs(alpha64):
    gt = t(alpha64)
    pred = t(teaching.perturb_alpha(alpha64, "blur")).requires_grad_(True)
    lam = dict(mse=1.0, ssim=0.5, edge=2.0, l1=0.25, laplacian=0.1)
    total, logs = L.MattingLoss(lam)(pred, gt)
    assert set(logs) == set(lam) | {"edge_weight", "total"}
    assert all(not v.requires_grad and v.ndim == 0 for v in logs.values())
    assert float(total.detach()) == pytest.approx(sum(lam[k] * float(logs[k]) for k in lam), rel=1e-12)
    for k, f in TERMS.items():
        assert float(logs[k]) == pytest.approx(float(f(pred.detach(), gt)), rel=1e-12)
    total.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    # a zero lambda is not computed
    _, logs0 = L.MattingLoss(dict(mse=1.0, ssim=0.0))(pred, gt)
    assert "ssim" not in logs0


def test_composite_float32_autocast_cpu(alpha64):
    gt = t(alpha64, torch.float32)
    pred = t(teaching.perturb_alpha(alpha64, "blur"), torch.float32)
    crit = L.MattingLoss()
    ref, _ = crit(pred, gt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = crit(pred.bfloat16(), gt.bfloat16())
    assert out.dtype == torch.float32
    assert float(out) == pytest.approx(float(ref), rel=0.05)


def test_bad_inputs_raise_clear_errors():
    a = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        L.mse_loss(a, torch.rand(2, 1, 16, 15))
    with pytest.raises(ValueError, match="4-D"):
        L.edge_loss(a[0], a[0])
    with pytest.raises(TypeError, match="torch.Tensor"):
        L.ssim(a.numpy(), a)
    with pytest.raises(ValueError, match="valid must have shape"):
        L.mse_loss(a, a, valid=torch.ones(2, 1, 8, 8))
    with pytest.raises(ValueError, match="reduction"):
        L.l1_loss(a, a, reduction="sum")
    with pytest.raises(ValueError, match="unknown term 'gradient'"):
        L.MattingLoss(dict(mse=1, gradient=1))
    with pytest.raises(ValueError, match="dynamic must be one of"):
        L.MattingLoss(dynamic="per-sample")
    with pytest.raises(ValueError, match="needs the input image"):
        L.MattingLoss(dynamic="sample")(a, a)
    with pytest.raises(ValueError, match="normalis"):
        L.MattingLoss(dynamic="batch")(a, a, torch.randn(2, 3, 16, 16))


# ---------------------------------------------------------------------------- teaching fixtures


def test_the_test_alpha_has_fractional_strands():
    """The fixture itself: hair strands with fractional coverage on top of a silhouette."""
    a = portrait_alpha(96, seed=1)
    assert a.shape == (96, 96) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, portrait_alpha(96, seed=1))
    assert not np.array_equal(a, portrait_alpha(96, seed=2))
    bald = portrait_alpha(96, seed=1, hair=False)
    strands = a - bald
    assert np.all(strands >= -1e-6)                            # hair only adds coverage
    on_hair = a[(strands > 0.02) & (bald < 0.01)]
    assert on_hair.size > 50 and np.median(on_hair) < 0.9 and np.mean((on_hair > 0.05) & (on_hair < 0.95)) > 0.8


def test_perturbations_are_deterministic_and_targeted(alpha64):
    bald = portrait_alpha(64, seed=3, hair=False)
    hair = (alpha64 - bald) > 0.05
    for kind in teaching.PERTURBATIONS:
        p = teaching.perturb_alpha(alpha64, kind, seed=2)
        np.testing.assert_array_equal(p, teaching.perturb_alpha(alpha64, kind, seed=2))
        assert p.shape == alpha64.shape and np.abs(p - alpha64).max() > 0.05, kind
    removed = teaching.perturb_alpha(alpha64, "hair_removed")
    assert (alpha64 - removed)[hair].sum() > 0.5 * (alpha64 - bald)[hair].sum()   # most strand mass is gone...
    assert np.abs(removed - alpha64)[bald > 0.99].max() < 0.05     # ...the body stays
    residue = teaching.perturb_alpha(alpha64, "background_residue")
    changed = np.abs(residue - alpha64) > 0.01
    assert changed.any() and alpha64[changed].max() < 0.01         # only background pixels change
    with pytest.raises(ValueError, match="kind must be one of"):
        teaching.perturb_alpha(alpha64, "rotate")
