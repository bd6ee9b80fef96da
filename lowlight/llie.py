"""Low-light image enhancement (LLIE) in front of the matting network (notebook 04).

The article (§3.2) puts an enhancement module before CV-UNet::

    input -> LLIE -> enhanced image -> CV-UNet -> alpha

and names Zero-DCE++ ("about 100 KB of parameters"), with an illumination estimator as the
alternative. Both are here, written from their papers' equations, plus the zero-reference
losses that let an LLIE learn from low-light images alone, and the two-stage model.

Zero-DCE++ (Li, Guo, Loy: "Learning to Enhance Low-Light Image via Zero-Reference Deep Curve
Estimation", IEEE TPAMI 2021; Zero-DCE: Guo et al., CVPR 2020)
    A light-enhancement curve ``LE(x) = x + a * x * (1 - x)`` with ``a`` in [-1, 1] per pixel
    and channel is monotonic, keeps [0, 1] in [0, 1] and is differentiable. Applied ``n = 8``
    times it approximates higher-order curves. DCE-Net predicts the curve map ``a``: seven
    3x3 convolutions of 32 channels with symmetric skip concatenations (layer 5 sees layers
    3+4, layer 6 sees 2+5, layer 7 sees 1+6), ReLU, and ``tanh`` on the last one. Zero-DCE++
    makes every convolution depthwise-separable, predicts a single 3-channel curve map shared
    by all eight iterations, and estimates it on a downscaled copy of the input (``scale``),
    upsampling the map bilinearly: 10,561 parameters.

The article's illumination estimator
    conv(3->32), eight residual blocks (two 3x3 convolutions each), conv(32->3), sigmoid,
    clamped to >= 1e-6, then ``enhanced = I * z + (1 - z) * 0.5``: 149,731 parameters. Note
    the formula *blends towards grey* (a dark pixel can at most reach 0.5, contrast falls);
    the clamp's comment ("avoid division by zero") suggests the Retinex form ``I / z`` was
    meant, which ``IlluminationEnhancer(mode="retinex")`` provides.

Zero-reference losses (Zero-DCE, CVPR 2020, §3.3), each on images in [0, 1]:
    spatial consistency   regions of 4x4 pixels: neighbouring regions' differences of the
                          enhanced image should equal the input's (keeps local contrast)
    exposure control      16x16 regions' mean intensity pulled to the well-exposedness E = 0.6
    colour constancy      grey-world: channel means should agree, sum over (R,G), (R,B), (G,B)
                          of squared differences -- no square root, so no NaN gradient at 0
                          (a known NaN source when a square root is taken of this sum)
    illumination smooth.  total variation of the curve map, (|d/dx a| + |d/dy a|)^2
    total = spa + exp + 0.5 * col + 20 * tv   (the weights reported in the Zero-DCE paper)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import count_parameters  # re-exported: notebook 04 counts the LLIE modules with it

__all__ = [
    "light_enhancement_curve",
    "ZeroDCEpp",
    "ResBlock",
    "IlluminationEstimator",
    "IlluminationEnhancer",
    "ZeroReferenceLoss",
    "TwoStageModel",
    "count_parameters",
    "pretrain_llie",
]


def light_enhancement_curve(x: torch.Tensor, a: torch.Tensor, iterations: int = 8) -> torch.Tensor:
    """``LE(x) = x + a * x * (1 - x)`` applied ``iterations`` times with one curve map ``a``
    (broadcastable to ``x``, values in [-1, 1]). ``a = 0`` is the identity."""
    if iterations < 0:
        raise ValueError(f"iterations: expected >= 0, got {iterations}")
    for _ in range(iterations):
        x = x + a * x * (1 - x)
    return x


class _SeparableConv(nn.Module):
    """Depthwise 3x3 convolution followed by a pointwise 1x1 convolution (both with bias)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class ZeroDCEpp(nn.Module):
    """Zero-DCE++ (see the module docstring). ``forward(x)`` maps an N x 3 x H x W image in
    [0, 1] to its enhanced version; ``scale`` is the downscale factor of the curve estimation
    (1 = full resolution); the last curve map is kept in ``self.last_curve`` for the
    smoothness loss."""

    def __init__(self, channels: int = 32, iterations: int = 8, scale: float = 1.0):
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale: expected a downscale factor >= 1, got {scale}")
        c = channels
        self.iterations = iterations
        self.scale = float(scale)
        self.conv1 = _SeparableConv(3, c)
        self.conv2 = _SeparableConv(c, c)
        self.conv3 = _SeparableConv(c, c)
        self.conv4 = _SeparableConv(c, c)
        self.conv5 = _SeparableConv(2 * c, c)
        self.conv6 = _SeparableConv(2 * c, c)
        self.conv7 = _SeparableConv(2 * c, 3)
        self.last_curve: torch.Tensor | None = None

    def curve(self, x: torch.Tensor) -> torch.Tensor:
        """The curve map ``a`` (N x 3 x H x W, in [-1, 1]) for input ``x``."""
        h, w = x.shape[-2:]
        small = x
        if self.scale > 1:
            size = (max(1, round(h / self.scale)), max(1, round(w / self.scale)))
            small = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        x1 = F.relu(self.conv1(small))
        x2 = F.relu(self.conv2(x1))
        x3 = F.relu(self.conv3(x2))
        x4 = F.relu(self.conv4(x3))
        x5 = F.relu(self.conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.conv6(torch.cat([x2, x5], 1)))
        a = torch.tanh(self.conv7(torch.cat([x1, x6], 1)))
        if a.shape[-2:] != (h, w):
            a = F.interpolate(a, size=(h, w), mode="bilinear", align_corners=False)
        return a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.curve(x)
        self.last_curve = a
        return light_enhancement_curve(x, a, self.iterations)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a ReLU between and an identity shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


