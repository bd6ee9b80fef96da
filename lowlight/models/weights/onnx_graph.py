"""Reading weights out of an ONNX graph: MODNet's and U²-Netp's released exports (notebook 03).

:func:`onnx_conv_weights` lists the ``Conv`` nodes of any graph with their weights;
:func:`modnet_encoder_weights` is the first 52 of MODNet's (its MobileNetV2 encoder) and
:func:`read_modnet_onnx` everything the native :class:`~lowlight.models.modnet.MODNet` needs;
:func:`read_u2netp_onnx` everything :class:`~lowlight.models.u2netp.U2NetP` needs.
The file is opened by :func:`lowlight.assets.load_onnx` and fetched (SHA-256 checked) by
:func:`lowlight.assets.fetch`.
"""
from __future__ import annotations

import os
from pathlib import Path

from ... import assets

__all__ = ["onnx_conv_weights", "modnet_encoder_weights", "read_modnet_onnx", "modnet_onnx_path",
           "read_u2netp_onnx", "u2netp_onnx_path"]

_CONV_CACHE: dict[tuple, list[dict]] = {}


def modnet_onnx_path(onnx_path: str | os.PathLike | None = None) -> Path:
    """``onnx_path`` as a :class:`~pathlib.Path`, or (``None``) the fetched MODNet asset."""
    return Path(onnx_path) if onnx_path is not None else assets.fetch("modnet")


def u2netp_onnx_path(onnx_path: str | os.PathLike | None = None) -> Path:
    """``onnx_path`` as a :class:`~pathlib.Path`, or (``None``) the fetched U²-Netp asset."""
    return Path(onnx_path) if onnx_path is not None else assets.fetch("u2netp")


def onnx_conv_weights(path: str | Path, limit: int | None = None) -> list[dict]:
    """The ``Conv`` nodes of an ONNX graph in graph order, with their weights.

    Introduced in notebook 03. Each entry is a dict with ``name``, ``weight`` (float32 numpy,
    OIHW), ``bias`` (numpy or ``None``), ``stride``, ``pads``, ``group``, ``dilation`` and
    ``output`` (the name of the node's output tensor) and ``consumers`` (``(op type, output
    name)`` of each node that reads that output). The result is cached while the file is
    unchanged: treat the arrays as read-only. Only the first ``limit`` convolutions if given.
    """
    path = Path(path)
    key = None
    if path.is_file():   # parsing a 25 MB graph takes a while: reuse it while the file is unchanged
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size, limit)
        if key in _CONV_CACHE:
            return _CONV_CACHE[key]
    out = _read_conv_weights(path, limit)
    if key is not None:
        while len(_CONV_CACHE) >= 4:
            _CONV_CACHE.pop(next(iter(_CONV_CACHE)))
        _CONV_CACHE[key] = out
    return out


