"""Tests of lowlight.metrics: hand-computed cases, MATLAB semantics, input errors, and
agreement with the line-by-line reference (benchmarks/_reference_metrics.py)."""
from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path

import cv2
import numba  # a hard dependency: the kernel tests fail, never skip, without it
import numpy as np
import pytest

from lowlight import metrics
from lowlight.metrics import _common

ROOT = Path(__file__).resolve().parents[1]


def _load(name, rel):
    spec = importlib.util.spec_from_file_location(name, ROOT / rel)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, mod)
    spec.loader.exec_module(mod)
    return mod


ref = _load("_reference_metrics_under_test", "benchmarks/_reference_metrics.py")
bench = _load("_bench_metrics_under_test", "benchmarks/bench_metrics.py")

KEYS = ("sad", "mse", "gradient", "connectivity")
F32 = np.float32


@pytest.fixture(params=["numba", "fallback"])
def backend(request):
    """Run a test with the numba kernels and with the numba-free fallback."""
    previous = metrics.use_numba(request.param == "numba")
    yield request.param
    metrics.use_numba(previous)


def _rel(a, b):
    return abs(a - b) / abs(b) if b else abs(a)


# ------------------------------------------------------------------ hand-computed 4x4 case
# pred and gt in uint8, every pixel unknown:
#
#   gt   = 255 255   0   0        pred = 255 255   0   0
#          255 255   0   0               255 153   0   0
#            0   0   0   0                 0   0   0   0
#            0   0   0 204                 0   0   0 102
#
# SAD: two pixels differ by 102/255 = 0.4 -> 0.8 / 1000 = 0.0008.
# MSE: 2 * 0.4^2 / 16 = 0.02.
# Connectivity (thresholds 0.1 .. 1.0; min(pred, gt) is 255, 255, 255, 153 on the 2x2
# block and 102 at (3, 3)):
#   levels 0.1-0.4: intersection = block (4 px) + (3, 3) (1 px): omega = block;
#       (3, 3) leaves omega at level 0.1 -> l = 0.
#   levels 0.5-0.6: intersection = block (153/255 passes 0.6: single(153)/255 =
#       0.60000002 >= 0.6, the tie); levels 0.7-1.0: block without (1, 1).
#       (1, 1) leaves omega at 0.7 -> l = 0.6; the other block pixels never leave -> l = 1.
#   (1, 1): d_pred = 0.6 - 0.6 = 0 -> phi 1; d_gt = 1 - 0.6 = 0.4 >= 0.15 -> phi 0.6: error 0.4
#   (3, 3): d_pred = 0.4 -> phi 0.6;       d_gt = 0.8 -> phi 0.2:             error 0.4
#   other block pixels: d = 0 for both; zeros: l = 0, d = 0: no error.
#   Connectivity = 0.8 / 1000 = 0.0008.  (A port that drops 153 at 0.6 gets l = 0.5 at
#   (1, 1): error 0.5 there, 0.0009 in total.)
GT44 = np.array([[255, 255, 0, 0], [255, 255, 0, 0], [0, 0, 0, 0], [0, 0, 0, 204]], np.uint8)
PRED44 = np.array([[255, 255, 0, 0], [255, 153, 0, 0], [0, 0, 0, 0], [0, 0, 0, 102]], np.uint8)
TRI44 = np.full((4, 4), 128, np.uint8)


def test_hand_computed_4x4(backend):
    out = metrics.all_metrics(PRED44, GT44, TRI44)
    assert out["sad"] == pytest.approx(0.0008, rel=1e-6)
    assert out["mse"] == pytest.approx(0.02, rel=1e-6)
    assert out["connectivity"] == pytest.approx(0.0008, rel=1e-6)
    # the exact single-precision values MATLAB would sum
    e = F32(102) / F32(255)
    assert out["sad"] == float(e) * 2 / 1000
    assert out["mse"] == float(F32(e * e)) * 2 / 16
    # and the same numbers from the oracle
    for k, v in ref.all_metrics(PRED44, GT44, TRI44).items():
        assert _rel(out[k], v) <= 1e-12, k


def test_only_unknown_pixels_count():
    tri = TRI44.copy()
    tri[1, 1] = 255           # the first error pixel becomes known foreground
    assert metrics.sad(PRED44, GT44, tri) == pytest.approx(0.0004, rel=1e-6)
    assert metrics.mse(PRED44, GT44, tri) == pytest.approx(0.16 / 15, rel=1e-6)
    # (3, 3) still counts: (1, 1) still shapes the components, only its error is dropped
    assert metrics.connectivity_error(PRED44, GT44, tri) == pytest.approx(0.0004, rel=1e-6)


