r"""Matting metrics SAD, MSE, Gradient and Connectivity, as the DIM MATLAB code defines them.

Introduced in notebook 07 (evaluation).

The numbers papers print for Composition-1k (and the article's §6 table) come from the
MATLAB evaluation code released with *Deep Image Matting* (Ning Xu, 2018):
``compute_sad_loss.m``, ``compute_mse_loss.m``, ``compute_gradient_loss.m`` (with
``gaussgradient.m`` by Guanglei Xiong) and ``compute_connectivity_error.m``, driven by
``evaluate.m``. This module reproduces that code, not one of its Python ports (which
differ in gradient normalisation, in which component counts as the largest, in
threshold ties, or overflow on ``uint8``). The copies read while writing it:
``poppinace/indexnet_matting`` ``evaluation_code/compute_connectivity_error.m``,
``compute_gradient_loss.m``, ``hleval.m``; ``Yaoyi-Li/HOP-Matting``
``DIM_evaluation_code/gaussgradient.m``, ``evaluate.m``; ``compute_sad_loss.m`` and
``compute_mse_loss.m`` in other repositories' copies of the same folder.

Inputs
------
``pred`` and ``gt``: HxW alpha mattes, ``uint8`` 0..255 (what MATLAB reads from a PNG)
or float in [0, 1]; ``trimap``: HxW with the values 0, 128 (unknown) and 255 only.
A ``uint8`` matte that holds only 0 and 1 (with at least one 1) is refused, as the data
loader refuses it: it is a 0/1 mask, whose SAD would come out ~255 times too small;
multiply it by 255 (an all-zero matte is accepted).
Every metric sums over the **unknown pixels** (``trimap == 128``) only.
A float alpha ``x`` plays the role of MATLAB's ``single(u)/255``: a float64 ``u/255``
gives exactly the SAD, MSE and Connectivity of the ``uint8`` ``u``, and its Gradient to
rounding (~1e-12); a float32 ``u/255`` gives the same Connectivity, the rest to ~1e-7.
To reproduce a PNG-based evaluation of float predictions, quantise them first:
``np.round(alpha * 255).astype(np.uint8)``.

Definitions (what the MATLAB code computes)
-------------------------------------------
**SAD** (``compute_sad_loss.m``): sum of ``abs(single(pred) - single(gt)) / 255`` over
unknown pixels, **divided by 1000** (inside the .m file).

**MSE** (``compute_mse_loss.m``): ``((single(pred) - single(gt)) / 255) .^ 2`` summed over
unknown pixels and divided by their number; no scaling. NaN when there is no unknown
pixel (MATLAB's 0/0).

**Gradient** (``compute_gradient_loss.m``; the /1000 is in ``evaluate.m``):

1. ``mat2gray``: each matte is normalised by **its own** minimum and maximum over the
   whole image, ``(A - min) / (max - min)`` in double, not divided by 255 (a prediction
   that peaks at 200 is stretched to 1). A constant matte has zero gradient.
2. ``gaussgradient(., 1.4)``: ``hx(i, j) = G(i) G'(j)`` with
   ``G(x) = exp(-x^2 / (2 sigma^2)) / (sigma sqrt(2 pi))``, ``G'(x) = -x G(x) / sigma^2``,
   ``sigma = 1.4``, half size ``ceil(sigma sqrt(-2 ln(sqrt(2 pi) sigma 0.01))) = 4``
   (9x9), scaled to unit L2 norm (not unit sum); ``hy = hx'``. Applied with
   ``imfilter(IM, h, 'replicate', 'conv')``: a true convolution with **replicated
   borders**.
3. ``amp = sqrt(gx^2 + gy^2)`` in double; the error is ``(single(amp_pred) -
   single(amp_gt))^2`` in single precision, summed over unknown pixels, divided by 1000.

**Connectivity** (``compute_connectivity_error.m``, step 0.1; /1000 in ``evaluate.m``):

1. ``alpha = single(alpha)/255``; thresholds ``0:0.1:1`` as MATLAB's colon operator
   builds them (the 4th is ``0.30000000000000004``, the 8th exactly ``0.7``). A pixel
   passes ``t`` when ``alpha >= t`` compared **exactly** (single against double), so the
   ``uint8`` values 51, 102, 153, 204 pass 0.2, 0.4, 0.6, 0.8 (a float64 port with
   ``np.arange`` thresholds drops 153 at 0.6).
2. For each threshold ``t_k``, k = 1..10: the intersection ``pred >= t_k & gt >= t_k`` is
   split into **4-connected** components (``bwconncomp(., 4)``, not bwlabel's default 8);
   ``omega_k`` is the largest. Among equally large components MATLAB's ``max`` takes
   the first in bwconncomp's list, whose objects come in the order of their first
   pixel in MATLAB's **column-major** linear indexing. An empty intersection skips the
   level (the ``isempty`` guard of the indexnet_matting copy; the unguarded original
   does not handle that case, mmediting assigns the previous threshold instead, which
   differs when a prediction never reaches some threshold).
3. ``l(p) = t_{k-1}`` for the first level ``k`` whose ``omega_k`` misses ``p``; a pixel in
   every ``omega_k`` (or whose remaining levels were all skipped) gets ``l = 1``.
4. ``d = alpha - l`` (single), ``phi = 1 - d .* (d >= 0.15)`` (theta = 0.15, p = 1:
   distances below 0.15 do not count); the error is ``sum |phi_pred - phi_gt|`` over
   unknown pixels, divided by 1000. (The MATLAB code also builds ``bwdist`` distance
   maps that it never uses; they are omitted.)

Exactness
---------
Per-pixel arithmetic follows MATLAB's precision: single where MATLAB uses single,
exact single-vs-double comparisons at every threshold, no ``uint8`` subtraction (so no
wrap-around). Sums are accumulated in double; MATLAB sums its single arrays in single
precision, in an order of its own, which can move its last digits (~1e-6 relative on
large images), so "identical" is defined against the line-by-line reference
``benchmarks/_reference_metrics.py``: SAD, MSE and Connectivity agree to <= 1e-12
relative (only the order of the double sums differs), Gradient to <= 1e-9 relative (its
filters run as two 1-D passes with paired taps, then MATLAB's single rounding).

Speed
-----
One :class:`~lowlight.metrics._inputs.Prepared` step validates the inputs and, in the
same numba pass over the trimap, counts the unknown pixels, finds their bounding box
and flags the 32-column chunks of each row that hold any (a float matte's minimum and
maximum, found while range-checking it, are kept for mat2gray). ``all_metrics``
shares it between the four metrics and takes SAD and MSE from one fused pass
(:func:`sad_and_mse`; for two ``uint8`` mattes one 256-bin histogram of ``|pred - gt|``).
Filters and sums are confined to the bounding box of the unknown pixels (plus the
4-pixel filter margin: real data inside the image, replicated border outside it, so
the result is exact), and inside it to the flagged chunks: a skipped pixel would only
add ``+0.0`` to its row's lane sums, so the sums are bit for bit those over the whole
box. The kernels read ``uint8`` / ``float32`` / ``float64`` mattes as they are (no
float copies of whole images), are single-threaded and deterministic (fixed summation
order), use numba (a dependency of the package), are compiled on first use (one
specialisation per combination of input dtypes) and cached on disk
(``lowlight/metrics/__pycache__``). :func:`use_numba` (``False``) switches every metric
to OpenCV/numpy code that gives the same values (to the last bit or so: OpenCV's sums
depend on buffer alignment) several times slower; the tests use it as an independent
check, and :func:`numba_enabled` tells which is in use.

Layout
------
Every public name is a function or a constant, imported from private modules:
``_common.py`` constants, the numba switch (:func:`use_numba`, :func:`numba_enabled`),
:func:`matlab_thresholds`, :func:`gaussgradient_kernel_1d`, lookup tables;
``_inputs.py`` :func:`check_inputs` and the shared prepared inputs; ``_sad_mse.py``,
``_gradient.py``, ``_connectivity.py`` one metric family each (public function, its
version on prepared inputs, numba dispatch, numpy/OpenCV fallback); ``_kernels.py``
(scans, lane sums, SAD/MSE), ``_kernels_gradient.py``, ``_kernels_connectivity.py``
the numba kernels, one per algorithm (numba specialises each to the input dtypes).
"""
from __future__ import annotations

