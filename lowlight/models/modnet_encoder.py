"""MODNet's MobileNetV2 encoder copied into timm's ``mobilenetv2_100`` (notebook 03).

The ONNX export (:mod:`lowlight.assets`) has its batch-norm folded into the convolutions;
each folded convolution goes into timm's conv + batch-norm pair, and
:func:`verify_modnet_encoder` checks with onnxruntime that the copy computes the same features.
CV-UNet uses this to start its encoder from MODNet's; the whole MODNet network is :mod:`.modnet`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from .encoders import MODNET_MEAN, MODNET_STD, Encoder, _under, create_encoder


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
    from .. import assets

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
    """Three people-free photos bundled with scikit-image, RGB in [0, 1] (deterministic); the photos
    of people are held out for evaluation (:data:`lowlight.data.PEOPLE_PHOTOS`)."""
    import cv2
    from skimage import data

    imgs = [data.rocket(), data.coffee(), data.chelsea()]
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

    from .. import assets

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


