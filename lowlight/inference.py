"""Inference: run a matting model on tensors and on images -- never imports training (notebook 07).

``predict_batch`` runs a model over an RGB batch in chunks; ``matte_image`` mattes one uint8
photo at (up to) its own size; ``ImageMatter`` wraps a model as ``uint8 RGB -> float alpha``,
the interface the stress test and the real-photo evaluation use; ``BrightnessSwitch`` routes each
image to the original or the fine-tuned model by its mean luminance (the deployable form of §7).
Conversions between uint8 images and [0, 1] tensors are defined here once.

``OnnxModel`` runs a graph written by ``python -m lowlight.export`` with onnxruntime (CPU) as a
model -- ``matte_image``, ``predict_batch`` and ``BrightnessSwitch`` take it like any other -- and
``load_onnx_predictor`` reads such a graph or the brightness-switch manifest that names two of them.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .color import mean_luminance

#: the smallest ``max_side`` :func:`matte_image` takes: the models' output stride (MODNet pads to a
#: multiple of 32); at ``max_side=1`` every image became one pixel and its matte one uniform value
MIN_SIDE = 32

__all__ = ["MIN_SIDE", "image_to_tensor", "to_uint8_image", "model_device", "predict_batch", "matte_image", "ImageMatter",
           "enhance_uint8", "BrightnessSwitch", "ONNX_INPUT", "ONNX_OUTPUT", "SWITCH_FORMAT", "OnnxModelError",
           "OnnxModel", "load_onnx_predictor"]


def image_to_tensor(img: np.ndarray, device=None) -> torch.Tensor:
    """uint8 RGB ``H x W x 3`` -> float tensor ``1 x 3 x H x W`` in [0, 1]."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image: expected a uint8 RGB array H x W x 3, got "
                         f"{getattr(img, 'dtype', type(img).__name__)} {getattr(img, 'shape', '')}")
    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)[None]
    return t if device is None else t.to(device)


def to_uint8_image(x) -> np.ndarray:
    """Float RGB in [0, 1] (``3 x H x W`` tensor or ``H x W x 3`` array) -> uint8 ``H x W x 3``, rounded."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3:
        a = a.transpose(1, 2, 0)
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (CPU for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def predict_batch(model: nn.Module, x: torch.Tensor, batch_size: int = 8, device=None) -> torch.Tensor:
    """Alpha (``N x 1 x H x W``, float on the CPU) of ``model`` for RGB ``x`` in [0, 1]
    (``N x 3 x H x W``), in chunks of ``batch_size``, under ``torch.inference_mode``, the model in
    eval mode (restored afterwards)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"x: expected an RGB batch N x 3 x H x W, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    device = model_device(model) if device is None else device
    was = model.training
    model.eval()
    outs = []
    try:
        with torch.inference_mode():
            for k in range(0, x.shape[0], max(1, int(batch_size))):
                outs.append(model(x[k:k + batch_size].to(device)).float().cpu())
    finally:
        model.train(was)
    a = torch.cat(outs)
    if a.ndim != 4 or a.shape[1] != 1 or a.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"model returned shape {tuple(a.shape)}, expected N x 1 x {x.shape[-2]} x {x.shape[-1]}")
    return a


def matte_image(model: nn.Module, img: np.ndarray, max_side: int | None = 2048, device=None) -> np.ndarray:
    """8-bit matte (uint8 ``H x W``, the input's size) of a uint8 RGB image. Images whose long side
    exceeds ``max_side`` are matted downscaled (area) and the matte resized back (bilinear).
    Channels-last memory (1.7x faster than NCHW for CV-UNet-MobileNetV2 at 512² on a 2-core CPU,
    ``benchmarks/bench_models.py``), the same maths up to float rounding. ``max_side`` is ``None``/0
    (never downscale) or at least :data:`MIN_SIDE`; a smaller one raises ``ValueError``."""
    import cv2

    if max_side and max_side < MIN_SIDE:
        raise ValueError(f"max_side={max_side}: expected None or at least {MIN_SIDE} pixels (the models work at "
                         f"stride {MIN_SIDE}; a smaller image gives a uniform matte)")
    h, w = img.shape[:2]
    x = img
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        x = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    device = model_device(model) if device is None else device
    t = image_to_tensor(x, device).contiguous(memory_format=torch.channels_last)
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            a = model(t).float()[0, 0].cpu().numpy()
    finally:
        model.train(was)
    if a.shape != (h, w):
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


class ImageMatter:
    """A model as a function ``uint8 RGB H x W x 3 -> float32 alpha H x W`` in [0, 1].

    The image is matted at ``max_side`` on its long side at most (MODNet was trained on 512-pixel
    portraits), with an optional LLIE applied first. Used by the stress test and the real-photo
    evaluation of notebook 07.
    """

    def __init__(self, model: nn.Module, max_side: int | None = 512, llie: nn.Module | None = None):
        self.model = model.eval()
        self.max_side = max_side
        self.llie = llie.eval() if llie is not None else None

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.llie is not None:
            img = enhance_uint8(self.llie, img)
        return matte_image(self.model, img, self.max_side).astype(np.float32) / 255.0


def enhance_uint8(llie: nn.Module, img: np.ndarray) -> np.ndarray:
    """Run an LLIE (e.g. Zero-DCE++) on a uint8 RGB image; returns uint8 RGB."""
    x = image_to_tensor(img, model_device(llie))
    was = llie.training
    llie.eval()
    try:
        with torch.inference_mode():
            y = llie(x).clamp(0, 1)
    finally:
        llie.train(was)
    return to_uint8_image(y[0])


