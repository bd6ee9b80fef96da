"""Zero-reference losses: how a low-light enhancer learns from dark images alone (notebook 04).

From Zero-DCE (Guo et al., CVPR 2020, §3.3), each on RGB images in [0, 1], ``N x 3 x H x W``:

=======================  ==================================================================
spatial consistency      regions of 4x4 pixels: neighbouring regions' differences of the
                         enhanced image should equal the input's (keeps local contrast)
exposure control         16x16 regions' mean intensity pulled to the well-exposedness E = 0.6
colour constancy         grey-world: channel means should agree, sum over (R,G), (R,B), (G,B)
                         of squared differences -- no square root, so no NaN gradient at 0
                         (a known NaN source when a square root is taken of this sum)
illumination smoothness  total variation of the curve map, ``(|d/dx a| + |d/dy a|)^2``
=======================  ==================================================================

``total = spa + exp + 0.5 * col + 20 * tv`` (the weights reported in the Zero-DCE paper):
:class:`ZeroReferenceLoss`. The map the smoothness term regularises is Zero-DCE++'s curve
map (or the illumination map of :class:`~lowlight.models.llie.IlluminationEnhancer`): the
networks return it explicitly, ``enhanced, curve = model.forward_with_map(x)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["spatial_consistency_loss", "exposure_loss", "colour_constancy_loss", "illumination_smoothness_loss",
           "ZeroRefWeights", "ZeroReferenceLoss"]


def spatial_consistency_loss(enhanced: torch.Tensor, original: torch.Tensor, region: int = 4) -> torch.Tensor:
    """Spatial consistency: the grey-level differences between each ``region x region``
    block and its 4 neighbours should be those of the input (squared, averaged over blocks)."""
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), region)
    i = F.avg_pool2d(original.mean(1, keepdim=True), region)
    dh = (y[..., :, 1:] - y[..., :, :-1]).abs() - (i[..., :, 1:] - i[..., :, :-1]).abs()
    dv = (y[..., 1:, :] - y[..., :-1, :]).abs() - (i[..., 1:, :] - i[..., :-1, :]).abs()
    regions = y.shape[-1] * y.shape[-2]
    # every unordered neighbour pair is seen from both of its regions: factor 2
    return 2 * (dh.pow(2).sum((1, 2, 3)) + dv.pow(2).sum((1, 2, 3))).mean() / regions


def exposure_loss(enhanced: torch.Tensor, level: float = 0.6, patch: int = 16) -> torch.Tensor:
    """Exposure control: mean ``|mean intensity of a patch x patch block - level|``."""
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)
    return (y - level).abs().mean()


def colour_constancy_loss(enhanced: torch.Tensor) -> torch.Tensor:
    """Colour constancy (grey world): ``(R-G)^2 + (R-B)^2 + (G-B)^2`` of the channel means,
    averaged over the batch. 0 with a finite gradient on a grey image (no square root)."""
    m = enhanced.mean((2, 3))
    r, g, b = m[:, 0], m[:, 1], m[:, 2]
    return ((r - g) ** 2 + (r - b) ** 2 + (g - b) ** 2).mean()


def illumination_smoothness_loss(curve: torch.Tensor) -> torch.Tensor:
    """Illumination smoothness: ``mean((|d/dx a| + |d/dy a|)^2)`` of a curve/illumination map."""
    dx = (curve[..., :-1, 1:] - curve[..., :-1, :-1]).abs()
    dy = (curve[..., 1:, :-1] - curve[..., :-1, :-1]).abs()
    return (dx + dy).pow(2).mean()


@dataclass
class ZeroRefWeights:
    """The weights of the four terms in :class:`ZeroReferenceLoss` (Zero-DCE's values)."""
    spa: float = 1.0
    exp: float = 1.0
    col: float = 0.5
    tv: float = 20.0


class ZeroReferenceLoss(nn.Module):
    """The four zero-reference losses (module docstring). ``forward(enhanced, original, curve)``
    returns ``(total, terms)`` with ``terms`` a dict of detached floats; ``curve`` is the map
    the network returns next to the image (``model.forward_with_map(x)``)."""

    def __init__(self, exposure_level: float = 0.6, patch: int = 16, region: int = 4,
                 weights: ZeroRefWeights | None = None):
        super().__init__()
        if not 0 < exposure_level < 1:
            raise ValueError(f"exposure_level: expected a value in (0, 1), got {exposure_level}")
        self.E = exposure_level
        self.patch = patch
        self.region = region
        self.w = weights or ZeroRefWeights()

    def spatial(self, enhanced, original):
        return spatial_consistency_loss(enhanced, original, self.region)

    def exposure(self, enhanced):
        return exposure_loss(enhanced, self.E, self.patch)

    colour = staticmethod(colour_constancy_loss)
    smoothness = staticmethod(illumination_smoothness_loss)

    def forward(self, enhanced, original, curve):
        if enhanced.shape[-1] < self.patch or enhanced.shape[-2] < self.patch:
            raise ValueError(f"enhanced: images must be at least {self.patch}x{self.patch}, got {tuple(enhanced.shape)}")
        terms = {
            "spa": self.spatial(enhanced, original),
            "exp": self.exposure(enhanced),
            "col": self.colour(enhanced),
            "tv": self.smoothness(curve),
        }
        total = (self.w.spa * terms["spa"] + self.w.exp * terms["exp"]
                 + self.w.col * terms["col"] + self.w.tv * terms["tv"])
        return total, {k: float(v.detach()) for k, v in terms.items()}
