"""Low-light image enhancement (LLIE) networks, in front of the matting network (notebook 04).

The article (§3.2) puts an enhancement module before CV-UNet::

    input -> LLIE -> enhanced image -> CV-UNet -> alpha

and names Zero-DCE++ ("about 100 KB of parameters"), with an illumination estimator as the
alternative. Both are here, written from their papers' equations, and the two-stage model.
Their zero-reference losses are :mod:`lowlight.losses.zero_reference`; the pretraining loop
is :func:`lowlight.training.llie.pretrain_llie`.

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
    meant, which ``IlluminationEnhancer(mode="retinex")`` provides (:func:`apply_illumination`).

No state is kept between calls: ``forward(x)`` returns the enhanced image, and
``forward_with_map(x)`` returns ``(enhanced, map)`` -- the curve map ``a`` or the
illumination map ``z`` that the smoothness loss regularises.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "light_enhancement_curve",
    "ZeroDCEpp",
    "ResBlock",
    "IlluminationEstimator",
    "apply_illumination",
    "IlluminationEnhancer",
    "TwoStageModel",
]


def light_enhancement_curve(x: torch.Tensor, a: torch.Tensor, iterations: int = 8) -> torch.Tensor:
    """``LE(x) = x + a * x * (1 - x)`` applied ``iterations`` times with one curve map ``a``
    (broadcastable to ``x``, values in [-1, 1]). ``a = 0`` is the identity."""
    if iterations < 0:
        raise ValueError(f"iterations: expected >= 0, got {iterations}")
    for _ in range(iterations):
        x = x + a * x * (1 - x)
    return x


def _check_scale(scale) -> float:
    if not scale >= 1:
        raise ValueError(f"scale: expected a downscale factor >= 1, got {scale}")
    return float(scale)


class _SeparableConv(nn.Module):
    """Depthwise 3x3 convolution followed by a pointwise 1x1 convolution (both with bias)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class ZeroDCEpp(nn.Module):
    """Zero-DCE++ (see the module docstring): an N x 3 x H x W image in [0, 1] -> its enhanced version.

    ``scale`` (>= 1) is the downscale factor of the curve estimation (1 = full resolution),
    fixed at construction and read-only (:attr:`scale`); every call may override it with
    ``scale=`` -- for example to estimate the curves at the size the model was pretrained
    on. ``forward(x, scale=None)`` returns the enhanced image; ``forward_with_map(x, scale=None)``
    returns ``(enhanced, a)`` with the curve map ``a`` the smoothness loss needs.
    """

    def __init__(self, channels: int = 32, iterations: int = 8, scale: float = 1.0):
        super().__init__()
        c = channels
        self.iterations = iterations
        self._scale = _check_scale(scale)
        self.conv1 = _SeparableConv(3, c)
        self.conv2 = _SeparableConv(c, c)
        self.conv3 = _SeparableConv(c, c)
        self.conv4 = _SeparableConv(c, c)
        self.conv5 = _SeparableConv(2 * c, c)
        self.conv6 = _SeparableConv(2 * c, c)
        self.conv7 = _SeparableConv(2 * c, 3)

    @property
    def scale(self) -> float:
        """The default downscale factor (constructor argument; override per call with ``scale=``)."""
        return self._scale

    def extra_repr(self) -> str:
        return f"iterations={self.iterations}, scale={self._scale:g}"

    def curve(self, x: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        """The curve map ``a`` (N x 3 x H x W, in [-1, 1]) for input ``x``."""
        scale = self._scale if scale is None else _check_scale(scale)
        h, w = x.shape[-2:]
        small = x
        if scale > 1:
            size = (max(1, round(h / scale)), max(1, round(w / scale)))
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

    def forward_with_map(self, x: torch.Tensor, scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(enhanced, a)``: the enhanced image and the curve map that produced it."""
        a = self.curve(x, scale)
        return light_enhancement_curve(x, a, self.iterations), a

    def forward(self, x: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        return self.forward_with_map(x, scale)[0]


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


ILLUMINATION_MODES = ("article", "retinex")


def apply_illumination(x, z, mode: str = "article"):
    """Enhance ``x`` with an illumination map ``z`` (tensors or numbers, broadcastable).

    ``mode="article"``: ``x * z + (1 - z) * 0.5`` as printed in the article (a blend towards
    grey: a dark pixel can at most reach 0.5); ``mode="retinex"``: ``min(x / z, 1)``, the
    Retinex reading the estimator's clamp (``z >= 1e-6``, "avoid division by zero") implies.
    """
    if mode == "article":
        return x * z + (1 - z) * 0.5
    if mode == "retinex":
        return (x / z).clamp(max=1.0)
    raise ValueError(f"mode: expected one of {ILLUMINATION_MODES}, got {mode!r}")


class IlluminationEnhancer(nn.Module):
    """Illumination estimator + enhancement formula (:func:`apply_illumination` with ``mode``).

    ``forward(x)`` returns the enhanced image; ``forward_with_map(x)`` returns
    ``(enhanced, z)`` with the illumination map (for the smoothness loss).
    """

    def __init__(self, mode: str = "article", **kw):
        super().__init__()
        if mode not in ILLUMINATION_MODES:
            raise ValueError(f"mode: expected 'article' or 'retinex', got {mode!r}")
        self.mode = mode
        self.estimator = IlluminationEstimator(**kw)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"

    def forward_with_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.estimator(x)
        return apply_illumination(x, z, self.mode), z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_map(x)[0]


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
