"""Every way weights get into a network of the course: the one home of weights loading (notebook 03).

The architecture modules (:mod:`..modnet`, :mod:`..u2netp`, :mod:`..cvunet`, :mod:`..encoders`,
:mod:`..llie`, :mod:`..groups`) load nothing; the builders of :mod:`..factory` build a network
there and then call a loader here. Nothing here imports the builders.

===========  ==========================================================================
module       what it loads
===========  ==========================================================================
files        weight files read weights-only (``.pth``/``.pt``/``.bin``/``.ckpt``,
             ``.safetensors``; a file with pickled Python objects is refused, never
             executed), :func:`load_state_dict_checked`, an encoder's weights from an
             ``Encoder`` state dict or a timm checkpoint, a training checkpoint's weights
             (:func:`load_model_weights`)
onnx_graph   the weights of MODNet's ONNX export: its convolutions (:func:`onnx_conv_weights`,
             :func:`modnet_encoder_weights`), IBNorm batch-norms and SE block; U²-Netp's
             graph, checked (:func:`read_u2netp_onnx`)
modnet_port  folding each ONNX conv into timm's conv + batch-norm pair (:func:`fold_into`),
             the whole MODNet (:func:`load_modnet_weights`), its encoder into a timm
             ``Encoder`` (:func:`load_modnet_into_encoder`), and the checks against
             onnxruntime (:func:`verify_modnet`, :func:`verify_modnet_encoder`)
u2netp_port  U²-Netp's ONNX export into the native U²-Netp (:func:`load_u2netp_weights`,
             the same folding) and its check against onnxruntime (:func:`verify_u2netp`)
===========  ==========================================================================

Fetching the ONNX file (and its SHA-256 check) and running it with onnxruntime are
:mod:`lowlight.assets`; reading a checkpoint file is :mod:`lowlight.io`.
"""
from .files import (WEIGHT_SUFFIXES, as_state_dict, load_encoder_state_dict, load_model_weights,
                    load_state_dict_checked, load_weights_file, looks_like_weights_path, nonfinite_tensor)
from .modnet_port import (check_conv_match, conv_bn_pairs, fold_into, load_modnet_into_encoder,
                          load_modnet_weights, verify_modnet, verify_modnet_encoder)
from .onnx_graph import (modnet_encoder_weights, modnet_onnx_path, onnx_conv_weights, read_modnet_onnx,
                         read_u2netp_onnx, u2netp_onnx_path)
from .u2netp_port import load_u2netp_weights, onnx_input as u2netp_onnx_input, verify_u2netp

__all__ = [
    "WEIGHT_SUFFIXES", "looks_like_weights_path", "as_state_dict", "nonfinite_tensor", "load_weights_file",
    "load_state_dict_checked", "load_encoder_state_dict", "load_model_weights",
    "onnx_conv_weights", "modnet_encoder_weights", "read_modnet_onnx", "modnet_onnx_path",
    "conv_bn_pairs", "fold_into", "check_conv_match",
    "load_modnet_weights", "load_modnet_into_encoder", "verify_modnet", "verify_modnet_encoder",
    "read_u2netp_onnx", "u2netp_onnx_path", "load_u2netp_weights", "verify_u2netp", "u2netp_onnx_input",
]
