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
=====================  =============================================================

``llie="zerodce"`` puts a Zero-DCE++ enhancement module in front (:class:`TwoStageModel`).
Checkpoints written by the trainer carry an ``"arch"`` entry (``{"model", "llie"}``) so that
:func:`model_from_checkpoint` rebuilds the right network without being told.
"""
from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from ..io import CheckpointError, load_checkpoint

__all__ = ["MODELS", "create_model", "model_arch", "model_from_checkpoint"]

#: name -> (family, encoder); the one registry (CLI choices, predict, evaluation read it)
MODELS: dict[str, tuple[str, str | None]] = {
    "modnet": ("modnet", None),
    "cvunet": ("cvunet", "mobilenetv2"),
    "cvunet_mobilenetv2": ("cvunet", "mobilenetv2"),
    "cvunet_convnext": ("cvunet", "convnext_t"),
    "cvunet_swin": ("cvunet", "swin_t"),
}
LLIE_NAMES = (None, "zerodce")


def create_model(name: str = "modnet", pretrained=True, llie: str | None = None,
                 llie_checkpoint: str | Path | None = None, bn_eval_encoder: bool | None = None) -> nn.Module:
    """Build a registered model (see the module table); RGB in [0, 1] NCHW -> alpha N x 1 x H x W.

    ``pretrained``: ``True`` -- the real weights where the course has them (MODNet; CV-UNet's
    MobileNetV2 encoder from MODNet), random elsewhere (no hub downloads); ``False`` -- random;
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
    if family == "modnet":
        from .modnet import modnet

        if pretrained not in (True, False, None):
            raise ValueError(f"pretrained={pretrained!r}: MODNet takes True (the shipped weights) or False")
        net = modnet(pretrained=bool(pretrained),
                     frozen_bn=bool(bn_eval_encoder) if bn_eval_encoder is not None else bool(pretrained))
    else:
        from .cvunet import CVUNet

        if pretrained is True:
            pretrained = "modnet" if encoder == "mobilenetv2" else False
        elif pretrained == "modnet" and encoder != "mobilenetv2":
            raise ValueError(f"pretrained='modnet' fits the MobileNetV2 encoder only, not model {name!r}")
        net = CVUNet(encoder, pretrained=pretrained or False)
        if bn_eval_encoder or (bn_eval_encoder is None and pretrained):
            net.keep_bn_eval("encoder")
    net.arch = {"model": name, "llie": llie}
    if llie is None:
        return net
    from .llie import TwoStageModel, ZeroDCEpp

    module = ZeroDCEpp()
    if llie_checkpoint is not None:
        from ..io import load_model_weights

        load_model_weights(module, llie_checkpoint)
    model = TwoStageModel(module, net)
    model.arch = {"model": name, "llie": llie}
    return model


def model_arch(model: nn.Module) -> dict:
    """``{"model": name, "llie": None | "zerodce"}`` of a model built by :func:`create_model`."""
    m = getattr(model, "module", model)   # DistributedDataParallel
    arch = getattr(m, "arch", None)
    if arch is None:
        raise ValueError(f"{type(m).__name__} was not built by lowlight.models.create_model (no 'arch')")
    return dict(arch)


def model_from_checkpoint(path: str | Path, device=None) -> nn.Module:
    """The network stored in a course checkpoint, weights loaded, in eval mode.

    The architecture comes from the checkpoint's ``"arch"`` entry; a checkpoint without one, or
    an LLIE-only checkpoint (notebook 04's ``zerodce.pt``), raises :class:`CheckpointError`
    naming the file.
    """
    import torch

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
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(f"checkpoint {path}: its weights do not fit model {arch['model']!r} ({first[:200]})") from None
    if device is not None:
        model = model.to(device if isinstance(device, torch.device) else torch.device(device))
    return model.eval()