class IlluminationEstimator(nn.Module):
    """The article's illumination estimator: conv(3->32), 8 residual blocks, conv(32->3),
    sigmoid, clamp to [1e-6, 1]. Returns the illumination map ``z``."""

    def __init__(self, channels: int = 3, filters: int = 32, blocks: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, filters, 3, padding=1)
        self.res_blocks = nn.Sequential(*[ResBlock(filters) for _ in range(blocks)])
        self.conv2 = nn.Conv2d(filters, channels, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.conv2(self.res_blocks(self.conv1(x)))).clamp(1e-6, 1)


class IlluminationEnhancer(nn.Module):
    """Illumination estimator + enhancement formula.

    ``mode="article"``: ``I * z + (1 - z) * 0.5`` as printed in the article (a blend towards
    grey); ``mode="retinex"``: ``min(I / z, 1)``, the Retinex reading the clamp implies.
    The map is kept in ``self.last_curve`` (for the smoothness loss).
    """

    def __init__(self, mode: str = "article", **kw):
        super().__init__()
        if mode not in ("article", "retinex"):
            raise ValueError(f"mode: expected 'article' or 'retinex', got {mode!r}")
        self.mode = mode
        self.estimator = IlluminationEstimator(**kw)
        self.last_curve: torch.Tensor | None = None

    def forward(self, x):
        z = self.estimator(x)
        self.last_curve = z
        if self.mode == "article":
            return x * z + (1 - z) * 0.5
        return (x / z).clamp(max=1.0)


# --------------------------------------------------------------------------- zero-reference losses


@dataclass
class ZeroRefWeights:
    spa: float = 1.0
    exp: float = 1.0
    col: float = 0.5
    tv: float = 20.0


