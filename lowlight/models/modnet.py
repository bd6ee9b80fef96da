"""MODNet as a native, readable PyTorch module, loaded from the verified ONNX asset.

MODNet (Ke et al., "MODNet: Real-Time Trimap-Free Portrait Matting via Objective
Decomposition", AAAI 2022; reference code Apache-2.0, github.com/ZHKKKe/MODNet) splits portrait
matting into three sub-objectives, each solved by its own branch on top of one MobileNetV2:

1. **Low-resolution (semantic) branch** -- *where is the person?* The stride-32 feature of
   the backbone is re-weighted channel by channel by a squeeze-and-excitation block, then
   brought up to stride 8 by two (upsample x2, 5x5 conv) steps. During MODNet's training a
   small head turns it into a coarse matte (the *semantic* estimate, stride 16).
2. **High-resolution (detail) branch** -- *where exactly are the boundaries?* It works at
   strides 4 and 2 on the backbone's early, high-resolution features, the down-scaled image
   and the semantic feature, and (during training) predicts the matte in a transition band
   around the boundary (the *detail* estimate, full resolution).
3. **Fusion branch** -- combines the semantic feature (upsampled to stride 2) with the
   detail feature and the full-resolution image into the final alpha matte.

Everything after the backbone uses :class:`IBNorm`: batch-norm on the first half of the
channels and instance-norm (no affine) on the second half, so that the features are both
consistent across a batch and independent of each image's overall brightness and contrast.

The released weights come from an ONNX export; what it contains, and how it is read, is in
:mod:`lowlight.models.weights` (:func:`~lowlight.models.weights.load_modnet_weights`). This
module is architecture only: :func:`lowlight.models.create_model` (``"modnet"``) builds the
network here and then loads the weights.

Inputs are RGB in [0, 1], NCHW, of any size; the model normalises them itself
(``(x - 0.5) / 0.5``, MODNet's ``x / 127.5 - 1`` on 8-bit values), pads to a multiple of 32 and
crops the outputs back. Outputs are in [0, 1].
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .encoders import MODNET_MEAN, MODNET_STD
from .groups import GroupedModule

__all__ = [
    "IBNorm", "ConvIBNormReLU", "SEBlock", "MobileNetV2Backbone",
    "LowResolutionBranch", "HighResolutionBranch", "FusionBranch",
    "MODNet",
]

#: the backbone's output stride; inputs are padded to a multiple of it
PAD_MULTIPLE = 32


def _up2(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 upsampling exactly as MODNet (and its ONNX ``Resize``) does it."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def _down(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Bilinear 1/``factor`` downsampling (no anti-aliasing), as MODNet shrinks the image."""
    return F.interpolate(x, scale_factor=1.0 / factor, mode="bilinear", align_corners=False)


