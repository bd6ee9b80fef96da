"""MODNet's released weights in native PyTorch, and the checks against onnxruntime (notebook 03).

:func:`load_modnet_weights` copies the ONNX export (fetched and SHA-256 checked by
:func:`lowlight.assets.fetch`) into :class:`lowlight.models.modnet.MODNet`;
:func:`load_modnet_into_encoder` copies only its MobileNetV2 encoder into a timm
:class:`~lowlight.models.encoders.Encoder` (CV-UNet's pretrained start);
:func:`verify_modnet` and :func:`verify_modnet_encoder` run the original graph with
onnxruntime and report the largest differences.

What the released ONNX export really contains (checked node by node with ``onnx.load``; see
:func:`~lowlight.models.weights.read_modnet_onnx`):

* the backbone is MobileNetV2 with every batch-norm *folded into its convolution* (conv with
  bias, then ``Clip(0, 6)`` = ReLU6). Our backbone is timm's ``mobilenetv2_100``; each folded
  conv goes into timm's conv + batch-norm pair with :func:`fold_into` (the batch-norm becomes
  ``y = x + bias`` with running mean 0 and running variance ``1 - eps``);
* the SE block's two fully-connected layers appear as ``MatMul`` nodes (1280 -> 320 -> 1280,
  no bias) -- here two trainable :class:`torch.nn.Linear` layers;
* the IBNorm batch-norms are *not* folded: they are ``Slice`` (first half) ->
  ``BatchNormalization`` (eps 1e-5) and ``Slice`` (second half) -> ``InstanceNormalization``
  (scale 1, bias 0) -> ``Concat`` -> ``Relu``;
* every ``Resize`` is linear with ``pytorch_half_pixel`` coordinates, i.e.
  ``F.interpolate(mode="bilinear", align_corners=False)`` with scale factors 2, 1/2 and 1/4;
* the graph was exported in inference mode: it ends with the fusion branch's sigmoid. The
  semantic head (``conv_lr``) and the detail head (``conv_hr``) that MODNet uses only for its
  training losses are **not in the export**, so here they start from MODNet's own random
  initialisation (``MODNet.aux_heads_pretrained`` is ``False``). :meth:`MODNet.forward` never
  uses them; :meth:`MODNet.forward_all` returns their outputs for teaching, which are only
  meaningful after training them (e.g. with the frozen rest of the network).
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn as nn

from ... import assets
from ..encoders import MODNET_MEAN, MODNET_STD, Encoder, build_encoder, is_under
from ..modnet import IBNorm, MODNet
from .onnx_graph import modnet_encoder_weights, modnet_onnx_path, read_modnet_onnx

__all__ = ["conv_bn_pairs", "fold_into", "check_conv_match", "load_modnet_weights",
           "load_modnet_into_encoder", "verify_modnet", "verify_modnet_encoder"]


# =========================================================================== conv + BN folding
def conv_bn_pairs(body: nn.Module) -> list[tuple[str, nn.Conv2d, nn.Module]]:
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


def fold_into(conv: nn.Conv2d, bn: nn.Module, weight, bias) -> None:
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


def check_conv_match(name: str, conv: nn.Conv2d, entry: dict) -> None:
    """``ValueError`` unless ONNX conv ``entry`` has the weight shape, stride, groups and
    paddings of our ``conv`` (named ``name``)."""
    got = (tuple(entry["weight"].shape), tuple(entry["stride"]), entry["group"], tuple(entry["pads"]))
    want = (tuple(conv.weight.shape), tuple(conv.stride), conv.groups,
            (conv.padding[0], conv.padding[1], conv.padding[0], conv.padding[1]))
    if got != want:
        raise ValueError(f"MODNet conv {entry['name']} (weight, stride, groups, pads) = {got} does "
                         f"not match timm {name!r} = {want}")


def _fold_all(pairs: list[tuple[str, nn.Conv2d, nn.Module]], entries: list[dict]) -> None:
    """:func:`check_conv_match` then :func:`fold_into` for each (pair, ONNX entry), in order."""
    for (name, conv, bn), entry in zip(pairs, entries):
        check_conv_match(name, conv, entry)
        fold_into(conv, bn, entry["weight"], entry["bias"])


# =========================================================================== the whole MODNet
def _decoder_convs(model: MODNet) -> list[tuple[str, nn.Conv2d, IBNorm | None]]:
    """(name, conv, IBNorm or None) of the branches' convolutions in ONNX graph order (the
    order of MODNet's forward in inference mode; the training-only heads are not included)."""
    lr, hr, fu = model.lr_branch, model.hr_branch, model.fusion
    units = [("lr_branch.conv_lr16x", lr.conv_lr16x), ("lr_branch.conv_lr8x", lr.conv_lr8x),
             ("hr_branch.tohr_enc2x", hr.tohr_enc2x), ("hr_branch.conv_enc2x", hr.conv_enc2x),
             ("hr_branch.tohr_enc4x", hr.tohr_enc4x), ("hr_branch.conv_enc4x", hr.conv_enc4x)]
    units += [(f"hr_branch.conv_hr4x.{i}", u) for i, u in enumerate(hr.conv_hr4x)]
    units += [(f"hr_branch.conv_hr2x.{i}", u) for i, u in enumerate(hr.conv_hr2x)]
    units += [("fusion.conv_lr4x", fu.conv_lr4x), ("fusion.conv_f2x", fu.conv_f2x),
              ("fusion.conv_f.0", fu.conv_f[0])]
    out = [(name, u.conv, u.norm) for name, u in units]
    out.append(("fusion.conv_f.1", fu.conv_f[1], None))
    return out