from ._common import (CONNECTIVITY_STEP, CONNECTIVITY_THETA, GRADIENT_SIGMA,
                      gaussgradient_kernel_1d, matlab_thresholds, numba_enabled, use_numba)
from ._connectivity import connectivity_error
from ._connectivity import connectivity_of as _connectivity_of
from ._gradient import gradient_error
from ._gradient import gradient_of as _gradient_of
from ._inputs import Prepared, check_inputs
from ._sad_mse import mse, sad, sad_and_mse
from ._sad_mse import sad_mse_of as _sad_mse_of

__all__ = [
    "sad", "mse", "sad_and_mse", "gradient_error", "connectivity_error", "all_metrics",
    "check_inputs", "matlab_thresholds", "gaussgradient_kernel_1d",
    "use_numba", "numba_enabled",
    "GRADIENT_SIGMA", "CONNECTIVITY_STEP", "CONNECTIVITY_THETA",
]

# names a user may reach for, and the function each one means (see __getattr__)
_DID_YOU_MEAN = {"gradient": "gradient_error", "connectivity": "connectivity_error",
                 "sad_mse": "sad_and_mse"}


def all_metrics(pred, gt, trimap) -> dict:
    """All four metrics in one call (inputs validated once), in the units papers print:
    ``{"sad", "mse", "gradient", "connectivity"}`` with SAD, Gradient and Connectivity
    divided by 1000 and MSE raw over the unknown pixels. SAD and MSE come from one
    fused pass; with numba every value is bit for bit the individual function's.
    Introduced in notebook 07.
    """
    P = Prepared(pred, gt, trimap)
    s, m = _sad_mse_of(P)
    return {"sad": s, "mse": m, "gradient": _gradient_of(P), "connectivity": _connectivity_of(P)}


def __getattr__(name: str):
    """A missing attribute: say which public function was probably meant."""
    if name in _DID_YOU_MEAN:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}; "
                             f"did you mean {__name__}.{_DID_YOU_MEAN[name]}(pred, gt, trimap)?")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
