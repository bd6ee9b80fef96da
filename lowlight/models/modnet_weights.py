"""MODNet's weights from the verified ONNX asset, and the check against onnxruntime (notebook 03).

:func:`load_modnet_weights` reads the released export (fetched and SHA-256 checked by
:func:`lowlight.assets.fetch`) into :class:`lowlight.models.modnet.MODNet`;
:func:`verify_modnet` runs both on a photo and reports the largest difference of the mattes.

What the released ONNX export really contains (checked node by node with ``onnx.load``; see
:func:`lowlight.models.modnet_weights.load_modnet_weights`):

* the backbone is MobileNetV2 with every batch-norm *folded into its convolution* (conv with
  bias, then ``Clip(0, 6)`` = ReLU6). Our backbone is timm's ``mobilenetv2_100``; each folded
  conv goes into timm's conv + batch-norm pair with
  :func:`lowlight.models.modnet_encoder._fold_into` (the batch-norm becomes ``y = x + bias``
  with running mean 0 and running variance ``1 - eps``);
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
from pathlib import Path

import torch
import torch.nn as nn

from .modnet import IBNorm, MODNet, modnet
from .modnet_encoder import _check_conv_match, _conv_bn_pairs, _fold_into

__all__ = ["load_modnet_weights", "verify_modnet"]


def _read_modnet_onnx(path: Path) -> dict:
    """Everything :func:`load_modnet_weights` needs from the ONNX graph, checked.

    Returns ``convs`` (all Conv nodes in graph order, see
    :func:`lowlight.assets.onnx_conv_weights`), ``ibn`` (conv output name -> the IBNorm
    batch-norm that follows it: ``weight, bias, mean, var, eps, channels``), ``se`` (the two
    MatMul weights, as stored: (1280, 320) and (320, 1280)).
    """
    import onnx
    from onnx import helper, numpy_helper

    from .. import assets

    convs = assets.onnx_conv_weights(path)
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}

    ibn, se = {}, []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "BatchNormalization":
            sl = producer.get(node.input[0])
            if sl is None or sl.op_type != "Slice":
                raise ValueError(f"{path}: BatchNormalization {node.name!r} does not read a Slice "
                                 f"(not an IBNorm)")
            w, b, m, v = (inits[n].astype("float32") for n in node.input[1:5])
            ibn[sl.input[0]] = dict(weight=w, bias=b, mean=m, var=v,
                                    eps=float(attrs.get("epsilon", 1e-5)), channels=len(w))
        elif node.op_type == "MatMul":
            se.append(inits[node.input[1]].astype("float32"))
        elif node.op_type == "Resize":
            mode = attrs.get("mode", b"nearest")
            ctm = attrs.get("coordinate_transformation_mode", b"half_pixel")
            if (mode, ctm) != (b"linear", b"pytorch_half_pixel"):
                raise ValueError(f"{path}: Resize {node.name!r} is {mode!r}/{ctm!r}, expected "
                                 f"linear/pytorch_half_pixel (bilinear, align_corners=False)")
    if len(se) != 2:
        raise ValueError(f"{path}: expected the SE block's two MatMuls, found {len(se)}")
    return dict(convs=convs, ibn=ibn, se=se)


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


@torch.no_grad()
def load_modnet_weights(model: MODNet, onnx_path: str | os.PathLike | None = None) -> MODNet:
    """Copy every weight of MODNet's ONNX export into ``model`` (in place); returns it.

    * Backbone: the first 52 ONNX convolutions are MobileNetV2's, in timm's order (shapes,
      strides, groups and paddings checked); each goes into timm's conv + batch-norm pair with
      :func:`lowlight.models.modnet_encoder._fold_into`.
    * SE block: ``MatMul`` weights ``W`` (``x @ W``) become ``nn.Linear`` weights ``W.T``.
    * Branches: the remaining 17 convolutions in graph order (checked the same way); the
      IBNorm batch-norm after each is found through its ``Slice`` and loaded (weight, bias,
      running mean and variance); its channel count must be half the conv's outputs.

    ``onnx_path=None`` uses :func:`lowlight.assets.fetch` (downloaded once, SHA-256 checked).
    The training-only semantic/detail heads are not in the export and are left as they are.
    """
    from .. import assets

    path = Path(onnx_path) if onnx_path is not None else assets.fetch("modnet")
    g = _read_modnet_onnx(path)
    convs = g["convs"]
    pairs = _conv_bn_pairs(model.backbone)
    decoder = _decoder_convs(model)
    if len(convs) != len(pairs) + len(decoder):
        raise ValueError(f"{path}: {len(convs)} convolutions, MODNet has {len(pairs)} in the backbone "
                         f"+ {len(decoder)} in the branches")
    for (name, conv, bn), entry in zip(pairs, convs):
        _check_conv_match(name, conv, entry)
        _fold_into(conv, bn, entry["weight"], entry["bias"])

    w1, w2 = g["se"]
    se = model.lr_branch.se
    if w1.shape != tuple(se.fc1.weight.shape[::-1]) or w2.shape != tuple(se.fc2.weight.shape[::-1]):
        raise ValueError(f"{path}: SE MatMul weights {w1.shape}, {w2.shape} do not fit "
                         f"{tuple(se.fc1.weight.shape)}, {tuple(se.fc2.weight.shape)} (transposed)")
    se.fc1.weight.copy_(torch.from_numpy(w1.T.copy()))
    se.fc2.weight.copy_(torch.from_numpy(w2.T.copy()))

    for (name, conv, norm), entry in zip(decoder, convs[len(pairs):]):
        _check_conv_match(name, conv, entry)
        conv.weight.copy_(torch.from_numpy(entry["weight"]))
        conv.bias.copy_(torch.from_numpy(entry["bias"]))
        bn_entry = g["ibn"].get(entry["output"])
        if (norm is None) != (bn_entry is None):
            raise ValueError(f"{path}: conv {entry['name']} ({name}) is "
                             f"{'not ' if bn_entry is None else ''}followed by an IBNorm in the graph")
        if norm is not None:
            if bn_entry["channels"] != norm.bn_channels:
                raise ValueError(f"{path}: IBNorm after {entry['name']} has {bn_entry['channels']} "
                                 f"batch-norm channels, {name} expects {norm.bn_channels}")
            for attr in ("weight", "bias"):
                getattr(norm.bn, attr).copy_(torch.from_numpy(bn_entry[attr]))
            norm.bn.running_mean.copy_(torch.from_numpy(bn_entry["mean"]))
            norm.bn.running_var.copy_(torch.from_numpy(bn_entry["var"]))
            norm.bn.eps = bn_entry["eps"]
            norm.inorm.eps = bn_entry["eps"]
    model.pretrained_from = "modnet"
    return model


def verify_modnet(image=None, size: tuple[int, int] = (512, 512), model: MODNet | None = None,
                  onnx_path: str | os.PathLike | None = None, threads: int | None = None) -> dict:
    """Compare our :class:`MODNet` with onnxruntime on one photo; returns the differences.

    ``image``: uint8 RGB (H, W, 3), default scikit-image's astronaut, resized (area) to ``size``
    = (height, width), both multiples of 32 (the ONNX graph does not pad). ONNX gets MODNet's
    own preprocessing ``(I - 127.5) / 127.5``; ours gets ``I / 255``. Returns
    ``{"max_abs_diff": float, "mean_abs_diff": float, "size": (h, w)}`` on the matte.
    """
    import cv2
    import numpy as np

    from .. import assets

    if image is None:
        from skimage import data
        image = data.astronaut()
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"verify_modnet: image must be uint8 HxWx3 RGB, got {image.dtype} {image.shape}")
    h, w = size
    if h % 32 or w % 32:
        raise ValueError(f"verify_modnet: size must be multiples of 32, got {size}")
    path = Path(onnx_path) if onnx_path is not None else assets.fetch("modnet")
    img = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    onnx_in = ((img.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
    ref = assets.onnx_run(path, {assets.MODNET_INPUT_NAME: onnx_in}, threads=threads)["output"]
    if model is None:
        model = modnet(onnx_path=path)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            ours = model(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0)
    finally:
        model.train(was_training)
    diff = (ours - torch.from_numpy(ref)).abs()
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()), "size": (h, w)}