def _load_ibnorm(path, name: str, entry: dict, norm: IBNorm | None, bn_entry: dict | None) -> None:
    """The IBNorm batch-norm after ONNX conv ``entry`` into ``norm`` (both absent, or both there)."""
    if (norm is None) != (bn_entry is None):
        raise ValueError(f"{path}: conv {entry['name']} ({name}) is "
                         f"{'not ' if bn_entry is None else ''}followed by an IBNorm in the graph")
    if norm is None:
        return
    if bn_entry["channels"] != norm.bn_channels:
        raise ValueError(f"{path}: IBNorm after {entry['name']} has {bn_entry['channels']} "
                         f"batch-norm channels, {name} expects {norm.bn_channels}")
    for attr in ("weight", "bias"):
        getattr(norm.bn, attr).copy_(torch.from_numpy(bn_entry[attr]))
    norm.bn.running_mean.copy_(torch.from_numpy(bn_entry["mean"]))
    norm.bn.running_var.copy_(torch.from_numpy(bn_entry["var"]))
    norm.bn.eps = bn_entry["eps"]
    norm.inorm.eps = bn_entry["eps"]


@torch.no_grad()
def load_modnet_weights(model: MODNet, onnx_path: str | os.PathLike | None = None) -> MODNet:
    """Copy every weight of MODNet's ONNX export into ``model`` (in place); returns it.

    * Backbone: the first 52 ONNX convolutions are MobileNetV2's, in timm's order (shapes,
      strides, groups and paddings checked); each goes into timm's conv + batch-norm pair with
      :func:`fold_into`.
    * SE block: ``MatMul`` weights ``W`` (``x @ W``) become ``nn.Linear`` weights ``W.T``.
    * Branches: the remaining 17 convolutions in graph order (checked the same way); the
      IBNorm batch-norm after each is found through its ``Slice`` and loaded (weight, bias,
      running mean and variance); its channel count must be half the conv's outputs.

    ``onnx_path=None`` uses :func:`lowlight.assets.fetch` (downloaded once, SHA-256 checked).
    The training-only semantic/detail heads are not in the export and are left as they are.
    """
    path = modnet_onnx_path(onnx_path)
    g = read_modnet_onnx(path)
    convs = g["convs"]
    pairs = conv_bn_pairs(model.backbone)
    decoder = _decoder_convs(model)
    if len(convs) != len(pairs) + len(decoder):
        raise ValueError(f"{path}: {len(convs)} convolutions, MODNet has {len(pairs)} in the backbone "
                         f"+ {len(decoder)} in the branches")
    _fold_all(pairs, convs)

    w1, w2 = g["se"]
    se = model.lr_branch.se
    if w1.shape != tuple(se.fc1.weight.shape[::-1]) or w2.shape != tuple(se.fc2.weight.shape[::-1]):
        raise ValueError(f"{path}: SE MatMul weights {w1.shape}, {w2.shape} do not fit "
                         f"{tuple(se.fc1.weight.shape)}, {tuple(se.fc2.weight.shape)} (transposed)")
    se.fc1.weight.copy_(torch.from_numpy(w1.T.copy()))
    se.fc2.weight.copy_(torch.from_numpy(w2.T.copy()))

    for (name, conv, norm), entry in zip(decoder, convs[len(pairs):]):
        check_conv_match(name, conv, entry)
        conv.weight.copy_(torch.from_numpy(entry["weight"]))
        conv.bias.copy_(torch.from_numpy(entry["bias"]))
        _load_ibnorm(path, name, entry, norm, g["ibn"].get(entry["output"]))
    model.pretrained_from = "modnet"
    return model


