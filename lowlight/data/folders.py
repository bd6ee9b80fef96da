"""Reading real matting data from folders, with clear errors (notebook 01).

Two layouts are supported (see ``data/README.md``):

(a) **Composition-1k style** -- ``fg/``, ``alpha/`` (same file names as ``fg/``) and a
    pool of backgrounds ``bg/``; samples are composited on the fly.
(b) **image/alpha pairs** (AM-2k, P3M, Distinctions-646 style) -- ``image/`` and
    ``alpha/`` with matching file stems (``a.jpg`` pairs with ``a.png``).

Every failure names the file or folder and says what was expected: missing or empty
folder, missing partner, two files with one stem, unreadable image, 16-bit data, alpha
that is not single-channel, a 0/1 binary mask stored as alpha, sizes that differ.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "DataFolderError", "read_image", "read_alpha", "list_images",
           "pair_files", "check_same_size", "fit_to_size", "cover_crop"]

from ..io import IMAGE_EXTENSIONS


class DataFolderError(ValueError):
    """A data folder or file is not what the loader expects (the message names it)."""


def _imread(path: Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataFolderError(f"{path}: file not found")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise DataFolderError(f"{path}: cannot read this file as an image (corrupt or unsupported format)")
    if img.dtype != np.uint8:
        bits = {np.dtype(np.uint16): "16-bit", np.dtype(np.float32): "32-bit float"}.get(img.dtype, str(img.dtype))
        raise DataFolderError(
            f"{path}: {bits} image; expected 8-bit (convert it, e.g. "
            "cv2.imwrite(out, (img / 257).round().astype('uint8')) for 16-bit)")
    return img


def read_image(path: str | Path) -> np.ndarray:
    """An 8-bit image file as uint8 RGB HxWx3 (grey is repeated to 3 channels, an alpha
    channel of an RGBA file is dropped).  Notebook 01."""
    img = _imread(Path(path))
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[..., None], 3, axis=2))
    if img.shape[2] == 4:
        img = img[..., :3]
    if img.shape[2] != 3:
        raise DataFolderError(f"{path}: {img.shape[2]}-channel image; expected RGB, RGBA or grey")
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def read_alpha(path: str | Path) -> np.ndarray:
    """An 8-bit single-channel alpha matte as uint8 HxW.  Notebook 01.

    Mattes stored as RGB or RGBA are refused rather than guessed at (which channel is the
    matte?): save them as single-channel 8-bit PNGs. A matte whose largest value is 1 (a 0/1
    binary mask exported to an 8-bit file) is refused too: read as alpha it would be almost
    transparent everywhere, and a data set of them trains on empty mattes.
    """
    img = _imread(Path(path))
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise DataFolderError(
            f"{path}: alpha matte has {img.shape[2]} channels; expected a single-channel (greyscale) "
            "8-bit image, e.g. cv2.imwrite(out, alpha_uint8) with alpha of shape HxW")
    if int(img.max()) == 1:
        vals = "0 and 1" if int(img.min()) == 0 else "1 everywhere"
        raise DataFolderError(
            f"{path}: alpha matte holds only {vals} (a 0/1 binary mask saved as 8-bit); expected alpha "
            "0-255 (255 = opaque). Convert it: cv2.imwrite(out, cv2.imread(path, 0) * 255)")
    return np.ascontiguousarray(img)


def list_images(folder: str | Path, role: str = "images") -> dict[str, Path]:
    """``{stem: path}`` of the image files in ``folder`` (sorted by stem).

    Errors name the folder when it is missing, not a folder or holds no image, and name
    both files when two share one stem.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataFolderError(f"{folder}: {role} folder not found")
    if not folder.is_dir():
        raise DataFolderError(f"{folder}: expected a folder of {role}, found a file")
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            if p.stem in found:
                raise DataFolderError(f"{folder}: two {role} files share the name {p.stem!r}: "
                                      f"{found[p.stem].name} and {p.name}")
            found[p.stem] = p
    if not found:
        raise DataFolderError(f"{folder}: {role} folder is empty (no {', '.join(IMAGE_EXTENSIONS)} files)")
    return dict(sorted(found.items()))


def pair_files(image_dir: str | Path, alpha_dir: str | Path, image_role: str = "image") -> list[tuple[str, Path, Path]]:
    """Match files of ``image_dir`` and ``alpha_dir`` by stem: ``[(stem, image, alpha)]``.

    A file without a partner is an error that names it (and how many others lack one).
    """
    imgs = list_images(image_dir, image_role)
    alphas = list_images(alpha_dir, "alpha")
    no_alpha = [imgs[s] for s in imgs if s not in alphas]
    no_image = [alphas[s] for s in alphas if s not in imgs]
    if no_alpha or no_image:
        bad, other_dir, what = (no_alpha, alpha_dir, "alpha") if no_alpha else (no_image, image_dir, image_role)
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataFolderError(f"{bad[0]}: missing pair: no {what} file named {bad[0].stem}.* in {other_dir}{more}")
    return [(s, imgs[s], alphas[s]) for s in imgs]


def check_same_size(a: np.ndarray, a_path, b: np.ndarray, b_path) -> None:
    """Raise naming both files when two images differ in height/width."""
    if a.shape[:2] != b.shape[:2]:
        raise DataFolderError(
            f"{b_path}: size mismatch: {b.shape[1]}x{b.shape[0]} (WxH) but {Path(a_path).name} is "
            f"{a.shape[1]}x{a.shape[0]}")


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    shrink = w < img.shape[1] and h < img.shape[0]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def fit_to_size(arrays: list[np.ndarray], size: int | None) -> list[np.ndarray]:
    """Resize so the short side is ``size`` and centre-crop to ``size`` x ``size`` (area
    averaging when shrinking, bilinear when enlarging -- never nearest-neighbour, which
    would destroy soft alpha).  ``size=None`` returns the arrays unchanged."""
    if size is None:
        return arrays
    h, w = arrays[0].shape[:2]
    s = size / min(h, w)
    nw, nh = max(size, int(round(w * s))), max(size, int(round(h * s)))
    y0, x0 = (nh - size) // 2, (nw - size) // 2
    return [np.ascontiguousarray(_resize(a, nw, nh)[y0:y0 + size, x0:x0 + size]) for a in arrays]


def cover_crop(bg: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Scale ``bg`` to cover ``h`` x ``w`` (as the Composition-1k script does) and crop a
    random window of that size."""
    bh, bw = bg.shape[:2]
    s = max(h / bh, w / bw)
    nh, nw = max(h, int(np.ceil(bh * s))), max(w, int(np.ceil(bw * s)))
    big = _resize(bg, nw, nh)
    y0 = int(rng.integers(0, nh - h + 1))
    x0 = int(rng.integers(0, nw - w + 1))
    return np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w])
