"""U²-Netp's released weights in native PyTorch, and the check against onnxruntime (notebook 03).

:func:`load_u2netp_weights` copies rembg's ONNX export (fetched and SHA-256 checked by
:func:`lowlight.assets.fetch`) into :class:`lowlight.models.u2netp.U2NetP`; :func:`verify_u2netp`
runs the original graph with onnxruntime on the same photo and reports the differences.

What the export contains (checked node by node with ``onnx.load``; see
:func:`~lowlight.models.weights.read_u2netp_onnx`):

* 119 ``Conv`` nodes, in forward order: 112 with bias followed by ``Relu`` -- each is U²-Net's
  conv + batch-norm + ReLU with the batch-norm *folded into the convolution*; here each goes
  into our bias-free conv + batch-norm pair with :func:`~lowlight.models.weights.fold_into`
  (the batch-norm becomes ``y = x + bias``) -- then the six 3x3 side convolutions (64 -> 1) and
  the 1x1 fusion (6 -> 1), which have a bias and no batch-norm;
* ``MaxPool`` 2x2, stride 2, ``ceil_mode=1``; ``Resize`` linear with ``pytorch_half_pixel``
  coordinates to the size of the skip tensor (``F.interpolate(size=..., mode="bilinear",
  align_corners=False)``);
* seven outputs, each a ``Sigmoid``: the fused map first, then sides 1-6;
* an input declared as 1x3x320x320 (the size rembg resizes to), although every size is computed
  from the tensors' shapes: :func:`verify_u2netp` frees those dimensions to check other sizes.
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn

from ... import assets
from ..u2netp import ConvBNReLU, U2NetP
from .modnet_port import fold_into
from .onnx_graph import read_u2netp_onnx, u2netp_onnx_path

__all__ = ["load_u2netp_weights", "verify_u2netp", "onnx_input"]


def _check_conv(path, name: str, conv: nn.Conv2d, entry: dict, with_bn: bool) -> None:
    """``ValueError`` naming the file unless ONNX conv ``entry`` has our ``conv``'s weight shape,
    stride, groups, pads and dilation, and is followed by a ``Relu`` exactly when ``with_bn``."""
    got = (tuple(entry["weight"].shape), tuple(entry["stride"]), entry["group"], tuple(entry["pads"]),
           tuple(entry["dilation"]))
    p = conv.padding
    want = (tuple(conv.weight.shape), tuple(conv.stride), conv.groups, (p[0], p[1], p[0], p[1]), tuple(conv.dilation))
    if got != want:
        raise ValueError(f"{path}: conv {entry['name']} (weight, stride, groups, pads, dilation) = {got} "
                         f"does not match {name!r} = {want}")
    relu = any(op == "Relu" for op, _ in entry["consumers"])
    if relu != with_bn:
        raise ValueError(f"{path}: conv {entry['name']} is {'' if relu else 'not '}followed by a Relu; "
                         f"{name!r} expects {'conv + batch-norm + ReLU' if with_bn else 'a plain conv'}")


@torch.no_grad()
def load_u2netp_weights(model: U2NetP, onnx_path: str | os.PathLike | None = None) -> U2NetP:
    """Copy every weight of U²-Netp's ONNX export into ``model`` (in place); returns it.

    The 119 ONNX convolutions map in order onto :meth:`U2NetP.units` (shapes, strides, pads and
    dilations checked): each conv + batch-norm unit receives the folded weight and bias through
    :func:`~lowlight.models.weights.fold_into`; the side and fusion convolutions receive weight
    and bias as they are. ``onnx_path=None`` uses :func:`lowlight.assets.fetch` (downloaded once,
    SHA-256 checked). ``ValueError`` naming the file when the graph does not fit.
    """
    path = u2netp_onnx_path(onnx_path)
    convs = read_u2netp_onnx(path)["convs"]
    units = model.units()
    if len(convs) != len(units):
        raise ValueError(f"{path}: {len(convs)} convolutions, U2NetP has {len(units)}")
    for (name, unit), entry in zip(units, convs):
        if isinstance(unit, ConvBNReLU):
            _check_conv(path, name, unit.conv, entry, with_bn=True)
            fold_into(unit.conv, unit.bn, entry["weight"], entry["bias"])
        else:
            _check_conv(path, name, unit, entry, with_bn=False)
            unit.weight.copy_(torch.from_numpy(entry["weight"]))
            unit.bias.copy_(torch.from_numpy(entry["bias"]))
    model.pretrained_from = "u2netp"
    return model


def _photo_x01(image, hw: tuple[int, int]) -> torch.Tensor:
    """``image`` (uint8 RGB HxWx3, default scikit-image's astronaut) resized (area) to ``hw`` =
    (height, width), both multiples of 32, as float (1, 3, H, W) in [0, 1]. ``ValueError``
    naming :func:`verify_u2netp` and the argument otherwise."""
    import cv2
    import numpy as np

    if image is None:
        from skimage import data
        image = data.astronaut()
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"verify_u2netp: image must be uint8 HxWx3 RGB, got {image.dtype} {image.shape}")
    h, w = (int(v) for v in hw)
    if h < 32 or w < 32 or h % 32 or w % 32:
        raise ValueError(f"verify_u2netp: size must be multiples of 32 (height, width), got {tuple(hw)}")
    img = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0


def onnx_input(x01, max_normalize: bool = True):
    """The shipped U2-Netp graph's input for RGB ``x01`` in [0, 1] (NCHW, a tensor or an array):
    rembg's preprocessing in numpy float32 -- divide by the maximum (``max_normalize``), then
    ImageNet mean/std."""
    import numpy as np

    from ..encoders import IMAGENET_MEAN, IMAGENET_STD

    x = np.asarray(x01, dtype=np.float32)
    if max_normalize:
        x = x / max(float(x.max()), 1e-6)
    mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    return ((x - mean) / std).astype(np.float32)


def verify_u2netp(image=None, size: tuple[int, int] = (320, 320), model: U2NetP | None = None,
                  onnx_path: str | os.PathLike | None = None, threads: int | None = None) -> dict:
    """Compare our :class:`U2NetP` with onnxruntime on one photo; returns the differences.

    ``image``: uint8 RGB (H, W, 3), default scikit-image's astronaut, resized (area) to ``size``
    = (height, width), both multiples of 32 (the sizes at which our padding is a no-op). Ours gets
    ``I / 255``; the ONNX graph (input sizes freed, see :func:`lowlight.assets.onnx_run`) gets
    rembg's preprocessing of the same pixels. ``model=None`` loads the export into a fresh
    :class:`U2NetP`. Returns ``{"max_abs_diff": float, "mean_abs_diff": float, "size": (h, w),
    "sides_max_abs_diff": [6 floats]}``; the first two are on the fused map (the output).
    """
    x01 = _photo_x01(image, size)
    path = u2netp_onnx_path(onnx_path)
    if model is None:
        model = load_u2netp_weights(U2NetP(), path)
    graph = read_u2netp_onnx(path)
    ref = assets.onnx_run(path, {graph["input"]: onnx_input(x01, model.max_normalize)},
                          threads=threads, free_dims=True)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            ours = list(model.forward_all(x01).values())
    finally:
        model.train(was_training)
    diffs = [(o - torch.from_numpy(ref[name])).abs() for o, name in zip(ours, graph["outputs"])]
    return {"max_abs_diff": float(diffs[0].max()), "mean_abs_diff": float(diffs[0].mean()),
            "size": tuple(size), "sides_max_abs_diff": [float(d.max()) for d in diffs[1:]]}