# =========================================================================== the encoder alone
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
    :func:`fold_into`), then (``calibrate=True``) gets realistic running statistics from three
    natural photos (see :func:`_calibrate_identity_bns`). The encoder's normalisation becomes
    MODNet's ``x * 2 - 1``.
    """
    if encoder.spec.timm_name != "mobilenetv2_100":
        raise ValueError(f"MODNet weights fit the MobileNetV2 encoder only, not {encoder.name!r}")
    entries = modnet_encoder_weights(onnx_path)
    pairs = conv_bn_pairs(encoder.body)
    if len(pairs) > len(entries):
        raise ValueError(f"encoder has {len(pairs)} convolutions, MODNet's encoder {len(entries)}")
    _fold_all(pairs, entries)
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


# =========================================================================== checks with onnxruntime
def _photo_inputs(image, hw: tuple[int, int], who: str, size_problem: str):
    """``image`` (uint8 RGB HxWx3, default scikit-image's astronaut) resized (area) to ``hw`` =
    (height, width), both multiples of 32 (the ONNX graph does not pad), as ``(resized uint8
    image, ONNX input)``; the ONNX input has MODNet's own preprocessing ``(I - 127.5) / 127.5``.
    ``ValueError`` starting with ``who`` for a bad image, ``size_problem`` for a bad size."""
    import cv2
    import numpy as np

    if image is None:
        from skimage import data
        image = data.astronaut()
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{who}: image must be uint8 HxWx3 RGB, got {image.dtype} {image.shape}")
    h, w = hw
    if h % 32 or w % 32:
        raise ValueError(f"{who}: {size_problem}")
    img = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    onnx_in = ((img.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
    return img, onnx_in


def _to_x01(img) -> torch.Tensor:
    """uint8 HxWx3 -> float (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0


def verify_modnet(image=None, size: tuple[int, int] = (512, 512), model: MODNet | None = None,
                  onnx_path: str | os.PathLike | None = None, threads: int | None = None) -> dict:
    """Compare our :class:`MODNet` with onnxruntime on one photo; returns the differences.

    ``image``: uint8 RGB (H, W, 3), default scikit-image's astronaut, resized (area) to ``size``
    = (height, width), both multiples of 32 (the ONNX graph does not pad). ONNX gets MODNet's
    own preprocessing ``(I - 127.5) / 127.5``; ours gets ``I / 255``. ``model=None`` loads the
    export into a fresh :class:`MODNet`. Returns
    ``{"max_abs_diff": float, "mean_abs_diff": float, "size": (h, w)}`` on the matte.
    """
    img, onnx_in = _photo_inputs(image, size, "verify_modnet", f"size must be multiples of 32, got {size}")
    h, w = size
    path = modnet_onnx_path(onnx_path)
    ref = assets.onnx_run(path, {assets.MODNET_INPUT_NAME: onnx_in}, threads=threads)["output"]
    if model is None:
        model = load_modnet_weights(MODNet(), path)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            ours = model(_to_x01(img))
    finally:
        model.train(was_training)
    diff = (ours - torch.from_numpy(ref)).abs()
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()), "size": (h, w)}