class ZeroReferenceLoss(nn.Module):
    """The four zero-reference losses (module docstring). ``forward(enhanced, original, curve)``
    returns ``(total, terms)`` with ``terms`` a dict of detached floats."""

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
        y = F.avg_pool2d(enhanced.mean(1, keepdim=True), self.region)
        i = F.avg_pool2d(original.mean(1, keepdim=True), self.region)
        dh = (y[..., :, 1:] - y[..., :, :-1]).abs() - (i[..., :, 1:] - i[..., :, :-1]).abs()
        dv = (y[..., 1:, :] - y[..., :-1, :]).abs() - (i[..., 1:, :] - i[..., :-1, :]).abs()
        regions = y.shape[-1] * y.shape[-2]
        # every unordered neighbour pair is seen from both of its regions: factor 2
        return 2 * (dh.pow(2).sum((1, 2, 3)) + dv.pow(2).sum((1, 2, 3))).mean() / regions

    def exposure(self, enhanced):
        y = F.avg_pool2d(enhanced.mean(1, keepdim=True), self.patch)
        return (y - self.E).abs().mean()

    @staticmethod
    def colour(enhanced):
        m = enhanced.mean((2, 3))
        r, g, b = m[:, 0], m[:, 1], m[:, 2]
        return ((r - g) ** 2 + (r - b) ** 2 + (g - b) ** 2).mean()

    @staticmethod
    def smoothness(curve):
        dx = (curve[..., :-1, 1:] - curve[..., :-1, :-1]).abs()
        dy = (curve[..., 1:, :-1] - curve[..., :-1, :-1]).abs()
        return (dx + dy).pow(2).mean()

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


# --------------------------------------------------------------------------- the two-stage model


class TwoStageModel(nn.Module):
    """``LLIE -> matting network``. ``forward(x)`` returns the alpha of the matting network
    on the enhanced image; :meth:`enhance` returns the enhanced image. Freeze either part
    with :meth:`freeze_llie` / :meth:`freeze_matting` (``requires_grad`` off; a frozen LLIE
    is also put in eval mode by :meth:`train`)."""

    def __init__(self, llie: nn.Module, matting: nn.Module):
        super().__init__()
        self.llie = llie
        self.matting = matting
        self._llie_frozen = False

    def enhance(self, x):
        return self.llie(x).clamp(0, 1)

    def forward(self, x):
        return self.matting(self.enhance(x))

    def freeze_llie(self, frozen: bool = True) -> "TwoStageModel":
        for p in self.llie.parameters():
            p.requires_grad_(not frozen)
        self._llie_frozen = frozen
        if frozen:
            self.llie.eval()
        return self

    def freeze_matting(self, frozen: bool = True) -> "TwoStageModel":
        for p in self.matting.parameters():
            p.requires_grad_(not frozen)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        if self._llie_frozen:
            self.llie.eval()
        return self


def pretrain_llie(model: nn.Module, batches, steps: int, lr: float = 1e-3, device=None,
                  loss: ZeroReferenceLoss | None = None, grad_clip: float = 1.0, log_every: int = 10):
    """Zero-reference pretraining of an LLIE on low-light images alone (notebook 04).

    ``batches`` is an iterable (cycled) of N x 3 x H x W tensors in [0, 1], or of dicts with an
    ``"image"`` entry. Returns the history: a list of dicts (step, total and each term).
    Raises ``FloatingPointError`` naming the step if the loss stops being finite.
    """
    import itertools

    device = torch.device(device or "cpu")
    loss = loss or ZeroReferenceLoss()
    model.to(device).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    history = []
    it = itertools.cycle(batches) if not isinstance(batches, torch.Tensor) else itertools.repeat(batches)
    for step in range(1, steps + 1):
        batch = next(it)
        x = (batch["image"] if isinstance(batch, dict) else batch).to(device)
        enhanced = model(x)
        total, terms = loss(enhanced, x, model.last_curve)
        if not torch.isfinite(total):
            raise FloatingPointError(f"pretrain_llie: loss is {total.item()} at step {step}; terms {terms}")
        opt.zero_grad(set_to_none=True)
        total.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        if step == 1 or step % log_every == 0 or step == steps:
            history.append({"step": step, "total": float(total.detach()), **terms,
                            "mean_out": float(enhanced.detach().mean())})
    model.eval()
    return history
