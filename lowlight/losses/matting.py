"""The composite matting loss :class:`MattingLoss` and the dynamic edge weight (notebooks 05, 06).

The article (§4) trains with ``L = λ1·MSE + λ2·SSIM-loss + λ3·edge`` and raises the edge
weight when the input is dark (§4.2): the article's per-batch scalar is reproduced here,
and per-sample versions. Luminance is :func:`lowlight.color.mean_luminance`; the unknown
band is :func:`lowlight.data.trimap.unknown_band_torch`.
"""
from __future__ import annotations

import math
import numbers
from typing import Mapping

import torch
import torch.nn as nn

from ..color import mean_luminance
from ..filters import PADDINGS
from ._reduce import _check_inputs, _pool, _zero_fill
from .edge import _edge_terms
from .laplacian import _laplacian_terms
from .pixel import _l1_terms, _mse_terms
from .ssim import _ssim_terms

__all__ = ["DYNAMIC_MODES", "dynamic_edge_weight", "MattingLoss"]

#: ``None``: fixed λ. ``"batch"``: the article's snippet as written (per-sample 3.0/1.5 by
#: threshold, then averaged to ONE scalar for the whole batch). ``"batch_mean"``: the
#: prose reading (one scalar from the whole batch's mean luminance). ``"sample"``: each
#: sample its own 3.0/1.5. ``"smooth"``: each sample a sigmoid ramp between them.
DYNAMIC_MODES = (None, "batch", "batch_mean", "sample", "smooth")


def dynamic_edge_weight(image, mode: str = "sample", low: float = 1.5, high: float = 3.0,
                        threshold: float = 0.3, width: float = 0.03, weights: str = "rec709") -> torch.Tensor:
    """Edge weight per sample, shape ``(N,)``, from the input's mean luminance (notebook 05).

    The article (§4.2): dark input (mean luminance < ``threshold`` = 0.3) -> ``high`` (3.0),
    else ``low`` (1.5). Luminance: :func:`lowlight.color.mean_luminance` of the
    *un-normalised* RGB input in [0, 1] (``weights="rec709"``, or ``"mean"`` for the
    article's channel mean). Modes:

    * ``"batch"`` -- the article's snippet as written: ``where(lum_i < 0.3, 3.0, 1.5)``
      averaged over the batch into one scalar (``.mean().item()``); every sample gets it.
      In a half-dark batch everyone gets 2.25.
    * ``"batch_mean"`` -- the prose reading: one scalar from the mean luminance of the
      whole batch (3.0 if it is < 0.3, else 1.5). In a mixed batch the dark samples may
      get the bright weight, or the other way round.
    * ``"sample"`` -- each sample its own 3.0 / 1.5.
    * ``"smooth"`` -- ``low + (high - low) * sigmoid((threshold - lum_i) / width)``: the
      same rule without a jump at 0.3 (2.25 at exactly 0.3; within 1 % of the step
      values once ``|lum - 0.3| > 4.6 width``).

    On a uniform batch (all dark or all bright) ``batch``, ``batch_mean`` and ``sample``
    agree exactly. The weights are constants (no gradient flows through them).
    """
    if mode not in DYNAMIC_MODES or mode is None:
        raise ValueError(f"dynamic_edge_weight: mode must be one of {DYNAMIC_MODES[1:]}, got {mode!r}")
    if not (width > 0):
        raise ValueError(f"dynamic_edge_weight: width must be > 0, got {width!r}")
    lum = mean_luminance(image, weights)
    lo = torch.full_like(lum, float(low))
    hi = torch.full_like(lum, float(high))
    step = torch.where(lum < threshold, hi, lo)
    if mode == "sample":
        return step
    if mode == "batch":
        return step.mean().expand_as(step).clone()
    if mode == "batch_mean":
        return (hi if bool(lum.mean() < threshold) else lo)
    return lo + (hi - lo) * torch.sigmoid((threshold - lum) / width)


_TERMS = {
    "mse": _mse_terms,
    "l1": _l1_terms,
    "ssim": _ssim_terms,
    "edge": _edge_terms,
    "laplacian": _laplacian_terms,
}


