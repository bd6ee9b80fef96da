"""Networks of the course and the one factory that builds them (notebooks 03, 04, 06).

Three layers, each importing only the ones above it (timm's shape):

============  ======================================================================
module        concept
============  ======================================================================
*architecture -- networks only, no weights loading*
groups        named parameter groups, freezing, batch-norm modes (shared base class)
encoders      the encoder registry: timm ``features_only`` encoders by short name
              (MobileNetV2, ConvNeXt-T, Swin-T), :func:`build_encoder` (random weights)
modnet        MODNet, the real pretrained trimap-free matting network, native PyTorch
cvunet        CV-UNet, the article's UNet with a swappable encoder
llie          Zero-DCE++ and the article's illumination estimator
*weights -- every loader*
weights       weight files (weights-only), training checkpoints' weights, MODNet's ONNX
              export into the native MODNet or a timm encoder, the checks against onnxruntime
*builders*
factory       the registry of model names; :func:`create_model`, :func:`create_encoder`,
              :func:`create_modnet` (build the architecture, then load its weights),
              :func:`model_from_checkpoint`
measure       parameters, MACs, latency, training throughput, peak memory
============  ======================================================================

Inputs are float RGB tensors in [0, 1], NCHW; normalisation lives inside each model; outputs
(alpha) are in [0, 1].

The names below are re-exported lazily (PEP 562): ``from lowlight.models import create_model``
imports :mod:`.factory` when first asked for, so that importing an architecture module (e.g.
``lowlight.models.modnet``) does not import the weights loaders or the builders.
"""
from __future__ import annotations

import importlib

#: submodule -> the public names it provides here
_EXPORTS_BY_MODULE: dict[str, tuple[str, ...]] = {
    "factory": ("MODELS", "OPERATING_SIDE", "create_model", "create_encoder", "create_modnet", "model_arch",
                "model_from_checkpoint"),
    "encoders": ("EncoderSpec", "ENCODERS", "register_encoder", "resolve_encoder", "Encoder",
                 "build_encoder"),
    "weights": ("load_weights_file", "load_state_dict_checked", "load_model_weights",
                "modnet_encoder_weights", "load_modnet_into_encoder", "verify_modnet_encoder",
                "load_modnet_weights", "verify_modnet", "onnx_conv_weights"),
    "cvunet": ("CVUNet",),
    "modnet": ("MODNet",),
    "measure": ("count_parameters", "count_macs", "measure_latency", "measure_train_step",
                "peak_rss_subprocess", "onnx_model_stats"),
}
_EXPORTS = {name: module for module, names in _EXPORTS_BY_MODULE.items() for name in names}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    """Import the submodule that provides ``name`` on first use (see the module docstring)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