# ---------------------------------------------------------------------- MATLAB semantics
def test_matlab_colon_thresholds():
    t = metrics.matlab_thresholds(0.1)
    assert t.tolist() == [0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert np.arange(0, 1.1, 0.1)[7] != t[7]          # numpy accumulates: 0.7000000000000001
    np.testing.assert_array_equal(t, ref.matlab_colon(0.0, 0.1, 1.0))


def test_threshold_ties_uint8_and_float(backend):
    # Row [1, 1, x] in both mattes except x in pred: x belongs to the big component up to
    # the last threshold it passes, t_j, and l(x) = t_j (the next level is not empty,
    # the two 1s are there). gt phi at x: 1 - (1 - t_j); pred phi: 1 (d = x - t_j < 0.15).
    # Error at x = 1 - t_j, the other pixels never leave omega (l = 1, d = 0).
    tri = np.full((1, 3), 128, np.uint8)

    def conn(x, dtype):
        gt = np.array([[1.0, 1.0, 1.0]])
        pred = np.array([[1.0, 1.0, x]])
        if dtype == np.uint8:
            return metrics.connectivity_error(np.round(pred * 255).astype(np.uint8),
                                              (gt * 255).astype(np.uint8), tri) * 1000
        return metrics.connectivity_error(pred.astype(dtype), gt.astype(dtype), tri) * 1000

    # uint8 153: single(153)/255 = 0.60000002 >= 0.6 -> passes 0.6: l = 0.6, error 0.4
    # (float64 153/255 against np.arange's 0.6000000000000001 fails: l = 0.5, error 0.5)
    assert conn(0.6, np.uint8) == pytest.approx(0.4, abs=1e-6)
    # float32 0.7 is 0.69999999 < 0.7 (compared exactly): fails 0.7, l = 0.6, error 0.4
    # (a float32 comparison would let it pass: l = 0.7, error 0.3)
    assert conn(0.7, np.float32) == pytest.approx(0.4, abs=1e-6)
    # float64 0.6 becomes single 0.60000002 as in MATLAB: passes 0.6, error 0.4
    assert conn(0.6, np.float64) == pytest.approx(0.4, abs=1e-6)
    # just below a threshold: fails it
    assert conn(0.59, np.float64) == pytest.approx(0.5, abs=1e-6)
    for x, dt in [(0.6, np.uint8), (0.7, np.float32), (0.6, np.float64)]:
        pred = np.array([[1.0, 1.0, x]]).astype(dt) if dt != np.uint8 else \
            np.array([[255, 255, 153]], np.uint8)
        gt = np.ones((1, 3), dt) if dt != np.uint8 else np.full((1, 3), 255, np.uint8)
        assert metrics.connectivity_error(pred, gt, tri) == ref.connectivity_error(pred, gt, tri)


def test_largest_component_tie_is_first_in_column_major_order(backend):
    # Two 2-pixel components of the intersection: A (row 0, right) comes first in a
    # row-major scan, B (column 0, bottom) first in MATLAB's column-major order.
    pred = np.zeros((5, 5), np.uint8)
    gt = np.zeros((5, 5), np.uint8)
    a, b = [(0, 3), (0, 4)], [(3, 0), (4, 0)]
    for y, x in a:
        pred[y, x], gt[y, x] = 255, 153       # A: pred 1, gt 0.6
    for y, x in b:
        pred[y, x], gt[y, x] = 153, 153       # B: both 0.6
    tri = np.full((5, 5), 128, np.uint8)
    # levels 0.1-0.6: A and B tie at 2 px, omega = B; levels 0.7-1: empty -> skipped.
    # B never leaves omega: l = 1, d <= 0, no error. A leaves at 0.1: l = 0,
    # phi_pred = 1 - 1 = 0, phi_gt = 1 - 0.6 = 0.4: error 0.4 per pixel -> 0.8/1000.
    # (Picking A instead, as a row-major port does, gives 0.)
    c = metrics.connectivity_error(pred, gt, tri)
    assert c * 1000 == pytest.approx(0.8, abs=1e-6)
    assert ref.connectivity_error(pred, gt, tri) == c
    # transposed, the component with A's values comes first column-major: it is omega,
    # and the other one (both 0.6, l = 0, phi 0.4 and 0.4) adds nothing
    c_t = metrics.connectivity_error(pred.T.copy(), gt.T.copy(), tri)
    assert c_t == 0.0
    assert ref.connectivity_error(pred.T.copy(), gt.T.copy(), tri) == 0.0


def test_disconnected_blob_counts_fully(backend):
    # A large blob and a detached small one, identical in pred and gt except that the
    # prediction misses the small one: the detached blob is not in omega (l = 0).
    gt = np.zeros((12, 12), np.uint8)
    gt[1:7, 1:7] = 255
    gt[9:11, 9:11] = 255
    pred = gt.copy()
    pred[9:11, 9:11] = 0
    tri = np.full(gt.shape, 128, np.uint8)
    # 4 missed pixels: gt phi = 1 - (1 - 0) = 0, pred phi = 1 -> error 1 each
    assert metrics.connectivity_error(pred, gt, tri) == pytest.approx(0.004, rel=1e-6)
    # present in both: still detached, l = 0 for both, phi 0 and 0: no error
    assert metrics.connectivity_error(gt, gt, tri) == 0.0
    # a pixel touching the big blob only by a corner is its own component (4-connectivity):
    # pred 204 (0.8), gt 179 (0.702). Alone: l = 0, phi 0.2 and 0.298 -> error 25/255.
    # (Under 8-connectivity it would stay in omega up to 0.7: l = 0.7, d = 0.1 and
    # 0.002 < 0.15, error 0.)
    gt2 = np.zeros((12, 12), np.uint8)
    gt2[1:7, 1:7] = 255
    pred2 = gt2.copy()
    pred2[7, 7], gt2[7, 7] = 204, 179
    assert metrics.connectivity_error(pred2, gt2, tri) == pytest.approx(25 / 255 / 1000, rel=1e-6)
    pred2[7, 6], gt2[7, 6] = 255, 255     # now an edge neighbour joins it to the blob
    assert metrics.connectivity_error(pred2, gt2, tri) == 0.0


def test_empty_level_is_skipped(backend):
    # The prediction never exceeds 0.3, so the intersections at 0.4 .. 1.0 are empty.
    # MATLAB (guarded copy) skips them: the blob pixels never leave omega, l = 1, and
    # d <= 0 everywhere -> error 0. (mmediting's rule would give l = 0.3 and
    # |phi| differences of 0.7 per pixel.)
    gt = np.zeros((6, 6), np.uint8)
    gt[1:5, 1:5] = 255
    pred = np.where(gt > 0, 77, 0).astype(np.uint8)     # single(77)/255 = 0.302 >= 0.3
    tri = np.full(gt.shape, 128, np.uint8)
    assert metrics.connectivity_error(pred, gt, tri) == 0.0
    assert ref.connectivity_error(pred, gt, tri) == 0.0
    # nothing passes even 0.1: every level is skipped, l = 1 for every pixel
    low = np.where(gt > 0, 20, 0).astype(np.uint8)
    assert metrics.connectivity_error(low, gt, tri) == 0.0


def test_empty_level_disconnects_under_the_definition(backend):
    # empty="disconnect" (Rhemann et al.'s definition, mmediting's rule): at the first empty
    # level every pixel still in omega leaves it, l = the previous threshold.
    gt = np.zeros((6, 6), np.uint8)
    gt[1:5, 1:5] = 255
    tri = np.full(gt.shape, 128, np.uint8)
    pred = np.where(gt > 0, 77, 0).astype(np.uint8)     # reaches 0.3, never 0.4
    # blob: l = 0.3, d_pred = 0.002 < theta -> phi 1; d_gt = 0.7 -> phi 0.3: 16 x 0.7
    want = 16 * float(np.float32(1) - np.float32(0.30000000000000004)) / 1000   # |1 - phi_gt| = d_gt
    assert metrics.connectivity_error(pred, gt, tri, empty="disconnect") == pytest.approx(want, rel=1e-6)
    assert ref.connectivity_error(pred, gt, tri, empty="disconnect") == pytest.approx(want, rel=1e-6)
    # an all-zero prediction: skipped it scores a perfect 0; disconnected it costs the truth's mass
    empty = np.zeros_like(gt)
    assert metrics.connectivity_error(empty, gt, tri) == 0.0
    assert metrics.connectivity_error(empty, gt, tri, empty="disconnect") == pytest.approx(0.016, rel=1e-6)
    # where the mattes overlap at every level the two rules agree
    assert metrics.connectivity_error(gt, gt, tri, empty="disconnect") == 0.0
    with pytest.raises(ValueError, match="empty"):
        metrics.connectivity_error(pred, gt, tri, empty="mmediting")


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_disconnect_rule_equals_the_reference(backend, seed):
    pred, gt, tri = bench.make_case(64, seed=seed)
    for scale in (1.0, 0.35, 0.05):          # dimmer predictions leave upper levels empty
        p = np.round(pred.astype(np.float64) * scale).astype(np.uint8)
        got = metrics.connectivity_error(p, gt, tri, empty="disconnect")
        assert got == pytest.approx(ref.connectivity_error(p, gt, tri, empty="disconnect"), rel=1e-12)
        assert got >= metrics.connectivity_error(p, gt, tri) - 1e-12 or scale == 1.0


def test_equal_prediction_gives_zero(backend):
    pred, gt, tri = bench.make_case(96, seed=3)
    out = metrics.all_metrics(gt, gt, tri)
    assert out == {"sad": 0.0, "mse": 0.0, "gradient": 0.0, "connectivity": 0.0}


def test_inverted_prediction(backend):
    _, gt, tri = bench.make_case(96, seed=4)
    inv = (255 - gt).astype(np.uint8)
    out = metrics.all_metrics(inv, gt, tri)
    u = tri == 128
    d = np.abs(255 - 2 * gt.astype(np.int64))[u]
    assert out["sad"] == pytest.approx(d.sum() / 255 / 1000, rel=1e-6)
    assert out["mse"] == pytest.approx(np.mean((d / 255.0) ** 2), rel=1e-6)
    # mat2gray(255 - gt) = 1 - mat2gray(gt) (gt spans 0..255): same gradient magnitude
    assert gt.min() == 0 and gt.max() == 255
    assert out["gradient"] <= 1e-12
    assert out["connectivity"] > 0.1
    for k, v in ref.all_metrics(inv, gt, tri).items():
        assert _rel(out[k], v) <= (1e-9 if k == "gradient" else 1e-12), k


def test_uint8_inputs_do_not_wrap_around(backend):
    pred = np.full((3, 3), 10, np.uint8)
    gt = np.full((3, 3), 250, np.uint8)
    tri = np.full((3, 3), 128, np.uint8)
    # 10 - 250 as uint8 would be 16; the true difference is 240
    assert metrics.sad(pred, gt, tri) == pytest.approx(9 * 240 / 255 / 1000, rel=1e-7)
    assert metrics.sad(gt, pred, tri) == metrics.sad(pred, gt, tri)
    assert metrics.mse(pred, gt, tri) == pytest.approx((240 / 255) ** 2, rel=1e-6)


def test_gradient_uses_mat2gray_not_division_by_255(backend):
    _, gt8, tri = bench.make_case(96, seed=5)
    gt = gt8 / 255.0
    # a prediction that is the ground truth at half strength: mat2gray stretches it back
    assert metrics.gradient_error(gt * 0.5, gt, tri) <= 1e-12
    assert metrics.sad(gt * 0.5, gt, tri) > 0.1
    # a constant prediction has zero gradient: the error is the gt's own amplitude
    flat = np.full_like(gt, 0.3)
    amp = ref._gaussgradient(ref._mat2gray(gt8))
    amp32 = np.sqrt(amp[0] ** 2 + amp[1] ** 2).astype(F32)
    expected = np.sum((amp32 * amp32).astype(np.float64)[tri == 128]) / 1000
    assert metrics.gradient_error(flat, gt, tri) == pytest.approx(expected, rel=1e-9)


def test_gaussgradient_kernel_matches_matlab_construction():
    hx = ref.gaussgradient_kernel(1.4)          # the loops of gaussgradient.m
    assert hx.shape == (9, 9)
    g, dg = metrics.gaussgradient_kernel_1d(1.4)
    np.testing.assert_allclose(np.outer(g, dg), hx, rtol=0, atol=1e-15)
    assert np.sum(hx * hx) == pytest.approx(1.0, abs=1e-14)      # unit L2 norm
    assert abs(hx.sum()) < 1e-15                                 # a derivative filter
    np.testing.assert_array_equal(dg, -dg[::-1])                 # exactly antisymmetric
    # convolution direction: the x-gradient of a ramp increasing to the right is positive
    ramp = np.tile(np.arange(20, dtype=float), (20, 1))
    gx, gy = ref._gaussgradient(ramp)
    assert gx[10, 10] > 0 and abs(gy[10, 10]) < 1e-12


def test_gradient_border_is_replicated(backend):
    # unknown pixels on the image border: replicate padding, as MATLAB's imfilter
    rng = np.random.default_rng(7)
    gt = cv2.GaussianBlur(rng.random((30, 41)), (0, 0), 2)
    gt = (gt - gt.min()) / (gt.max() - gt.min())
    pred = np.clip(gt + rng.normal(0, 0.05, gt.shape), 0, 1)
    tri = np.zeros(gt.shape, np.uint8)
    tri[0, :] = tri[-1, :] = tri[:, 0] = tri[:, -1] = 128
    tri[10:12, 15:30] = 128
    assert _rel(metrics.gradient_error(pred, gt, tri), ref.gradient_error(pred, gt, tri)) <= 1e-9


def test_no_unknown_pixels():
    pred, gt, _ = bench.make_case(64, seed=1)
    tri = np.where(gt > 127, 255, 0).astype(np.uint8)
    out = metrics.all_metrics(pred, gt, tri)
    assert out["sad"] == 0.0 and out["gradient"] == 0.0 and out["connectivity"] == 0.0
    assert np.isnan(out["mse"])                     # MATLAB: 0/0


# ---------------------------------------------------------------- input conventions
def test_uint8_and_float64_u_over_255_agree_exactly():
    # every (pred, gt) pair of uint8 values, SAD and MSE per pixel: one float32 rounding
    u = np.arange(256, dtype=np.uint8)
    pred, gt = np.meshgrid(u, u)
    tri = np.full(pred.shape, 128, np.uint8)
    for f in (metrics.sad, metrics.mse):
        assert f(pred, gt, tri) == f(pred / 255.0, gt / 255.0, tri)
    np.testing.assert_array_equal((u / 255.0).astype(F32), _common._P32_LUT)


def test_float_inputs_agree_with_uint8(backend):
    pred, gt, tri = bench.make_case(128, seed=2)
    a = metrics.all_metrics(pred, gt, tri)
    b = metrics.all_metrics(pred / 255.0, gt / 255.0, tri)
    c = metrics.all_metrics(pred.astype(F32) / F32(255), gt.astype(F32) / F32(255), tri)
    for k in ("sad", "mse", "connectivity"):
        assert a[k] == b[k], k
    assert _rel(b["gradient"], a["gradient"]) <= 1e-12
    assert a["connectivity"] == c["connectivity"]
    for k in KEYS:
        assert _rel(c[k], a[k]) <= 1e-6, k


def test_single_channel_third_axis_is_accepted():
    out = metrics.all_metrics(PRED44[..., None], GT44[..., None], TRI44[..., None])
    assert out == metrics.all_metrics(PRED44, GT44, TRI44)


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("fn", [metrics.sad, metrics.mse, metrics.gradient_error,
                                metrics.connectivity_error, metrics.all_metrics])
def test_errors_name_the_argument(fn):
    ok = np.zeros((4, 5), np.uint8)
    tri = np.full((4, 5), 128, np.uint8)
    cases = [
        ((np.zeros((4, 6), np.uint8), ok, tri), r"pred and gt: shapes differ"),
        ((ok, ok, np.full((5, 4), 128, np.uint8)), r"trimap: shape"),
        ((np.zeros((4, 5, 3), np.uint8), ok, tri), r"pred: .*3 channels"),
        ((ok, np.zeros((4, 5, 4), np.uint8), tri), r"gt: .*4 channels"),
        ((ok, ok, np.full((4, 5), 100, np.uint8)), r"trimap: values must be 0 .*128.*255"),
        ((ok, ok, np.full((4, 5), 1, np.uint8)), r"trimap: values"),
        ((np.full((4, 5), np.nan), ok, tri), r"pred: contains NaN"),
        ((ok, np.full((4, 5), 1.5), tri), r"gt: float alpha must lie in \[0, 1\]"),
        ((np.full((4, 5), -0.1, np.float32), ok, tri), r"pred: float alpha must lie in"),
        ((ok.astype(np.int32), ok, tri), r"pred: expected dtype uint8"),
        ((ok, ok, np.ones((4, 5), bool)), r"trimap: expected numeric"),
        ((np.zeros(5, np.uint8), ok, tri), r"pred: expected a 2-D"),
    ]
    for args, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            fn(*args)


MASK_MESSAGE = "expected 0-255 (uint8) or [0, 1] float; got a 0/1 uint8 mask — multiply by 255"


def _mask_case():
    """A 0/1 uint8 object mask as ground truth, a shifted copy as prediction, a trimap whose
    unknown band covers both outlines."""
    gt = np.zeros((40, 50), np.uint8)
    gt[8:30, 10:36] = 1
    pred = np.roll(gt, 3, axis=1)
    tri = np.zeros(gt.shape, np.uint8)
    tri[4:34, 6:42] = 128
    return pred, gt, tri


@pytest.mark.parametrize("fn", [metrics.sad, metrics.mse, metrics.sad_and_mse,
                                metrics.gradient_error, metrics.connectivity_error,
                                metrics.all_metrics, metrics.check_inputs])
def test_a_0_1_uint8_reference_mask_is_refused_naming_the_argument(fn, backend):
    # issue 23: read as 0..255 alpha a 0/1 mask is almost transparent, and the SAD comes out
    # ~255x too small; refused as lowlight.data.read_alpha refuses a 0/1 matte file
    pred, gt, tri = _mask_case()
    with pytest.raises(ValueError, match="^gt: " + re.escape(MASK_MESSAGE)):
        fn(pred, gt, tri)                                # the case of the issue: both masks
    with pytest.raises(ValueError, match="^gt: " + re.escape(MASK_MESSAGE)):
        fn(pred * 255, gt, tri)
    with pytest.raises(ValueError, match="^gt: " + re.escape(MASK_MESSAGE)):
        fn(pred * 255, np.ones_like(gt), tri)            # 1 everywhere is a mask too
    with pytest.raises(ValueError, match="^gt: " + re.escape(MASK_MESSAGE)):
        fn(pred * 255, gt[..., None], tri)               # HxWx1 as well


def test_a_prediction_with_levels_0_and_1_is_scored():
    """An 8-bit prediction of a model that nearly gives up in the dark (every alpha below 0.006)
    has exactly the levels 0 and 1: it is a legitimate, bad result, scored like its float value."""
    pred, gt, tri = _mask_case()
    faint = metrics.all_metrics(pred, gt * 255, tri)
    as_float = metrics.all_metrics(pred / 255.0, gt.astype(np.float64), tri)
    assert faint["sad"] == pytest.approx(as_float["sad"], rel=1e-12) and faint["sad"] > 0.5


def test_masks_times_255_and_all_zero_mattes_are_accepted(backend):
    pred, gt, tri = _mask_case()
    as_u8 = metrics.all_metrics(pred * 255, gt * 255, tri)
    as_float = metrics.all_metrics(pred.astype(np.float64), gt.astype(np.float64), tri)
    assert as_u8["sad"] == pytest.approx(132 / 1000)     # 2 x (22 rows x 3 columns) missed
    for k in KEYS:
        assert as_u8[k] == pytest.approx(as_float[k], rel=1e-12, abs=0), k
    assert as_u8["sad"] == as_float["sad"] and as_u8["mse"] == as_float["mse"]
    # an all-zero uint8 matte is a legitimate prediction (a model that gives up)
    zero = metrics.all_metrics(np.zeros_like(gt), gt * 255, tri)
    assert zero["sad"] == metrics.sad(np.zeros(gt.shape), gt.astype(np.float64), tri) > 0
    assert metrics.all_metrics(np.zeros_like(gt), np.zeros_like(gt), tri)["sad"] == 0.0
    # a float 0/1 mask is an alpha in [0, 1]; a uint8 matte that reaches 2 is a matte
    assert metrics.sad(pred.astype(F32), gt.astype(F32), tri) == as_u8["sad"]
    faint = gt.copy()
    faint[0, 0] = 2
    assert metrics.sad(faint, faint, tri) == 0.0


def test_float_trimap_with_valid_values_is_accepted():
    assert metrics.sad(PRED44, GT44, TRI44.astype(float)) == metrics.sad(PRED44, GT44, TRI44)


# ---------------------------------------------------- agreement with the reference (oracle)
def _random_case(rng, h, w, kind):
    """A random matte pair with soft edges, thin lines, exact-threshold values (51k)
    and noise; a trimap with an unknown band, sometimes touching the image border."""
    field = cv2.resize(rng.normal(0, 1, (max(h // 8, 2), max(w // 8, 2))), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    gt = np.clip(0.5 + 1.5 * field, 0, 1)
    for _ in range(3):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(gt, p0, p1, float(rng.uniform(0.3, 1)), 1)
    pred = np.clip(gt + 0.15 * cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 2)
                   + rng.normal(0, 0.03, (h, w)), 0, 1)
    gt8 = np.round(gt * 255).astype(np.uint8)
    pred8 = np.round(pred * 255).astype(np.uint8)
    ties = rng.random((h, w)) < 0.05
    pred8[ties] = rng.choice([0, 51, 102, 153, 204, 255], ties.sum())
    ties = rng.random((h, w)) < 0.05
    gt8[ties] = rng.choice([0, 51, 102, 153, 204, 255], ties.sum())
    if rng.random() < 0.3:
        tri = np.full((h, w), 128, np.uint8)          # unknown everywhere, borders included
    else:
        k = np.ones((5, 5), np.uint8)
        tri = np.full((h, w), 128, np.uint8)
        tri[cv2.erode((gt8 == 255).astype(np.uint8), k) == 1] = 255
        tri[cv2.dilate((gt8 > 0).astype(np.uint8), k) == 0] = 0
    if kind == "uint8":
        return pred8, gt8, tri
    if kind == "float64":
        return pred, gt, tri
    if kind == "float32":
        return pred.astype(F32), gt.astype(F32), tri
    return pred.astype(F32), gt8, tri                  # mixed: float prediction, PNG gt


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64", "mixed"])
def test_agrees_with_reference_on_random_inputs(kind, backend):
    rng = np.random.default_rng(["uint8", "float32", "float64", "mixed"].index(kind))
    for h, w in [(40, 57), (64, 64), (97, 130), (1, 9), (9, 1)]:
        for _ in range(2):
            pred, gt, tri = _random_case(rng, h, w, kind)
            out = metrics.all_metrics(pred, gt, tri)
            exp = ref.all_metrics(pred, gt, tri)
            for k in KEYS:
                if np.isnan(exp[k]):
                    assert np.isnan(out[k])
                    continue
                tol = 1e-9 if k == "gradient" else 1e-12
                assert _rel(out[k], exp[k]) <= tol, (k, h, w, out[k], exp[k])


def test_agrees_with_reference_on_realistic_case(backend):
    for seed, kind in [(0, "uint8"), (1, "float32")]:
        pred, gt, tri = bench.make_case(256, seed=seed, pred_dtype=kind)
        out = metrics.all_metrics(pred, gt, tri)
        exp = ref.all_metrics(pred, gt, tri)
        assert out["connectivity"] > 0 and out["gradient"] > 0
        for k in KEYS:
            assert _rel(out[k], exp[k]) <= (1e-9 if k == "gradient" else 1e-12), (seed, k)


def test_individual_functions_match_all_metrics():
    pred, gt, tri = bench.make_case(96, seed=6, pred_dtype="float32")
    out = metrics.all_metrics(pred, gt, tri)
    assert out == {"sad": metrics.sad(pred, gt, tri), "mse": metrics.mse(pred, gt, tri),
                   "gradient": metrics.gradient_error(pred, gt, tri),
                   "connectivity": metrics.connectivity_error(pred, gt, tri)}


def test_strided_views_are_accepted():
    pred, gt, tri = bench.make_case(64, seed=8)
    rgba = np.dstack([gt, gt, gt, pred])                 # alpha as a strided view
    assert metrics.all_metrics(rgba[..., 3], gt, tri) == metrics.all_metrics(pred, gt, tri)
    assert metrics.all_metrics(pred[:, ::-1], gt[:, ::-1], tri[:, ::-1]) == \
        metrics.all_metrics(pred[:, ::-1].copy(), gt[:, ::-1].copy(), tri[:, ::-1].copy())


def test_benchmark_script_runs_and_checks_values(capsys):
    assert bench.main(["--size", "64", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "all_metrics" in out and "exceeds tolerance" not in out
    assert out.count("[realistic: ") == 2 and out.count("[portrait: ") == 2
    assert "bit for bit: NO" not in out and out.count("bit for bit: yes") == 4


def test_portrait_case_has_about_39_percent_unknown():
    _, _, tri = bench.make_portrait_case(512, pred_dtype="uint8")
    assert 0.33 < np.mean(tri == 128) < 0.45


# ------------------------------------------------------- fused / shared paths and kernels
def _shared_cases():
    rng = np.random.default_rng(11)
    for kind in ("uint8", "float32", "float64", "mixed"):
        for h, w in [(40, 57), (97, 130), (1, 9), (9, 1), (70, 3)]:
            yield _random_case(rng, h, w, kind)
    for kind in ("uint8", "float32"):
        yield bench.make_case(160, seed=9, pred_dtype=kind)
        yield bench.make_portrait_case(192, seed=4, pred_dtype=kind)


def _same(a, b, exact):
    if np.isnan(a) or np.isnan(b):
        return np.isnan(a) and np.isnan(b)
    return a == b if exact else _rel(a, b) <= 1e-12


def test_fused_and_shared_paths_give_the_individual_numbers_exactly(backend):
    # all_metrics validates once, scans the trimap once and takes SAD and MSE from one
    # fused pass; sad_and_mse is that pass: every number must be the single function's.
    # (The OpenCV fallback's sums and filters can move the last bit with the memory
    # alignment of their buffers, so there the check is to 1e-12.)
    exact = backend == "numba"
    for pred, gt, tri in _shared_cases():
        single = {"sad": metrics.sad(pred, gt, tri), "mse": metrics.mse(pred, gt, tri),
                  "gradient": metrics.gradient_error(pred, gt, tri),
                  "connectivity": metrics.connectivity_error(pred, gt, tri)}
        out = metrics.all_metrics(pred, gt, tri)
        s, m = metrics.sad_and_mse(pred, gt, tri)
        for k in KEYS:
            assert _same(out[k], single[k], exact), (k, out[k], single[k])
        assert _same(s, single["sad"], exact) and _same(m, single["mse"], exact)


def test_sad_and_mse_without_unknown_pixels():
    s, m = metrics.sad_and_mse(PRED44, GT44, np.zeros((4, 4), np.uint8))
    assert s == 0.0 and np.isnan(m)


def test_public_api_is_importable_from_the_package():
    import lowlight.metrics as pkg
    for name in pkg.__all__:
        assert hasattr(pkg, name), name
    for name in ("sad", "mse", "gradient_error", "connectivity_error", "all_metrics",
                 "check_inputs", "matlab_thresholds", "gaussgradient_kernel_1d",
                 "GRADIENT_SIGMA", "CONNECTIVITY_STEP", "CONNECTIVITY_THETA"):
        assert name in pkg.__all__, name
    p, g, t = metrics.check_inputs(PRED44[..., None], GT44, TRI44.astype(float))
    assert p.shape == (4, 4) and t.dtype == np.uint8


def test_public_names_are_functions_or_constants_not_modules():
    # `lowlight.metrics.gradient(pred, gt, tri)` used to reach a submodule ("'module'
    # object is not callable"); the metric families now live in private modules
    for name in metrics.__all__:
        obj = getattr(metrics, name)
        assert not isinstance(obj, types.ModuleType), name
        assert callable(obj) or isinstance(obj, (int, float, str, tuple)), name
    public = [n for n in dir(metrics) if not n.startswith("_")]
    assert not [n for n in public if isinstance(getattr(metrics, n), types.ModuleType)]
    for old, new in (("gradient", "gradient_error"), ("connectivity", "connectivity_error"),
                     ("sad_mse", "sad_and_mse")):
        with pytest.raises(AttributeError, match=f"did you mean lowlight.metrics.{new}"):
            getattr(metrics, old)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        metrics.nonexistent  # noqa: B018


def test_numba_switch_is_a_function_of_the_package():
    assert metrics.numba_enabled() is True                # the default
    assert metrics.use_numba(False) is True
    try:
        assert metrics.numba_enabled() is False
        assert metrics.check_inputs(PRED44, GT44, TRI44)[0] is not None
        out = metrics.all_metrics(PRED44, GT44, TRI44)
    finally:
        assert metrics.use_numba(True) is False
    assert out["sad"] == metrics.sad(PRED44, GT44, TRI44)


def test_each_kernel_is_one_numba_function_specialised_per_dtype():
    from lowlight.metrics import _kernels, _kernels_connectivity, _kernels_gradient
    kernels = [getattr(m, n) for m in (_kernels, _kernels_gradient, _kernels_connectivity)
               for n in dir(m) if n.startswith("_k_")]
    assert len(kernels) >= 10
    assert all(isinstance(k, numba.core.dispatcher.Dispatcher) for k in kernels)
    pred, gt, tri = bench.make_case(64, seed=3)
    for p, g in ((pred, gt), (pred / 255.0, gt.astype(F32) / F32(255))):
        metrics.all_metrics(p, g, tri)
    # the same Python function compiled for (uint8, uint8) and (float64, float32) mattes
    arg_types = {sig[:2] for sig in _kernels_gradient._k_gradient.signatures}
    assert {str(t[0].dtype) for t in arg_types} >= {"uint8", "float64"}


def test_trimap_scan_matches_numpy():
    from lowlight.metrics import _kernels as K
    rng = np.random.default_rng(5)
    for h, w in [(1, 1), (3, 70), (64, 64), (33, 97), (200, 9)]:
        for density in (0.0, 0.001, 0.05, 1.0):
            tri = rng.choice(np.array([0, 255], np.uint8), (h, w))
            tri[rng.random((h, w)) < density] = 128
            bad, n, y0, y1, x0, x1, flags = K._k_trimap_scan(tri, K.CHUNK)
            u = tri == 128
            assert bad == 0 and n == int(u.sum())
            if n:
                ys, xs = np.nonzero(u)
                assert (y0, y1, x0, x1) == (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
            else:
                assert (y0, y1, x0, x1) == (0, 0, 0, 0)
            pad = np.zeros((h, flags.shape[1] * K.CHUNK), bool)
            pad[:, :w] = u
            expected = pad.reshape(h, -1, K.CHUNK).any(axis=2)
            np.testing.assert_array_equal(flags.astype(bool), expected)
            tri[0, 0] = 7
            assert K._k_trimap_scan(tri, K.CHUNK)[0] == 1


def test_chunk_skipping_does_not_change_the_sums():
    # the kernels only visit the 32-column chunks that hold unknown pixels; visiting
    # every chunk of the box (skipped pixels add +0.0 to the lane sums) gives the same bits
    from lowlight.metrics import _connectivity, _gradient, _inputs, _sad_mse
    for kind in ("uint8", "float32", "mixed"):
        pred, gt, tri = _random_case(np.random.default_rng(21), 90, 150, kind)
        tri[:, :37] = 0                          # a box that does not start at column 0
        tri[::7, 60:] = 128
        P = _inputs.Prepared(pred, gt, tri)
        assert P.flags.any() and not P.flags.all()
        assert P.fast                            # the numba kernels (the default)

        def values():
            return (_sad_mse.sad_mse_of(P), _gradient.gradient_of(P),
                    _connectivity.connectivity_of(P))

        skipped = values()
        P.flags = np.ones_like(P.flags)
        assert values() == skipped, kind


def test_uint8_level_thresholds_match_the_single_precision_comparison():
    from lowlight.metrics import _connectivity as conn
    for step in (0.1, 0.05, 0.3, 1 / 3, 0.25):
        t = metrics.matlab_thresholds(step)
        K = len(t) - 1
        c32, lut = conn._threshold_tables(t)
        u = conn._uint8_thresholds(lut, K)
        v = np.arange(256)
        levels_u8 = (v[:, None] >= u[None, 1:].astype(int)).sum(1)
        levels_f = (_common._P32_LUT.astype(np.float64)[:, None] >= t[None, 1:]).sum(1)
        np.testing.assert_array_equal(levels_u8, levels_f)
        np.testing.assert_array_equal(lut, levels_f)