class MattingLoss(nn.Module):
    """``total = sum_t λ_t · term_t`` with named terms, logging each one (notebooks 05, 06).

    ``lambdas``: a mapping from term names to weights >= 0; terms: ``"mse"``, ``"l1"``,
    ``"ssim"`` (the SSIM *loss*, 1 - SSIM), ``"edge"`` (Sobel magnitudes), ``"laplacian"``.
    Terms with λ = 0 are not computed. Default ``{"mse": 1, "ssim": 1, "edge": 2}``: the
    article's snippet (``mse + 2.0 * edge``) plus the SSIM term of its formula, whose λ2
    the article never gives.

    ``dynamic``: one of :data:`DYNAMIC_MODES` (see :func:`dynamic_edge_weight`). When it is
    not ``None`` the edge weight comes from the rule (``edge_weights = (low, high)``,
    ``threshold``, ``smooth_width``, ``luma``) and ``lambdas["edge"]`` is ignored; the
    edge term is computed even if ``lambdas`` omits it (``self.lambdas["edge"]`` then holds
    NaN as a marker). ``forward`` then needs ``image``.

    ``region="unknown"`` restricts every term to the trimap's unknown band of the target,
    :func:`lowlight.data.trimap.unknown_band_torch` with ``width=unknown_width`` -- the same
    band the evaluation's trimaps use.

    ``forward(pred, target, image=None, valid=None, weight=None)`` returns
    ``(total, logs)``: ``total`` a scalar tensor with gradient; ``logs`` a dict of
    detached 0-d tensors -- each term's *unweighted* pooled value, ``"edge_weight"`` (the
    mean edge weight used) and ``"total"`` (call ``float()`` on them to log; keeping them
    as tensors avoids a GPU sync per step).

    With a per-sample weight ``w_i`` a term contributes ``sum_i w_i c_i L_i / sum_i c_i``
    (``L_i`` the sample's mean, ``c_i`` its counted pixels), so on a batch where all
    ``w_i`` are equal it is exactly ``w · term`` -- the per-batch formula.
    """

    def __init__(self, lambdas: Mapping[str, float] | None = None, dynamic: str | None = None, *,
                 edge_weights: tuple[float, float] = (1.5, 3.0), threshold: float = 0.3,
                 smooth_width: float = 0.03, luma: str = "rec709", region: str | None = None,
                 unknown_width: int = 5, edge_padding: str = "reflect", edge_eps: float = 1e-8,
                 ssim_sigma: float = 1.5, laplacian_levels: int = 5):
        super().__init__()
        lambdas = dict({"mse": 1.0, "ssim": 1.0, "edge": 2.0} if lambdas is None else lambdas)
        for k, v in lambdas.items():
            if k not in _TERMS:
                raise ValueError(f"MattingLoss: unknown term {k!r} in lambdas; terms: {', '.join(_TERMS)}")
            if not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
                raise ValueError(f"MattingLoss: lambdas[{k!r}] must be a finite number >= 0, got {v!r}")
        if dynamic not in DYNAMIC_MODES:
            raise ValueError(f"MattingLoss: dynamic must be one of {DYNAMIC_MODES}, got {dynamic!r}")
        if region not in (None, "unknown"):
            raise ValueError(f"MattingLoss: region must be None or 'unknown', got {region!r}")
        if edge_padding not in PADDINGS:
            raise ValueError(f"MattingLoss: edge_padding must be one of {PADDINGS}, got {edge_padding!r}")
        if luma not in ("rec709", "mean"):
            raise ValueError(f"MattingLoss: luma must be 'rec709' or 'mean', got {luma!r}")
        low, high = (float(v) for v in edge_weights)
        self.lambdas = {k: float(v) for k, v in lambdas.items()}
        if dynamic is not None:
            self.lambdas["edge"] = float("nan")     # placeholder: the rule decides
        self.dynamic = dynamic
        self.edge_weights = (low, high)
        self.threshold = float(threshold)
        self.smooth_width = float(smooth_width)
        self.luma = luma
        self.region = region
        self.unknown_width = int(unknown_width)
        self._opts = {
            "ssim": {"sigma": float(ssim_sigma)},
            "edge": {"padding": edge_padding, "eps": float(edge_eps)},
            "laplacian": {"levels": int(laplacian_levels)},
        }

    def extra_repr(self) -> str:
        lam = ", ".join(f"{k}=dynamic" if math.isnan(v) else f"{k}={v:g}" for k, v in self.lambdas.items())
        s = f"lambdas=({lam}), dynamic={self.dynamic!r}"
        if self.dynamic is not None:
            s += f", edge_weights={self.edge_weights}, threshold={self.threshold}, luma={self.luma!r}"
        if self.region:
            s += f", region={self.region!r}"
        return s

    def edge_weight(self, image, n: int | None = None) -> torch.Tensor | None:
        """Per-sample edge weights ``(N,)`` the rule gives for ``image`` (``None`` if not dynamic)."""
        if self.dynamic is None:
            return None
        if image is None:
            raise ValueError(f"MattingLoss(dynamic={self.dynamic!r}): forward needs the input image "
                             "(N x 3 x H x W, RGB in [0, 1]) to compute the edge weight")
        if n is not None and image.shape[0] != n:
            raise ValueError(f"MattingLoss: image has {image.shape[0]} samples, pred has {n}")
        low, high = self.edge_weights
        return dynamic_edge_weight(image, self.dynamic, low=low, high=high, threshold=self.threshold,
                                   width=self.smooth_width, weights=self.luma)

    def forward(self, pred, target, image=None, valid=None, weight=None):
        pred, target, valid, weight = _check_inputs(pred, target, valid, weight, "MattingLoss")
        if self.region == "unknown":
            # imported here: lowlight.data (numpy/OpenCV data set code) loads only when it is used
            from ..data.trimap import unknown_band_torch

            band = unknown_band_torch(target, self.unknown_width).expand_as(pred)
            weight = band if weight is None else weight * band
        w_edge = self.edge_weight(image, pred.shape[0])
        if w_edge is not None:
            w_edge = w_edge.to(device=pred.device, dtype=pred.dtype)
        pz, tz = _zero_fill(pred, valid), _zero_fill(target, valid)
        total = pred.new_zeros(())
        logs: dict[str, torch.Tensor] = {}
        for name, lam in self.lambdas.items():
            dyn = name == "edge" and w_edge is not None
            if not dyn and lam == 0:
                continue
            vals, counts = _TERMS[name](pz, tz, valid, weight, **self._opts.get(name, {}))
            logs[name] = _pool(vals, counts).detach()
            total = total + (_pool(vals, counts, w_edge) if dyn else lam * _pool(vals, counts))
        if "edge" in self.lambdas:
            logs["edge_weight"] = (w_edge.mean() if w_edge is not None
                                   else pred.new_tensor(self.lambdas["edge"])).detach()
        logs["total"] = total.detach()
        return total, logs
