"""A folder of your own plain photos -- no mattes -- as material for self-distillation.

Self-distillation needs no label: the original model's matte of a daylight photo is the target for
the same photo made dark. So the folder a user already has (JPEG/PNG, any sizes, nested folders)
is enough. :func:`scan_photo_folder` reads it once:

* every image file under the folder (suffixes :data:`PHOTO_SUFFIXES`, any case, sorted by relative
  path) is opened; files that cannot be read (corrupt, 16-bit, larger than ``max_pixels``, too
  small) are listed with the reason and skipped, never silently;
* a **held-out share** is kept for the report: a photo is held out when the SHA-256 of its
  relative path falls below ``heldout_share`` (stable when photos are added or removed, and
  independent of the order files are found in); at least one photo is held out when there are two
  or more;
* fewer than ``min_train`` usable training photos is an error that says how many were found,
  how many were skipped and why.

:func:`photo_crops` cuts square training crops from the training photos, the same for the same
seed. The teacher's mattes of those crops are made (and cached) by
:func:`lowlight.training.data.build_photo_finetune_set`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import MAX_PIXELS
from .folders import DataFolderError, read_image

__all__ = ["PHOTO_SUFFIXES", "MIN_TRAIN_PHOTOS", "MIN_SIDE", "PhotoFolderError", "PhotoFolder", "heldout_fraction",
           "scan_photo_folder", "photo_crops"]

#: the files read as photos
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
#: the fewest usable training photos a folder must hold (a fine-tune on fewer learns the photos)
MIN_TRAIN_PHOTOS = 4
#: the shortest side a usable photo may have (pixels)
MIN_SIDE = 64


class PhotoFolderError(ValueError):
    """A folder of photos that cannot be used; the message names the folder and what was expected."""


@dataclass(frozen=True)
class PhotoFolder:
    """The usable photos of a folder: ``train`` and ``heldout`` (paths, sorted), the ``skipped``
    files as ``(path, reason)``, and the share asked to be held out."""

    root: Path
    train: tuple[Path, ...]
    heldout: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]
    heldout_share: float

    def describe(self) -> str:
        """One paragraph for a log or report: counts, the held-out photos, the skipped files."""
        lines = [f"{self.root}: {len(self.train) + len(self.heldout)} usable photos, {len(self.train)} for training, "
                 f"{len(self.heldout)} held out (SHA-256 of the relative path < {self.heldout_share:.2f}): "
                 + ", ".join(str(p.relative_to(self.root)) for p in self.heldout)]
        if self.skipped:
            lines.append(f"{len(self.skipped)} file(s) skipped:")
            lines += [f"  {p.relative_to(self.root)}: {why}" for p, why in self.skipped]
        return "\n".join(lines)


def heldout_fraction(relative: str) -> float:
    """A number in [0, 1) fixed by a photo's relative path (posix form): its SHA-256, read as a fraction."""
    digest = hashlib.sha256(relative.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def _problem(path: Path, max_pixels: int | None) -> str | None:
    """Why ``path`` cannot be used as a photo, or None."""
    try:
        img = read_image(path, max_pixels)
    except DataFolderError as exc:
        return str(exc).removeprefix(f"{path}: ")
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if min(img.shape[:2]) < MIN_SIDE:
        return f"{img.shape[1]}x{img.shape[0]} pixels; expected at least {MIN_SIDE} on the short side"
    return None


def scan_photo_folder(root: str | Path, heldout_share: float = 0.2, min_train: int = MIN_TRAIN_PHOTOS,
                      max_pixels: int | None = MAX_PIXELS, option: str = "--data-path") -> PhotoFolder:
    """The usable photos under ``root``, split into training and held-out (module docstring).
    ``option``: how the folder is named in error messages."""
    root = Path(root)
    if not root.is_dir():
        raise PhotoFolderError(f"{option} {root}: not a folder; expected a folder of JPEG/PNG photos")
    if not 0.0 <= heldout_share < 1.0:
        raise PhotoFolderError(f"heldout_share: expected a number in [0, 1), got {heldout_share!r}")
    files = sorted((p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith(".")),
                   key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise PhotoFolderError(f"{option} {root}: no photos found (looked for {', '.join(PHOTO_SUFFIXES)} files, "
                               "nested folders included)")
    usable, skipped = [], []
    for path in files:
        why = "not a regular file" if not path.is_file() else _problem(path, max_pixels)
        (skipped.append((path, why)) if why else usable.append(path))
    share = {p: heldout_fraction(p.relative_to(root).as_posix()) for p in usable}
    heldout = [p for p in usable if share[p] < heldout_share]
    if heldout_share > 0 and not heldout and len(usable) >= 2:
        heldout = [min(usable, key=share.get)]
    train = [p for p in usable if p not in heldout]
    if len(train) < min_train:
        reasons = "".join(f"\n  {p.relative_to(root)}: {why}" for p, why in skipped[:10])
        more = f"\n  ... and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        raise PhotoFolderError(
            f"{option} {root}: {len(usable)} usable photo(s) of {len(files)} file(s), {len(train)} left for training "
            f"after holding out {len(heldout)}; expected at least {min_train} for training"
            + (f". Skipped:{reasons}{more}" if skipped else ""))
    return PhotoFolder(root, tuple(train), tuple(heldout), tuple(skipped), float(heldout_share))


def photo_crops(paths, size: int, per_photo: int, seed: int = 0,
                max_pixels: int | None = MAX_PIXELS) -> tuple[list[np.ndarray], list[dict]]:
    """``per_photo`` square crops of each photo (side 40-100 % of its short side, anywhere),
    resized to ``size`` px (area): ``(crops, boxes)``, a box being ``{"file", "x", "y", "side"}``.
    Deterministic given ``seed`` and the files."""
    import cv2

    if not (isinstance(size, int) and size >= 32) or not (isinstance(per_photo, int) and per_photo >= 1):
        raise ValueError(f"photo_crops: expected size >= 32 and per_photo >= 1, got {size!r}, {per_photo!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 9_191]))
    crops, boxes = [], []
    for path in paths:
        img = read_image(path, max_pixels)
        h, w = img.shape[:2]
        for _ in range(per_photo):
            side = max(MIN_SIDE, int(rng.uniform(0.4, 1.0) * min(h, w)))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = cv2.resize(img[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
            crops.append(np.ascontiguousarray(crop))
            boxes.append({"file": str(path), "x": x, "y": y, "side": side})
    return crops, boxes
