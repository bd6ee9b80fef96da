"""CV-UNet: the article's trimap-free UNet with a swappable encoder (notebooks 03, 06).

A light UNet decoder with skips down to full resolution on top of any registered encoder,
with named parameter groups for staged fine-tuning. Architecture only: a pretrained CV-UNet comes
from :func:`lowlight.models.create_model` (or ``CVUNet(create_encoder(name, pretrained=...))``).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .encoders import Encoder, build_encoder
from .groups import GroupedModule


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + ReLU."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__(
            nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True) if act else nn.Identity(),
        )


class DecoderBlock(nn.Module):
    """One UNet step up: reduce channels at the coarse scale (1x1), upsample x2 (bilinear),
    concatenate the skip, then fuse (1x1) and refine (depthwise 3x3 + pointwise 1x1).

    Reducing before upsampling and using depthwise-separable convolutions keep the decoder
    light at high resolution, where a dense 3x3 conv would dominate the cost on a CPU.
    """

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.reduce = ConvBNAct(cin, cout, 1)
        self.fuse = ConvBNAct(cout + cskip, cout, 1)
        self.dw = ConvBNAct(cout, cout, 3, groups=cout)
        self.pw = ConvBNAct(cout, cout, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse(torch.cat([x, skip], dim=1))
        return self.pw(self.dw(x))


class MattingHead(nn.Module):
    """The full-resolution part of the decoder: an image skip straight from the input, the last
    :class:`DecoderBlock` (stride 2 -> 1) and a 3x3 conv to one alpha logit."""

    def __init__(self, cin: int, cimg: int, cout: int):
        super().__init__()
        self.image_skip = ConvBNAct(3, cimg, 3)
        self.block = DecoderBlock(cin, cimg, cout)
        self.out = nn.Conv2d(cout, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, xn: torch.Tensor) -> torch.Tensor:
        return self.out(self.block(x, self.image_skip(xn)))


class CVUNet(GroupedModule):
    """CV-UNet-style trimap-free matting network with a swappable encoder. Notebook 03.

    ``CVUNet(encoder="mobilenetv2" | "convnext_t" | "swin_t" | Encoder)``:
    RGB in [0, 1] (N, 3, H, W) of any size -> alpha in [0, 1] (N, 1, H, W). A name builds that
    encoder with random weights (``timm_kwargs`` go to timm); for pretrained weights pass an
    :class:`Encoder` from :func:`lowlight.models.create_encoder` (``pretrained=`` takes only
    ``False``/``None`` here: this class loads no weights). The input is padded
    (replicate) to a multiple of 32, normalised as the encoder's weights expect, and the
    output is cropped back. The decoder goes up from stride 32 to full resolution with a skip at
    every scale: encoder features where the encoder has them, otherwise a small convolution of
    the input image (stride 2 for ConvNeXt/Swin, stride 1 for all encoders).

    Parameter groups (see :meth:`param_groups`), in forward order:
    ``encoder.stage1`` ... ``encoder.stageK`` (K = 5 for MobileNetV2, 4 for ConvNeXt/Swin),
    ``decoder`` (stride 16 -> 2 and the stride-2 image skip), ``head`` (the full-resolution image
    skip, the last decoder block and the output conv). :meth:`freeze` / :meth:`unfreeze` take
    these names (or the prefix ``"encoder"``, or ``"all"``). Batch-norm layers whose
    parameters are all frozen keep their running statistics fixed in ``train()`` mode;
    :meth:`keep_bn_eval` does the same for groups that do train.
    """

    def __init__(self, encoder: str | Encoder = "mobilenetv2", pretrained=False,
                 decoder_channels: Sequence[int] = (96, 64, 32, 24, 16),
                 image_skip_channels: tuple[int, int] = (8, 16), **timm_kwargs):
        super().__init__()
        if pretrained not in (False, None):
            raise ValueError(
                f"CVUNet(pretrained={pretrained!r}): the network class builds random weights only; "
                f"pass CVUNet(lowlight.models.create_encoder(name, pretrained=...)) or use "
                f"lowlight.models.create_model(...)")
        if isinstance(encoder, Encoder):
            if timm_kwargs:
                raise ValueError("CVUNet: pass timm options to create_encoder, not together with an "
                                 "Encoder instance")
            self.encoder = encoder
        else:
            self.encoder = build_encoder(encoder, **timm_kwargs)
        enc = self.encoder
        self.pad_multiple = max(enc.strides)
        if self.pad_multiple != 32:
            raise ValueError(f"CVUNet expects an encoder with output stride 32, got {enc.strides}")
        if len(decoder_channels) != 5:
            raise ValueError(f"decoder_channels: 5 values for strides 16, 8, 4, 2, 1, got {decoder_channels}")
        feats = dict(zip(enc.strides, enc.channels))
        missing = [s for s in (4, 8, 16, 32) if s not in feats]
        if missing:
            raise ValueError(f"encoder {enc.name!r} lacks feature maps at strides {missing}")
        c16, c8, c4, c2, c1 = decoder_channels
        self.decoder_channels = tuple(decoder_channels)
        self.image_skip2 = None if 2 in feats else ConvBNAct(3, image_skip_channels[1], 3, stride=2)
        skip2 = feats.get(2, image_skip_channels[1])
        self.up16 = DecoderBlock(feats[32], feats[16], c16)
        self.up8 = DecoderBlock(c16, feats[8], c8)
        self.up4 = DecoderBlock(c8, feats[4], c4)
        self.up2 = DecoderBlock(c4, skip2, c2)
        self.head = MattingHead(c2, image_skip_channels[0], c1)
        self.freeze_bn_stats = True
        self.bn_eval_groups: set[str] = set()

    # ----------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Alpha in [0, 1], shape (N, 1, H, W), for RGB ``x`` in [0, 1], shape (N, 3, H, W)."""
        return torch.sigmoid(self.forward_logits(x))

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-sigmoid alpha logits, same shape as :meth:`forward`'s output."""
        x, h, w = self.pad_input(x)
        xn = self.encoder.normalize(x)
        f = dict(zip(self.encoder.strides, self.encoder.forward_normalized(xn)))
        s2 = f[2] if self.image_skip2 is None else self.image_skip2(xn)
        y = self.up16(f[32], f[16])
        y = self.up8(y, f[8])
        y = self.up4(y, f[4])
        y = self.up2(y, s2)
        y = self.head(y, xn)
        return y[..., :h, :w]

    # ----------------------------------------------------------------- parameter groups
    def named_param_groups(self) -> "OrderedDict[str, list[tuple[str, nn.Parameter]]]":
        """Like :meth:`param_groups` with parameter names (relative to the model)."""
        groups: OrderedDict[str, list] = OrderedDict(
            (f"encoder.stage{k}", []) for k in range(1, self.encoder.num_stages + 1))
        groups["decoder"] = []
        groups["head"] = []
        for name, p in self.named_parameters():
            if name.startswith("encoder.body."):
                k = self.encoder.stage_of_parameter(name[len("encoder.body."):])
                groups[f"encoder.stage{k}"].append((name, p))
            elif name.startswith("head."):
                groups["head"].append((name, p))
            elif name.split(".")[0] in ("up16", "up8", "up4", "up2", "image_skip2"):
                groups["decoder"].append((name, p))
            else:
                groups.setdefault(name.split(".")[0], []).append((name, p))
        return groups



