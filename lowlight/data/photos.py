"""Real photographs that ship inside scikit-image and matplotlib (no download): textures and
backgrounds of the procedural data set (notebook 01b), people-free scenes for self-distillation
(notebook 06), and three photos of people held out for evaluation (notebook 07).

scikit-image 0.26 fetches most of its gallery with ``pooch`` on first use; the images
below are the ones stored in the wheel itself, so they load offline.  Each entry records
the licence stated in the image's ``skimage.data`` docstring.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["PHOTOS", "TEXTURE_PHOTOS", "BACKGROUND_PHOTOS", "PEOPLE_PHOTOS", "SCENE_PHOTOS", "load_photo",
           "photo_licences"]

# name -> (description, licence as stated in skimage.data)
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("Eileen Collins, NASA portrait", "public domain (NASA, no known copyright restrictions)"),
    "coffee": ("coffee cup on wood", "CC0 (Rachel Michetti, courtesy of Pikolo Espresso Bar)"),
    "chelsea": ("Chelsea the cat", "CC0 (Stefan van der Walt)"),
    "rocket": ("DSCOVR launch on Falcon 9", "public domain (SpaceX)"),
    "hubble_deep_field": ("Hubble eXtreme Deep Field", "public domain (NASA)"),
    "immunohistochemistry": ("IHC-stained colonic glands", "no known copyright restrictions (CMMI)"),
    "camera": ("man with a camera (grey)", "CC0 (Lav Varshney)"),
    "brick": ("brick wall texture (grey)", "CC0 (CC0Textures)"),
    "grass": ("grass texture (grey)", "CC0 (DeviantArt user linolafett)"),
    "gravel": ("gravel texture (grey)", "CC0 (CC0Textures)"),
    "grace_hopper": ("Rear Admiral Grace Hopper, US Navy portrait (matplotlib sample data)",
                     "public domain (US Navy photo; shipped by matplotlib as sample_data/grace_hopper.jpg)"),
}

#: real photographs of people, found offline in registry packages: held out for evaluation
#: (notebook 07). They are never used for training, nor as textures or backgrounds of LL-Matte.
PEOPLE_PHOTOS = ("astronaut", "camera", "grace_hopper")

#: photos used as foreground colour/texture sources
TEXTURE_PHOTOS = ("coffee", "chelsea", "rocket", "immunohistochemistry", "brick", "grass", "gravel")
#: photos used as backgrounds
BACKGROUND_PHOTOS = ("coffee", "chelsea", "rocket", "hubble_deep_field", "brick", "grass", "gravel")
#: people-free colour photos: unlabelled material for self-distillation (notebook 06)
SCENE_PHOTOS = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")


def _matplotlib_sample(filename: str) -> Path:
    """The path of a file of matplotlib's ``mpl-data/sample_data``, found without importing
    matplotlib (the computation never imports it; :mod:`lowlight.viz` alone does)."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "sample_data" / filename
        if path.is_file():
            return path
    raise FileNotFoundError(f"{filename}: not found in matplotlib's sample data (is matplotlib installed?)")


@lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """The scikit-image photo ``name`` as uint8 RGB (grey ones repeated to 3 channels).

    Read-only (cached).  Notebook 01b.
    """
    if name not in PHOTOS:
        raise ValueError(f"load_photo: unknown photo {name!r}; available: {', '.join(PHOTOS)}")
    if name == "grace_hopper":
        from .folders import read_image

        img = read_image(_matplotlib_sample("grace_hopper.jpg"))
    else:
        import skimage.data

        img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img[..., :3].astype(np.uint8))
    img.setflags(write=False)
    return img


def photo_licences() -> dict[str, str]:
    """``{name: licence}`` for every photo the generator may use.  Notebook 01b."""
    return {k: PHOTOS[k][1] for k in dict.fromkeys(TEXTURE_PHOTOS + BACKGROUND_PHOTOS)}