class BrightnessSwitch(nn.Module):
    """§7's deployment advice as a model: images whose mean Rec. 709 luminance is below
    ``threshold`` go to ``low_model`` (the fine-tuned one), the others to ``normal_model``
    (the original). ``forward(x)`` returns alpha like either model; :meth:`route` says where each
    image of a batch goes and :meth:`is_dark` decides for one luminance (``lowlight.predict``
    uses it per image). The threshold is chosen on validation data by
    :func:`lowlight.evaluation.choose_threshold`. Notebook 07."""

    def __init__(self, normal_model: nn.Module, low_model: nn.Module, threshold: float):
        super().__init__()
        if not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise ValueError(f"threshold: expected a finite number, got {threshold!r}")
        self.normal_model = normal_model
        self.low_model = low_model
        self.threshold = float(threshold)

    def is_dark(self, luma: float) -> bool:
        """Whether an image of mean luminance ``luma`` goes to the low-light model."""
        return float(luma) < self.threshold

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean N: True where the image goes to the low-light model."""
        return mean_luminance(x) < self.threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.route(x)
        out = None
        for mask, model in ((low, self.low_model), (~low, self.normal_model)):
            if bool(mask.any()):
                a = model(x[mask])
                if out is None:
                    out = a.new_empty((x.shape[0], *a.shape[1:]))
                out[mask] = a
        return out


# --------------------------------------------------------------------------- ONNX (python -m lowlight.export)
#: the names of the input (RGB float32 N x 3 x H x W in [0, 1]) and output (alpha N x 1 x H x W) of an exported graph
ONNX_INPUT, ONNX_OUTPUT = "image", "alpha"
#: the ``"format"`` of a brightness-switch manifest (two exported graphs and the threshold)
SWITCH_FORMAT = "lowlight-brightness-switch/1"


class OnnxModelError(ValueError):
    """An ONNX model or switch manifest that cannot be used; one line naming the file."""


def _first_line(exc: Exception) -> str:
    return ((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:200]


class OnnxModel(nn.Module):
    """A graph written by ``python -m lowlight.export``, run by onnxruntime on the CPU, as a model:
    ``forward(x)`` takes RGB in [0, 1] (``N x 3 x H x W``, any H and W: the graph pads and crops
    itself) and returns the alpha tensor ``N x 1 x H x W``. It has no parameters (its device is the
    CPU) and its train/eval mode changes nothing. ``threads``: onnxruntime's intra-op threads
    (default: its own choice). A file that is missing, is not ONNX, or has another interface (e.g.
    the shipped MODNet graph, which takes ``x * 2 - 1`` under another input name) raises
    :class:`OnnxModelError`. ``arch`` is read from the graph's metadata. Notebook 07."""

    def __init__(self, path: str | Path, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f"ONNX model {self.path}: no such file")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
            raise OnnxModelError(f"ONNX model {self.path}: onnxruntime cannot load it, not an ONNX model? "
                                 f"({_first_line(exc)})") from None
        ins, outs = self.session.get_inputs(), [o.name for o in self.session.get_outputs()]
        if [i.name for i in ins] != [ONNX_INPUT] or len(ins[0].shape) != 4 or ONNX_OUTPUT not in outs:
            raise OnnxModelError(
                f"ONNX model {self.path}: inputs {[i.name for i in ins]}, outputs {outs}; expected one input "
                f"{ONNX_INPUT!r} (RGB N x 3 x H x W in [0, 1]) and an output {ONNX_OUTPUT!r}: a graph written by "
                "`python -m lowlight.export`")
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.arch = {"model": self.metadata.get("lowlight.model", "unknown"),
                     "llie": self.metadata.get("lowlight.llie") or None}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feed = {ONNX_INPUT: x.detach().to("cpu", torch.float32).contiguous().numpy()}
        return torch.from_numpy(self.session.run([ONNX_OUTPUT], feed)[0])

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}"


def _manifest_entry(manifest: Path, state: dict, key: str, threads: int | None) -> OnnxModel:
    """The model of entry ``key`` of a switch manifest, its file beside the manifest and SHA-256 checked."""
    from .assets import sha256_file

    entry = state.get(key)
    name = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise OnnxModelError(f"switch manifest {manifest}: {key!r} must name a file in the manifest's folder")
    path = manifest.parent / name
    if not path.is_file():
        raise OnnxModelError(f"switch manifest {manifest}: its {key} model {path} does not exist")
    if sha256_file(path) != entry.get("sha256"):
        raise OnnxModelError(f"switch manifest {manifest}: {path} does not match the SHA-256 the manifest records "
                             "(changed or replaced after the export?); export the switch again")
    return OnnxModel(path, threads)


def load_onnx_predictor(path: str | Path, threads: int | None = None
                        ) -> tuple[OnnxModel, OnnxModel | None, float | None]:
    """``(model, low_model, threshold)`` for ``predict --onnx``: an exported graph gives
    ``(model, None, None)``; a brightness-switch manifest (``.json``, written by
    ``python -m lowlight.export --low-light-checkpoint ... --threshold ...``) gives the normal- and
    the low-light model and the threshold on the mean Rec. 709 luminance. Any problem raises
    :class:`OnnxModelError` naming the file. Notebook 07."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return OnnxModel(path, threads), None, None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise OnnxModelError(f"switch manifest {path}: cannot be read as JSON ({_first_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != SWITCH_FORMAT:
        raise OnnxModelError(f"switch manifest {path}: not a brightness-switch manifest (expected \"format\": "
                             f"{SWITCH_FORMAT!r}, written by `python -m lowlight.export`)")
    threshold = state.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise OnnxModelError(f"switch manifest {path}: threshold {threshold!r}; expected a mean luminance in [0, 1]")
    return (_manifest_entry(path, state, "normal", threads), _manifest_entry(path, state, "low_light", threads),
            float(threshold))
