"""Constants, the numba switch, MATLAB building blocks and lookup tables shared by the
metric modules."""
from __future__ import annotations

import math

import cv2
import numpy as np

GRADIENT_SIGMA = 1.4        # compute_gradient_loss.m: gaussgradient(pred, 1.4)
CONNECTIVITY_STEP = 0.1     # evaluate.m: compute_connectivity_error(pred, target, trimap, 0.1)
CONNECTIVITY_THETA = 0.15   # compute_connectivity_error.m: pred_d >= 0.15

_F32_255 = np.float32(255.0)


# ====================================================================== the numba switch
_USE_NUMBA = True


def numba_enabled() -> bool:
    """Whether the metrics run their numba kernels (True, the default) or the numba-free
    numpy/OpenCV fallbacks; every metric reads it when it is called. Notebook 07."""
    return _USE_NUMBA


def use_numba(enabled: bool) -> bool:
    """Select the numba kernels (``True``, the default) or the numpy/OpenCV fallbacks
    (``False``: the same values to the last bit or so, several times slower; the tests
    use them as an independent check) for every later metric call. Returns the previous
    setting, so a caller can restore it. Notebook 07."""
    global _USE_NUMBA
    previous, _USE_NUMBA = _USE_NUMBA, bool(enabled)
    return previous


# ================================================================== MATLAB building blocks
def matlab_thresholds(step: float = CONNECTIVITY_STEP) -> np.ndarray:
    """``0:step:1`` element by element as MATLAB's colon operator builds it.

    MATLAB does not accumulate ``k*step`` over the whole range: the first half is
    ``k*step``, the second half ``1 - (n-k)*step`` counted back from the end, and for an
    even count the middle is ``0.5``. So ``0:0.1:1`` holds ``0.30000000000000004`` and
    exactly ``0.7`` (``numpy.arange`` gives ``0.7000000000000001``). Notebook 07.
    """
    step = float(step)
    if not (0 < step <= 1):
        raise ValueError(f"step: expected 0 < step <= 1, got {step}")
    n = int(math.floor(1.0 / step + 1e-10))      # MATLAB tolerates rounding in (b-a)/d
    last = n * step
    if abs(last - 1.0) <= 3 * np.finfo(float).eps:
        last = 1.0
    out = np.empty(n + 1)
    for k in range(n // 2 + 1):
        out[k] = k * step
        out[n - k] = last - k * step
    if n % 2 == 0:
        out[n // 2] = last / 2
    return out


def gaussgradient_kernel_1d(sigma: float = GRADIENT_SIGMA):
    """The two 1-D factors of ``gaussgradient.m``'s kernel: ``hx[i, j] = g[i] * dg[j]``.

    ``g`` is the Gaussian (rows), ``dg`` its derivative (columns) with the unit-L2-norm
    scaling of ``hx`` folded in. For sigma 1.4 both have 9 taps. Notebook 07.
    """
    half = int(math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2))))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
    dg = -x * g / sigma ** 2
    norm = math.sqrt(float(np.sum(g ** 2)) * float(np.sum(dg ** 2)))  # ||outer(g, dg)||_F
    return g, dg / norm


_G, _DG = gaussgradient_kernel_1d(GRADIENT_SIGMA)
_HALF = (len(_G) - 1) // 2
# OpenCV and the kernels correlate; MATLAB's 'conv' flips the kernel. The Gaussian is
# symmetric, its derivative antisymmetric (exactly, in floating point).
_GK = np.ascontiguousarray(_G)
_DK = np.ascontiguousarray(_DG[::-1])
assert _HALF == 4, "the unrolled gradient kernels assume sigma 1.4 (9 taps)"

# single-precision tables for uint8 inputs
_P32_LUT = (np.arange(256, dtype=np.float32) / _F32_255).astype(np.float32)   # single(u)/255
_P64_LUT = np.arange(256, dtype=np.float64) / 255.0                            # u/255 in double
_SAD_LUT = _P32_LUT.astype(np.float64)                     # abs(single(d))/255, d = |p - g|
_MSE_LUT = (_P32_LUT * _P32_LUT).astype(np.float32).astype(np.float64)          # its square
# smallest float32 >= 0.15: `d >= _THETA32` on singles is MATLAB's exact `d >= 0.15`
_THETA32 = np.float32(CONNECTIVITY_THETA)
if float(_THETA32) < CONNECTIVITY_THETA:
    _THETA32 = np.nextafter(_THETA32, np.float32(np.inf))


# ============================================================ helpers of the numpy fallbacks
def _masked_sum(values, mask) -> float:
    """Double-precision sum of float32 ``values`` where ``mask`` (uint8) is non-zero."""
    return float(cv2.sumElems(cv2.copyTo(values, mask))[0])


def _single_alpha(a):
    """MATLAB's ``single(u)/255`` for uint8 (correctly rounded), ``single(x)`` for floats."""
    return cv2.LUT(a, _P32_LUT) if a.dtype == np.uint8 else a.astype(np.float32, copy=False)
