"""``lowlight.data`` -- the LL-Matte data set and real-data loaders (notebook 01b).

==========================  ================================================================
submodule                   what it holds
==========================  ================================================================
``compositing``             ``composite`` (I = aF + (1-a)B in 8-bit sRGB), foreground
                            estimation (pymatting), ``fractional_fraction``
``foregrounds``             procedural foreground families with fractional alpha
``backgrounds``             photo / procedural / night / backlit backgrounds
``photos``                  scikit-image's offline photos and their licences
``people``                  the evaluation set of real photos of people + hand-drawn outlines
``photo_folder``            a folder of your own plain photos (no mattes): split, crops
``trimap``                  ``trimap_from_alpha`` (exactly 0 / 128 / 255)
``llmatte``                 one sample, its spec, splits; the raw and processed low-light versions
``llmatte_cache``           the cache under ``data/llmatte/`` + manifest, reading, verifying
``folders``                 reading real data folders with clear errors
``datasets``                torch datasets (LL-Matte, image/alpha, Composition-1k), loaders
==========================  ================================================================

The torch datasets are imported on first use, so ``from lowlight.data import composite``
does not import torch.
"""
from __future__ import annotations

from .backgrounds import BACKGROUND_KINDS, make_background
from .compositing import (composite, estimate_foreground, fractional_fraction, recomposite, to_alpha_float,
                          to_alpha_uint8)
from .folders import (MAX_PIXELS, DataFolderError, ImageTooLargeError, list_images, pair_files, read_alpha, read_image,
                      read_image_and_alpha, read_image_header)
from .foregrounds import FAMILIES, Foreground, make_foreground, random_texture
from .llmatte import (BACKGROUNDS_FOR_FAMILY, DEFAULT_FAMILY_WEIGHTS, KINDS, LOW_VERSIONS, PROCESSED, SPLITS, LLMatteSpec,
                      make_sample, sample_rng)
from .llmatte_cache import build_llmatte, finetune_llmatte, llmatte_dir, load_manifest, read_sample, verify_llmatte
from .people import PACKAGED_PEOPLE, PEOPLE_KINDS, PeoplePhoto, people_photo_ids, people_photos, person_mask
from .photo_folder import PhotoFolder, PhotoFolderError, photo_crops, scan_photo_folder
from .photos import PEOPLE_PHOTOS, PHOTOS, SCENE_PHOTOS, load_photo, photo_licences
from .trimap import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN, default_trimap_width, trimap_from_alpha

_LAZY = {"MODES", "MattingDataset", "LLMatteDataset", "ImageAlphaFolder", "Composition1kFolder",
         "worker_init_fn", "make_loader", "to_tensor_image"}


def __getattr__(name):
    if name in _LAZY:
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'lowlight.data' has no attribute {name!r}")


__all__ = sorted([
    "BACKGROUND_KINDS", "make_background", "composite", "estimate_foreground", "fractional_fraction",
    "recomposite", "to_alpha_float", "to_alpha_uint8", "DataFolderError", "list_images",
    "pair_files", "read_alpha", "read_image", "MAX_PIXELS", "ImageTooLargeError", "read_image_and_alpha",
    "read_image_header", "FAMILIES", "Foreground", "make_foreground",
    "random_texture", "BACKGROUNDS_FOR_FAMILY", "DEFAULT_FAMILY_WEIGHTS", "KINDS", "LOW_VERSIONS", "PROCESSED", "SPLITS",
    "LLMatteSpec", "build_llmatte", "finetune_llmatte", "llmatte_dir", "load_manifest", "make_sample", "read_sample",
    "sample_rng", "verify_llmatte", "PACKAGED_PEOPLE", "PEOPLE_KINDS", "PeoplePhoto", "people_photo_ids", "people_photos",
    "person_mask", "PhotoFolder", "PhotoFolderError", "photo_crops", "scan_photo_folder", "PHOTOS", "PEOPLE_PHOTOS", "SCENE_PHOTOS", "load_photo", "photo_licences", "TRIMAP_BG", "TRIMAP_FG",
    "TRIMAP_UNKNOWN", "default_trimap_width", "trimap_from_alpha", *_LAZY,
])
