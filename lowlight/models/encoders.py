"""The encoder registry: timm ``features_only`` backbones by a short name (notebook 03).

:func:`build_encoder` builds ``"mobilenetv2"``, ``"convnext_t"`` or ``"swin_t"`` with random
weights and returns NCHW feature maps with known channels and strides, whatever the input size.
The weights' own input normalisation lives inside the encoder: inputs are RGB in [0, 1].

This module is architecture only: it loads no weights. Pretrained encoders come from
:func:`lowlight.models.create_encoder` (:mod:`.factory`), which builds one here and then loads
its weights with :mod:`.weights`.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch
import torch.nn as nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: MODNet normalises RGB as x/127.5 - 1, i.e. (x01 - 0.5) / 0.5
MODNET_MEAN = (0.5, 0.5, 0.5)
MODNET_STD = (0.5, 0.5, 0.5)


# =========================================================================== 1. encoder registry
@dataclass(frozen=True)
class EncoderSpec:
    """One entry of the encoder registry.

    ``timm_kwargs`` are passed to ``timm.create_model`` on top of ``features_only=True``;
    ``pretrained_sources`` names the non-file pretrained starting points this encoder knows
    (e.g. ``"modnet"``).
    """

    name: str
    timm_name: str
    description: str
    aliases: tuple[str, ...] = ()
    timm_kwargs: dict = field(default_factory=dict)
    pretrained_sources: tuple[str, ...] = ()


ENCODERS: "OrderedDict[str, EncoderSpec]" = OrderedDict()
_ALIASES: dict[str, str] = {}


def register_encoder(spec: EncoderSpec) -> EncoderSpec:
    """Add ``spec`` to the registry (its name, timm name and aliases all resolve to it).

    Introduced in notebook 03: a fourth encoder is one call to this function.
    """
    keys = {spec.name, spec.timm_name, *spec.aliases}
    for key in keys:
        owner = _ALIASES.get(key.lower())
        if owner is not None and owner != spec.name:
            raise ValueError(f"encoder name {key!r} is already registered for {owner!r}")
    ENCODERS[spec.name] = spec
    for key in keys:
        _ALIASES[key.lower()] = spec.name
    return spec


register_encoder(EncoderSpec(
    name="mobilenetv2_100", timm_name="mobilenetv2_100", aliases=("mobilenetv2", "mbv2"),
    description="MobileNetV2 1.0 -- the article's original light encoder (strides 2..32)",
    pretrained_sources=("modnet",),
))
register_encoder(EncoderSpec(
    name="convnext_tiny", timm_name="convnext_tiny", aliases=("convnext_t", "convnext"),
    description="ConvNeXt-Tiny -- 7x7 depthwise convolutions, strides 4..32",
))
register_encoder(EncoderSpec(
    name="swin_tiny_patch4_window7_224", timm_name="swin_tiny_patch4_window7_224",
    aliases=("swin_t", "swin_tiny", "swin"),
    description="Swin-Tiny -- shifted-window attention (7x7 windows), strides 4..32",
    # strict_img_size=False: any input size (attention masks built per forward; NHWC outputs
    # handled by Encoder). img_size=512, the article's training size: timm derives the window
    # shifts from the size it builds for; built for 224 the last stage (7x7 tokens) has no
    # shift, so at 512 its 16x16 tokens would sit in 3x3 windows that never exchange
    # information. Pretrained 224 weights load unchanged (position tables depend on the window).
    timm_kwargs=dict(strict_img_size=False, img_size=512),
))


def resolve_encoder(name: str) -> EncoderSpec:
    """The :class:`EncoderSpec` for a registry name, timm name or alias (case-insensitive)."""
    if not isinstance(name, str):
        raise TypeError(f"encoder name must be a string, got {type(name).__name__}")
    key = _ALIASES.get(name.lower())
    if key is None:
        raise ValueError(f"unknown encoder {name!r}; available: "
                         + ", ".join(f"{s.name} ({', '.join(s.aliases)})" for s in ENCODERS.values()))
    return ENCODERS[key]


def is_under(param_name: str, module_name: str) -> bool:
    """Whether ``param_name`` lives under ``module_name`` (timm flattens ``a.0`` into ``a_0``)."""
    return any(param_name.startswith(m + ".") for m in (module_name, module_name.replace(".", "_")))


class Encoder(nn.Module):
    """A timm ``features_only`` backbone that takes RGB in [0, 1] and returns NCHW features.

    Introduced in notebook 03. ``channels`` and ``strides`` describe the returned list;
    ``mean``/``std`` (persistent buffers, so they travel with checkpoints) hold the
    normalisation of the weights the encoder was initialised from. Stage ``k`` is everything
    that computes the ``k``-th feature map (``stage_of_parameter`` maps a parameter name to it).
    """

    def __init__(self, spec: EncoderSpec, body: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 nhwc: bool = False):
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.body = body
        info = body.feature_info
        self.channels: tuple[int, ...] = tuple(info.channels())
        self.strides: tuple[int, ...] = tuple(info.reduction())
        self.tap_modules: tuple[str, ...] = tuple(info.module_name())
        self.nhwc = bool(nhwc)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.pretrained_from: str | None = None
        self._stage_map = self._build_stage_map()

    # ----------------------------------------------------------------- stages
    def _build_stage_map(self) -> dict[str, int]:
        """Parameter name (relative to ``body``) -> stage index 1..K, in forward order."""
        stage_of: dict[str, int] = {}
        pending: list[str] = []
        for pname, _ in self.body.named_parameters():
            hit = [k for k, tap in enumerate(self.tap_modules, 1) if is_under(pname, tap)]
            if hit:
                for p in pending:
                    stage_of[p] = hit[0]
                pending = []
                stage_of[pname] = hit[0]
            else:
                pending.append(pname)
        for p in pending:   # after the last tap (not used by forward in timm features models)
            stage_of[p] = len(self.tap_modules)
        return stage_of

    @property
    def num_stages(self) -> int:
        return len(self.tap_modules)

    def stage_of_parameter(self, name: str) -> int:
        """Stage (1-based) of a parameter of ``body`` (name relative to ``body``)."""
        return self._stage_map[name]

    # ----------------------------------------------------------------- forward
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the weights' own input normalisation."""
        return (x - self.mean) / self.std

    def forward_normalized(self, xn: torch.Tensor) -> list[torch.Tensor]:
        feats = self.body(xn)
        if self.nhwc:
            feats = [f.permute(0, 3, 1, 2).contiguous() for f in feats]
        return list(feats)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features (NCHW) at ``self.strides`` for RGB ``x`` in [0, 1] whose sides are multiples
        of ``max(self.strides)`` (CVUNet pads for you)."""
        return self.forward_normalized(self.normalize(x))

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, channels={self.channels}, strides={self.strides}, "
                f"pretrained_from={self.pretrained_from!r}")


def _build_body(spec: EncoderSpec, timm_kwargs: dict):
    """timm ``features_only`` model for ``spec``, randomly initialised (timm's initialisation)."""
    import timm

    kwargs = dict(spec.timm_kwargs)
    kwargs.update(timm_kwargs)
    return timm.create_model(spec.timm_name, pretrained=False, features_only=True, **kwargs)


def build_encoder(name: str | EncoderSpec = "mobilenetv2", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                  **timm_kwargs) -> Encoder:
    """A registered encoder (name, timm name, alias or :class:`EncoderSpec`) with random weights.

    ``mean``/``std``: the input normalisation the encoder applies (ImageNet's by default);
    ``timm_kwargs`` go to ``timm.create_model`` on top of the spec's own (e.g. ``img_size=512``
    for Swin). Weights are loaded by :func:`lowlight.models.create_encoder`, never here.
    """
    spec = name if isinstance(name, EncoderSpec) else resolve_encoder(name)
    body = _build_body(spec, timm_kwargs)
    return Encoder(spec, body, mean=mean, std=std, nhwc=_is_nhwc(body))


def _is_nhwc(body: nn.Module) -> bool:
    fmt = getattr(body, "output_fmt", None)
    fmt = getattr(fmt, "name", fmt)    # timm Format enum or str
    return str(fmt).upper() == "NHWC"