# =========================================================================== building blocks
class IBNorm(nn.Module):
    """Batch-norm on the first half of the channels, instance-norm on the second half.

    MODNet's normalisation after every decoder convolution. The batch-norm half (``c // 2``
    channels, affine, running statistics) keeps features comparable across images; the
    instance-norm half (no affine parameters, no running statistics) normalises each image's
    channels by their own mean and variance, which removes global brightness/contrast -- a
    property that matters for low-light inputs. The halves are concatenated back in order.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels = int(channels)
        self.bn_channels = self.channels // 2
        self.bn = nn.BatchNorm2d(self.bn_channels, eps=eps)
        self.inorm = nn.InstanceNorm2d(self.channels - self.bn_channels, eps=eps, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.bn_channels
        return torch.cat((self.bn(x[:, :k]), self.inorm(x[:, k:])), dim=1)


class ConvIBNormReLU(nn.Sequential):
    """Conv2d (with bias) -> :class:`IBNorm` -> ReLU, the decoder unit of MODNet.

    ``padding`` is ``kernel_size // 2`` so that stride-1 convolutions keep the size.
    """

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1):
        super().__init__(OrderedDict([
            ("conv", nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2)),
            ("norm", IBNorm(cout)),
            ("act", nn.ReLU(inplace=True)),
        ]))


class SEBlock(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018) on the stride-32 feature.

    *Squeeze*: average each of the ``C`` channels over the whole image (a global descriptor
    of the scene). *Excite*: two bias-free fully-connected layers (``C -> C / reduction``,
    ReLU, ``C / reduction -> C``) and a sigmoid give one weight in (0, 1) per channel, which
    rescales the feature map. MODNet uses it so that the semantic branch can emphasise the
    channels that describe "person" for this particular image.
    """

    def __init__(self, channels: int = 1280, reduction: int = 4):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction, bias=False)
        self.fc2 = nn.Linear(channels // reduction, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3))                           # squeeze: (N, C)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(w))))  # excite: (N, C) in (0, 1)
        return x * w[:, :, None, None]


class MobileNetV2Backbone(nn.Module):
    """timm's ``mobilenetv2_100`` cut into MODNet's five stages, one per output stride.

    ==========  ==================================================  ========  ======
    group       timm modules                                        channels  stride
    ==========  ==================================================  ========  ======
    ``stage1``  ``conv_stem``, ``bn1``, ``blocks.0``                16        2
    ``stage2``  ``blocks.1``                                        24        4
    ``stage3``  ``blocks.2``                                        32        8
    ``stage4``  ``blocks.3``, ``blocks.4``                          96        16
    ``stage5``  ``blocks.5``, ``blocks.6``, ``conv_head``, ``bn2``  1280      32
    ==========  ==================================================  ========  ======

    This is the split of MODNet's own backbone wrapper (its ``features[0:2]``, ``[2:4]``,
    ``[4:7]``, ``[7:14]``, ``[14:19]``); note that MODNet's stride-32 feature is the
    1280-channel output of the 1x1 "head" convolution (with batch-norm and ReLU6), not the
    320-channel output of the last inverted-residual block. timm's classifier and pooling are
    not kept. :meth:`forward` returns the five features, in stride order.
    """

    STAGES = OrderedDict([
        ("stage1", ("conv_stem", "bn1", "blocks.0")),
        ("stage2", ("blocks.1",)),
        ("stage3", ("blocks.2",)),
        ("stage4", ("blocks.3", "blocks.4")),
        ("stage5", ("blocks.5", "blocks.6", "conv_head", "bn2")),
    ])
    channels = (16, 24, 32, 96, 1280)
    strides = (2, 4, 8, 16, 32)

    def __init__(self):
        super().__init__()
        import timm

        net = timm.create_model("mobilenetv2_100", pretrained=False)
        # keep only what computes features, in timm's registration (= forward) order
        self.conv_stem, self.bn1, self.blocks = net.conv_stem, net.bn1, net.blocks
        self.conv_head, self.bn2 = net.conv_head, net.bn2

    def stage_of_parameter(self, name: str) -> str:
        """``"stageK"`` for a parameter name relative to the backbone (e.g. ``blocks.3.conv_pw.weight``)."""
        for stage, prefixes in self.STAGES.items():
            if any(name.startswith(p + ".") for p in prefixes):
                return stage
        raise KeyError(f"parameter {name!r} belongs to no backbone stage")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.blocks[0](self.bn1(self.conv_stem(x)))
        enc2 = x
        enc4 = x = self.blocks[1](x)
        enc8 = x = self.blocks[2](x)
        enc16 = x = self.blocks[4](self.blocks[3](x))
        x = self.blocks[6](self.blocks[5](x))
        enc32 = self.bn2(self.conv_head(x))
        return [enc2, enc4, enc8, enc16, enc32]


# =========================================================================== the three branches
class LowResolutionBranch(nn.Module):
    """Semantic estimation: *where* the person is, at low resolution.

    ``enc32`` (1280 channels, stride 32) -> :class:`SEBlock` -> upsample x2 -> 5x5
    :class:`ConvIBNormReLU` to 96 channels (stride 16) -> upsample x2 -> 5x5 to 32 channels
    (stride 8). That stride-8 feature ``lr8x`` feeds the two other branches. The
    ``semantic_head`` (3x3 conv, stride 2, to one channel, then sigmoid) gives MODNet's coarse
    semantic matte at stride 16, used only for its training loss (compared with a blurred,
    downsampled ground-truth matte).
    """

    def __init__(self, enc_channels=(16, 24, 32, 96, 1280)):
        super().__init__()
        c = enc_channels
        self.se = SEBlock(c[4], reduction=4)
        self.conv_lr16x = ConvIBNormReLU(c[4], c[3], 5)
        self.conv_lr8x = ConvIBNormReLU(c[3], c[2], 5)
        self.semantic_head = nn.Conv2d(c[2], 1, 3, stride=2, padding=1)

    def forward(self, enc32: torch.Tensor) -> torch.Tensor:
        """The stride-8 semantic feature ``lr8x`` (N, 32, H/8, W/8)."""
        x = self.se(enc32)
        x = self.conv_lr16x(_up2(x))
        return self.conv_lr8x(_up2(x))

    def semantic(self, lr8x: torch.Tensor) -> torch.Tensor:
        """Coarse semantic matte (N, 1, H/16, W/16) in [0, 1] from ``lr8x`` (training-time head)."""
        return torch.sigmoid(self.semantic_head(lr8x))


class HighResolutionBranch(nn.Module):
    """Detail prediction: *the boundary*, at high resolution (strides 4 and 2).

    With ``hr = 32`` channels:

    1. the stride-2 backbone feature (16 ch) is projected to ``hr`` channels (1x1,
       ``tohr_enc2x``), concatenated with the image at half size and reduced with a stride-2
       3x3 conv (``conv_enc2x``) -> stride 4;
    2. the stride-4 backbone feature (24 ch) is projected to ``hr`` (``tohr_enc4x``), concatenated
       and mixed (``conv_enc4x``, 2 ``hr`` channels);
    3. the semantic feature ``lr8x`` upsampled to stride 4 and the image at quarter size join
       in (``conv_hr4x``, three 3x3 convs back to ``hr`` channels) -- so the detail branch knows
       where the person is;
    4. upsampled to stride 2, concatenated again with the projected stride-2 feature and refined
       by four 3x3 convs (``conv_hr2x``) -> ``hr2x``, the detail feature used by the fusion.

    The ``detail_head`` (upsample to full size, concatenate the image, 3x3
    :class:`ConvIBNormReLU`, 1x1 conv to one channel, sigmoid) is MODNet's training-time detail
    matte, supervised only inside the trimap's transition region.
    """

    def __init__(self, hr: int = 32, enc_channels=(16, 24, 32, 96, 1280)):
        super().__init__()
        c = enc_channels
        self.tohr_enc2x = ConvIBNormReLU(c[0], hr, 1)
        self.conv_enc2x = ConvIBNormReLU(hr + 3, hr, 3, stride=2)
        self.tohr_enc4x = ConvIBNormReLU(c[1], hr, 1)
        self.conv_enc4x = ConvIBNormReLU(2 * hr, 2 * hr, 3)
        self.conv_hr4x = nn.Sequential(
            ConvIBNormReLU(3 * hr + 3, 2 * hr, 3),
            ConvIBNormReLU(2 * hr, 2 * hr, 3),
            ConvIBNormReLU(2 * hr, hr, 3),
        )
        self.conv_hr2x = nn.Sequential(
            ConvIBNormReLU(2 * hr, 2 * hr, 3),
            ConvIBNormReLU(2 * hr, hr, 3),
            ConvIBNormReLU(hr, hr, 3),
            ConvIBNormReLU(hr, hr, 3),
        )
        self.detail_head = nn.Sequential(
            ConvIBNormReLU(hr + 3, hr, 3),
            nn.Conv2d(hr, 1, 1),
        )

    def forward(self, img: torch.Tensor, enc2: torch.Tensor, enc4: torch.Tensor,
                lr8x: torch.Tensor) -> torch.Tensor:
        """The stride-2 detail feature ``hr2x`` (N, 32, H/2, W/2); ``img`` is the normalised input."""
        img2, img4 = _down(img, 2), _down(img, 4)
        enc2 = self.tohr_enc2x(enc2)
        hr4 = self.conv_enc2x(torch.cat((img2, enc2), dim=1))
        hr4 = self.conv_enc4x(torch.cat((hr4, self.tohr_enc4x(enc4)), dim=1))
        hr4 = self.conv_hr4x(torch.cat((hr4, _up2(lr8x), img4), dim=1))
        return self.conv_hr2x(torch.cat((_up2(hr4), enc2), dim=1))

    def detail(self, img: torch.Tensor, hr2x: torch.Tensor) -> torch.Tensor:
        """Detail matte (N, 1, H, W) in [0, 1] from ``hr2x`` (training-time head)."""
        return torch.sigmoid(self.detail_head(torch.cat((_up2(hr2x), img), dim=1)))


class FusionBranch(nn.Module):
    """Semantic-detail fusion: the final alpha matte at full resolution.

    ``lr8x`` is upsampled to stride 4 and reduced to ``hr`` channels by a 5x5 conv
    (``conv_lr4x``), upsampled again to stride 2 and concatenated with the detail feature
    ``hr2x`` (``conv_f2x``, 3x3); the result is upsampled to full size, concatenated with the
    image and mapped to one channel (``conv_f``: 3x3 to ``hr / 2`` channels, then a 1x1 conv);
    a sigmoid gives the matte.
    """

    def __init__(self, hr: int = 32, enc_channels=(16, 24, 32, 96, 1280)):
        super().__init__()
        self.conv_lr4x = ConvIBNormReLU(enc_channels[2], hr, 5)
        self.conv_f2x = ConvIBNormReLU(2 * hr, hr, 3)
        self.conv_f = nn.Sequential(
            ConvIBNormReLU(hr + 3, hr // 2, 3),
            nn.Conv2d(hr // 2, 1, 1),
        )

    def forward_logits(self, img: torch.Tensor, lr8x: torch.Tensor, hr2x: torch.Tensor) -> torch.Tensor:
        lr2 = _up2(self.conv_lr4x(_up2(lr8x)))
        f2 = self.conv_f2x(torch.cat((lr2, hr2x), dim=1))
        return self.conv_f(torch.cat((_up2(f2), img), dim=1))

    def forward(self, img: torch.Tensor, lr8x: torch.Tensor, hr2x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.forward_logits(img, lr8x, hr2x))


# =========================================================================== MODNet
class MODNet(GroupedModule):
    """MODNet (MobileNetV2 backbone, ``hr_channels = 32``) with named parameter groups.

    ``model(x)``: RGB in [0, 1], (N, 3, H, W), any H and W -> alpha matte (N, 1, H, W) in
    [0, 1]. :meth:`forward_all` also returns the semantic and detail estimates. Build it with
    :func:`lowlight.models.create_model` (``"modnet"``: pretrained weights from the ONNX asset);
    ``MODNet()`` itself has MODNet's random initialisation.

    **Padding.** The backbone divides the size by 32, so the input is padded to a multiple of
    32 on the *bottom and right* borders only (edge replication) and the outputs are cropped
    back. Bottom/right keeps every original pixel at the same place on the stride-2..32 grids
    as in an unpadded image (the top-left corner is the origin of every convolution grid), so
    a size that is already a multiple of 32 is not padded at all and matches the ONNX export
    exactly; and in portraits the bottom border usually cuts through the body, which edge
    replication continues plausibly (replicating the top would stack copies of hair or sky).

    **Parameter groups** (:meth:`param_groups`), forward order, a partition of all parameters:
    ``backbone.stage1`` ... ``backbone.stage5`` (see :class:`MobileNetV2Backbone`),
    ``lr_branch``, ``hr_branch``, ``fusion``. :meth:`freeze` / :meth:`unfreeze` take group
    names, the prefix ``"backbone"``, or ``"all"``.

    **Batch-norm.** ``frozen_bn=True`` (the default) keeps *every* batch-norm layer in eval
    mode in ``train()``: running statistics are used and never updated, while their affine
    parameters still train. This is what fine-tuning MODNet needs: the export folded the
    backbone's statistics into the convolutions (its batch-norms are identities with running
    mean 0 and variance 1 - eps), so batch statistics would whiten every channel and destroy
    the pretrained features. With ``frozen_bn=False`` only the batch-norms of frozen groups
    (all their parameters frozen) and of the groups named in :meth:`keep_bn_eval` stay in eval
    mode, as in :class:`lowlight.models.CVUNet`. Instance-norm has no running statistics and
    behaves the same in both modes.
    """

    def __init__(self, hr_channels: int = 32, frozen_bn: bool = True):
        super().__init__()
        self.backbone = MobileNetV2Backbone()
        enc = self.backbone.channels
        self.lr_branch = LowResolutionBranch(enc)
        self.hr_branch = HighResolutionBranch(hr_channels, enc)
        self.fusion = FusionBranch(hr_channels, enc)
        self.hr_channels = hr_channels
        self.pad_multiple = PAD_MULTIPLE
        self.register_buffer("mean", torch.tensor(MODNET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(MODNET_STD).view(1, 3, 1, 1), persistent=False)
        self.frozen_bn = bool(frozen_bn)
        self.bn_eval_groups: set[str] = set()
        self.pretrained_from: str | None = None
        self.aux_heads_pretrained = False
        self._init_decoder()

    def _init_decoder(self) -> None:
        """MODNet's initialisation of its branches: Kaiming-uniform convs, zero biases, unit norms."""
        for branch in (self.lr_branch, self.hr_branch, self.fusion):
            for m in branch.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_uniform_(m.weight, a=0, mode="fan_in", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    # ----------------------------------------------------------------- forward
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> MODNet's input range [-1, 1] (``(x - 0.5) / 0.5``)."""
        return (x - self.mean) / self.std

    def _prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x, h, w = self.pad_input(x)
        return self.normalize(x), h, w

    def _features(self, img: torch.Tensor):
        enc2, enc4, _enc8, _enc16, enc32 = self.backbone(img)
        lr8x = self.lr_branch(enc32)
        hr2x = self.hr_branch(img, enc2, enc4, lr8x)
        return lr8x, hr2x

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid matte (N, 1, H, W) for RGB ``x`` in [0, 1] (e.g. for a BCE-with-logits loss)."""
        img, h, w = self._prepare(x)
        lr8x, hr2x = self._features(img)
        return self.fusion.forward_logits(img, lr8x, hr2x)[..., :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Alpha matte in [0, 1], shape (N, 1, H, W), for RGB ``x`` in [0, 1], shape (N, 3, H, W)."""
        return torch.sigmoid(self.forward_logits(x))

    def forward_all(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """The three outputs of MODNet's objective decomposition, for teaching and training.

        Returns ``{"semantic": (N, 1, ceil(H/16), ceil(W/16)), "detail": (N, 1, H, W),
        "matte": (N, 1, H, W)}``, all in [0, 1]. ``semantic`` and ``detail`` come from the
        training-time heads, which the ONNX export does not contain: they are untrained unless
        you trained them (``self.aux_heads_pretrained``).
        """
        img, h, w = self._prepare(x)
        lr8x, hr2x = self._features(img)
        s = self.pad_multiple // 2   # the semantic estimate has stride 16
        return OrderedDict(
            semantic=self.lr_branch.semantic(lr8x)[..., :-(-h // s), :-(-w // s)],
            detail=self.hr_branch.detail(img, hr2x)[..., :h, :w],
            matte=self.fusion(img, lr8x, hr2x)[..., :h, :w],
        )

    # ----------------------------------------------------------------- parameter groups
    def named_param_groups(self) -> "OrderedDict[str, list[tuple[str, nn.Parameter]]]":
        """Like :meth:`param_groups` with parameter names (relative to the model)."""
        groups: OrderedDict[str, list] = OrderedDict(
            (f"backbone.{s}", []) for s in MobileNetV2Backbone.STAGES)
        for g in ("lr_branch", "hr_branch", "fusion"):
            groups[g] = []
        for name, p in self.named_parameters():
            top, _, rest = name.partition(".")
            if top == "backbone":
                groups[f"backbone.{self.backbone.stage_of_parameter(rest)}"].append((name, p))
            else:   # a branch, or a submodule added later: a group named after its attribute
                groups.setdefault(top, []).append((name, p))
        return groups

    def extra_repr(self) -> str:
        return (f"hr_channels={self.hr_channels}, frozen_bn={self.frozen_bn}, "
                f"pretrained_from={self.pretrained_from!r}, "
                f"aux_heads_pretrained={self.aux_heads_pretrained}")
