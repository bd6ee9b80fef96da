"""Networks of the course and the one factory that builds them (notebooks 03, 04, 06).

============  ======================================================================
module        concept
============  ======================================================================
factory       the registry of model names and :func:`create_model`,
              :func:`model_from_checkpoint`
encoders      timm ``features_only`` encoders by short name (MobileNetV2, ConvNeXt-T, Swin-T)
weights       weight files, weights-only
modnet_encoder MODNet's encoder copied into timm's MobileNetV2 (CV-UNet's pretrained start)
modnet        MODNet, the real pretrained trimap-free matting network, native PyTorch
modnet_weights MODNet's weights from the verified ONNX export; the check against onnxruntime
cvunet        CV-UNet, the article's UNet with a swappable encoder
llie          Zero-DCE++ and the article's illumination estimator (networks only)
measure       parameters, MACs, latency, training throughput, peak memory
============  ======================================================================

Inputs are float RGB tensors in [0, 1], NCHW; normalisation lives inside each model; outputs
(alpha) are in [0, 1].
"""
from .cvunet import CVUNet
from .encoders import ENCODERS, Encoder, EncoderSpec, create_encoder, register_encoder, resolve_encoder
from .factory import MODELS, create_model, model_arch, model_from_checkpoint
from .measure import (count_macs, count_parameters, measure_latency, measure_train_step, onnx_model_stats,
                      peak_rss_subprocess)
from .modnet import MODNet
from .modnet_encoder import load_modnet_into_encoder, modnet_encoder_weights, verify_modnet_encoder
from .weights import load_state_dict_checked, load_weights_file

__all__ = [
    "MODELS", "create_model", "model_arch", "model_from_checkpoint",
    "EncoderSpec", "ENCODERS", "register_encoder", "resolve_encoder", "Encoder", "create_encoder",
    "load_weights_file", "load_state_dict_checked",
    "modnet_encoder_weights", "load_modnet_into_encoder", "verify_modnet_encoder",
    "CVUNet", "MODNet",
    "count_parameters", "count_macs", "measure_latency", "measure_train_step", "peak_rss_subprocess",
    "onnx_model_stats",
]
