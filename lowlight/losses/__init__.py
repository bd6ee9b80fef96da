"""Losses: the matting terms of the article and the zero-reference LLIE losses (notebooks 04, 05).

One term per file, each a function (``edge_loss``) and a module (``EdgeLoss``):

==========================  =================================================================
``losses.pixel``            :func:`mse_loss`, :func:`l1_loss` -- the article's λ1 term, and L1
``losses.ssim``             :func:`ssim_map`, :func:`ssim`, :func:`ssim_loss` -- λ2 (= scikit-image)
``losses.edge``             :func:`edge_loss` -- λ3, MSE of Sobel magnitudes (= OpenCV's Sobel)
``losses.laplacian``        :func:`laplacian_loss` -- ViTMatte's Laplacian-pyramid L1
``losses.matting``          :class:`MattingLoss` (the weighted, logged sum) and
                            :func:`dynamic_edge_weight` (§4.2's brightness rule)
``losses.zero_reference``   :class:`ZeroReferenceLoss` and its four terms (Zero-DCE, notebook 04)
==========================  =================================================================

The filters the terms are built from (SSIM's Gaussian window, Sobel, the Laplacian pyramid, the
erosion of ``valid``) live in :mod:`lowlight.filters`; :func:`sobel`, :func:`sobel_magnitude` and
:func:`laplacian_pyramid` are re-exported here for notebook 05.

Luminance is :func:`lowlight.color.mean_luminance`; the trimap's unknown band (for
``weight=`` or ``MattingLoss(region="unknown")``) is
:func:`lowlight.data.trimap.unknown_band_torch`; the controlled errors notebook 05 feeds
these losses are :func:`lowlight.teaching.perturb_alpha`.

Conventions shared by every matting term
----------------------------------------
* ``pred`` and ``target`` are float tensors ``N x C x H x W`` (alpha mattes: ``C = 1``,
  values in [0, 1]). Half-precision inputs are computed in float32 (SSIM's variances
  cancel catastrophically in fp16), with autocast switched off inside.
* ``valid`` (optional, ``N x 1 x H x W`` or the shape of ``pred``, values in {0, 1}; read
  as ``valid > 0.5``) marks pixels that exist -- ``CutoutWithAlpha`` sets 0 inside its
  holes. Masked pixels contribute *nothing*: their values are replaced by 0 before any
  filter runs, and a pixel of a loss map is counted only if every input pixel it reads
  is valid (its *support*: the pixel itself for MSE/L1, the 3x3 Sobel neighbourhood for
  the edge term, the 11x11 window for SSIM). The Laplacian term is linear in
  ``pred - target``, so there the difference is set to 0 at masked pixels instead.
  Means are normalised by the number of counted pixels.
* ``weight`` (optional, same shapes, values >= 0) weights the pixels of the loss map
  (for example the unknown band); it does not change the local statistics.
* ``reduction="mean"`` returns one number: the sum of weighted per-pixel losses over
  the batch divided by the sum of weights (a pixel-pooled mean). ``reduction="none"``
  returns the per-sample means, shape ``(N,)``; a sample with no counted pixel gets 0.
  The composite weights samples through these per-sample values; with equal weights
  it reduces exactly to the pooled mean.
"""
from __future__ import annotations

from ..filters import laplacian_pyramid, sobel, sobel_magnitude
from .edge import EdgeLoss, edge_loss
from .laplacian import LaplacianLoss, laplacian_loss
from .matting import DYNAMIC_MODES, MattingLoss, dynamic_edge_weight
from .pixel import L1Loss, MSELoss, l1_loss, mse_loss
from .ssim import SSIMLoss, ssim, ssim_loss, ssim_map
from .zero_reference import (ZeroReferenceLoss, ZeroRefWeights, colour_constancy_loss, exposure_loss,
                             illumination_smoothness_loss, spatial_consistency_loss)

__all__ = [
    # matting terms: function and module
    "mse_loss", "MSELoss",
    "l1_loss", "L1Loss",
    "ssim_map", "ssim", "ssim_loss", "SSIMLoss",
    "edge_loss", "EdgeLoss",
    "laplacian_loss", "LaplacianLoss",
    # the filters the terms are built from (lowlight.filters)
    "sobel", "sobel_magnitude", "laplacian_pyramid",
    # composite and the brightness rule
    "MattingLoss", "dynamic_edge_weight", "DYNAMIC_MODES",
    # zero-reference LLIE losses (notebook 04)
    "spatial_consistency_loss", "exposure_loss", "colour_constancy_loss", "illumination_smoothness_loss",
    "ZeroRefWeights", "ZeroReferenceLoss",
]