def _read_conv_weights(path: Path, limit: int | None) -> list[dict]:
    """:func:`onnx_conv_weights` without the cache."""
    from onnx import helper, numpy_helper

    model = assets.load_onnx(path)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consts = {}
    for node in graph.node:   # some exporters store weights as Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = node.attribute[0].t
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def tensor(name):
        t = inits.get(name, consts.get(name))
        return None if t is None else numpy_helper.to_array(t).astype("float32", copy=True)

    out = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = tensor(node.input[1])
        if weight is None:
            raise ValueError(f"ONNX model {path}: weight of Conv node {node.name!r} is not a constant")
        bias = tensor(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        k = weight.ndim - 2
        out.append(dict(
            name=node.name, weight=weight, bias=bias,
            stride=tuple(attrs.get("strides", [1] * k)),
            pads=tuple(attrs.get("pads", [0] * (2 * k))),
            dilation=tuple(attrs.get("dilations", [1] * k)),
            group=int(attrs.get("group", 1)),
            output=node.output[0],
            consumers=[(n.op_type, n.output[0]) for n in readers.get(node.output[0], [])],
        ))
        if limit is not None and len(out) >= limit:
            break
    return out


def modnet_encoder_weights(onnx_path: str | os.PathLike | None = None) -> list[dict]:
    """The 52 convolutions of MODNet's MobileNetV2 encoder (folded weights and biases), in order.

    Introduced in notebook 03. Reads the ONNX export fetched by :func:`lowlight.assets.fetch`
    (``onnx_path=None`` fetches/uses the cached one). Entry ``i`` maps onto the ``i``-th
    convolution of timm's ``mobilenetv2_100`` (51 in the features-only encoder, plus
    ``conv_head``, 320 -> 1280, which MODNet uses as its stride-32 feature).
    """
    path = modnet_onnx_path(onnx_path)
    convs = onnx_conv_weights(path, limit=52)
    if len(convs) != 52:
        raise ValueError(f"{path}: expected at least 52 convolutions, found {len(convs)}")
    return convs


def read_modnet_onnx(path: Path) -> dict:
    """Everything :func:`~lowlight.models.weights.load_modnet_weights` needs from the ONNX graph, checked.

    Returns ``convs`` (all Conv nodes in graph order, see :func:`onnx_conv_weights`), ``ibn``
    (conv output name -> the IBNorm batch-norm that follows it: ``weight, bias, mean, var, eps,
    channels``), ``se`` (the two MatMul weights, as stored: (1280, 320) and (320, 1280)). Every
    ``Resize`` must be bilinear with ``pytorch_half_pixel`` coordinates (``ValueError`` otherwise).
    """
    from onnx import helper, numpy_helper

    convs = onnx_conv_weights(path)
    graph = assets.load_onnx(path).graph
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


def read_u2netp_onnx(path: Path) -> dict:
    """What :func:`~lowlight.models.weights.load_u2netp_weights` needs from U²-Netp's graph, checked.

    Returns ``convs`` (all Conv nodes in graph order, see :func:`onnx_conv_weights`), ``input``
    (the input tensor's name) and ``outputs`` (the declared outputs: fused map, then side 1-6).
    ``ValueError`` naming the file unless every ``Resize`` is bilinear with ``pytorch_half_pixel``
    coordinates, every ``MaxPool`` is 2x2, stride 2, ceil mode, unpadded, and the graph has seven
    outputs, each a ``Sigmoid``.
    """
    from onnx import helper

    convs = onnx_conv_weights(path)
    graph = assets.load_onnx(path).graph
    producer = {o: n for n in graph.node for o in n.output}
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Resize":
            got = (attrs.get("mode", b"nearest"), attrs.get("coordinate_transformation_mode", b"half_pixel"))
            if got != (b"linear", b"pytorch_half_pixel"):
                raise ValueError(f"{path}: Resize {node.name!r} is {got[0]!r}/{got[1]!r}, expected "
                                 f"linear/pytorch_half_pixel (bilinear, align_corners=False)")
        elif node.op_type == "MaxPool":
            got = (list(attrs.get("kernel_shape", [])), list(attrs.get("strides", [])),
                   int(attrs.get("ceil_mode", 0)), list(attrs.get("pads", [0, 0, 0, 0])))
            if got != ([2, 2], [2, 2], 1, [0, 0, 0, 0]):
                raise ValueError(f"{path}: MaxPool {node.name!r} has (kernel, strides, ceil_mode, pads) = "
                                 f"{got}, expected ([2, 2], [2, 2], 1, [0, 0, 0, 0])")
    outputs = [o.name for o in graph.output]
    ops = [producer[o].op_type if o in producer else None for o in outputs]
    if len(outputs) != 7 or any(op != "Sigmoid" for op in ops):
        raise ValueError(f"{path}: expected 7 outputs (fused map, side 1-6), each a Sigmoid; found "
                         f"{len(outputs)} produced by {ops}")
    inits = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected one input (the image), found {inputs}")
    return dict(convs=convs, input=inputs[0], outputs=outputs)