def _modnet_tap_tensors(entries: list[dict], conv_names: list[str], taps: Sequence[str]) -> list[str]:
    """ONNX tensor names equal to the outputs of timm modules ``taps`` (e.g. ``blocks.4``):
    the output of the last conv under the tap, or of the residual ``Add`` that reads it."""
    out = []
    for tap in taps:
        idx = max(i for i, n in enumerate(conv_names) if is_under(n, tap))
        entry = entries[idx]
        adds = [o for op, o in entry["consumers"] if op == "Add"]
        out.append(adds[0] if adds else entry["output"])
    return out


def _max_diffs(result: dict, key, ours: torch.Tensor, ref) -> None:
    """Record ``max |ours - ref|``, ``max |ref|`` and the shape under ``key`` of ``result``."""
    r = torch.from_numpy(ref)
    result["max_abs_diff"][key] = float((ours - r).abs().max())
    result["max_abs_value"][key] = float(r.abs().max())
    result["shapes"][key] = tuple(ours.shape)


def verify_modnet_encoder(image=None, size: int = 512, onnx_path: str | os.PathLike | None = None,
                          threads: int | None = None, calibrate: bool = True) -> dict:
    """Check with onnxruntime that our MODNet-initialised encoder equals MODNet's own encoder.

    Introduced in notebook 03. ``image``: uint8 RGB HxWx3 (default: scikit-image's astronaut
    photo), resized to ``size`` x ``size``. The ONNX graph is run with the five encoder feature
    tensors and the 1280-channel head added to its outputs (:func:`lowlight.assets.onnx_run`);
    our side is a MobileNetV2 :class:`Encoder` loaded with :func:`load_modnet_into_encoder` (in
    eval mode) for the five features, and a full timm ``mobilenetv2_100`` with all 52
    convolutions copied for the head. Returns ``{"max_abs_diff": {stride or "head1280": float},
    "max_abs_value": {...}, "shapes": {...}, "onnx_tensors": [...]}``.
    """
    import timm

    img, onnx_in = _photo_inputs(image, (size, size), "verify_modnet_encoder",
                                 f"size must be a multiple of 32, got {size}")
    path = modnet_onnx_path(onnx_path)
    x01 = _to_x01(img)

    enc = build_encoder("mobilenetv2")
    load_modnet_into_encoder(enc, path, calibrate=calibrate)
    enc.eval()
    entries = modnet_encoder_weights(path)
    pairs = conv_bn_pairs(enc.body)
    tensors = _modnet_tap_tensors(entries, [n for n, _, _ in pairs], enc.tap_modules)
    head_entry = entries[len(pairs)]
    head_out = next((o for op, o in head_entry["consumers"] if op == "Clip"), head_entry["output"])
    ref = assets.onnx_run(path, {assets.MODNET_INPUT_NAME: onnx_in}, tensors + [head_out], threads=threads)

    full = timm.create_model("mobilenetv2_100", pretrained=False).eval()
    _fold_all(conv_bn_pairs(full), entries)
    with torch.inference_mode():
        ours = enc(x01)
        head = full.forward_features(x01 * 2 - 1)
    result = {"max_abs_diff": {}, "max_abs_value": {}, "shapes": {}, "onnx_tensors": tensors + [head_out]}
    for stride, f, name in zip(enc.strides, ours, tensors):
        if tuple(ref[name].shape) != tuple(f.shape):
            raise ValueError(f"stride {stride}: ONNX tensor {name} has shape {tuple(ref[name].shape)}, "
                             f"ours {tuple(f.shape)}")
        _max_diffs(result, stride, f, ref[name])
    _max_diffs(result, "head1280", head, ref[head_out])
    return result
