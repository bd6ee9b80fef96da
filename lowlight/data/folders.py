"""Reading real matting data from folders, with clear errors (notebook 01b).

Two layouts are supported (see ``data/README.md``):

(a) **Composition-1k style** -- ``fg/``, ``alpha/`` (same file names as ``fg/``) and a
    pool of backgrounds ``bg/``; samples are composited on the fly.
(b) **image/alpha pairs** (AM-2k, P3M, Distinctions-646 style) -- ``image/`` and
    ``alpha/`` with matching file stems (``a.jpg`` pairs with ``a.png``).

Every failure names the file or folder and says what was expected: missing or empty
folder, missing partner, two files with one stem, unreadable image, 16-bit data, alpha
that is not single-channel, a 0/1 binary mask stored as alpha, sizes that differ.

Every image file is read the same way (:func:`read_image`, :func:`read_image_and_alpha`,
:func:`read_alpha`): its size is read from the header first (Pillow opens files lazily) and
an image of more than ``max_pixels`` (default :data:`MAX_PIXELS`, 50 megapixels) is refused
before it is decoded -- a 746 kB PNG can declare 16000 x 16000 pixels and take gigabytes to
decode. A JPEG, PNG or WebP with an EXIF orientation is turned the way a viewer shows it
(OpenCV's TIFF reader applies the orientation itself); a file without one is read exactly as
before, bit for bit.
"""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "DataFolderError", "ImageTooLargeError", "ImageHeader",
           "read_image_header", "read_image", "read_image_and_alpha", "read_alpha", "list_images",
           "pair_files", "check_same_size", "fit_to_size", "cover_crop"]

from ..io import IMAGE_EXTENSIONS, MAX_PIXELS

#: EXIF tag of the orientation, and the formats whose pixels OpenCV returns unturned (IMREAD_UNCHANGED)
_ORIENTATION_TAG = 0x0112
_TURNED_BY_US = ("JPEG", "MPO", "PNG", "WEBP")
_PIL_LIMIT_LOCK = threading.Lock()


class DataFolderError(ValueError):
    """A data folder or file is not what the loader expects (the message names it)."""


class ImageTooLargeError(DataFolderError):
    """An image file that declares more pixels than the reader's ``max_pixels`` (never decoded)."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: size in pixels, Pillow's format name, EXIF orientation (1-8)."""

    width: int
    height: int
    format: str
    orientation: int = 1


def _pil_open(path: Path):
    """``PIL.Image.open`` (lazy: reads the header only), also for a header above Pillow's own
    decompression-bomb limit -- the caller applies its own."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombError:
            with _PIL_LIMIT_LOCK:
                limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    return Image.open(path)
                finally:
                    Image.MAX_IMAGE_PIXELS = limit


def read_image_header(path: str | Path) -> ImageHeader | None:
    """The :class:`ImageHeader` of an image file, read without decoding its pixels; ``None``
    when Pillow does not recognise the file (OpenCV may still decode it)."""
    try:
        im = _pil_open(Path(path))
    except Exception:  # noqa: BLE001 - Pillow raises many types for a file it cannot parse
        return None
    with im:
        orientation = 1
        if "exif" in im.info:          # JPEG/PNG/WebP: the EXIF block is in the header already
            try:
                orientation = int(im.getexif().get(_ORIENTATION_TAG, 1))
            except Exception:  # noqa: BLE001 - a damaged EXIF block: keep the stored orientation
                orientation = 1
        return ImageHeader(int(im.size[0]), int(im.size[1]), str(im.format),
                           orientation if 1 <= orientation <= 8 else 1)


def _turn(img: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels as a viewer shows them for EXIF ``orientation`` 1-8 (as Pillow's
    ``ImageOps.exif_transpose``): transpose for 5-8, then flip rows and/or columns."""
    if orientation in (5, 6, 7, 8):
        img = img.swapaxes(0, 1)
    if orientation in (3, 4, 7, 8):
        img = img[::-1]
    if orientation in (2, 3, 6, 7):
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def _too_large(path: Path, w: int, h: int, max_pixels: int | None, limit_name: str) -> None:
    if max_pixels and w * h > max_pixels:
        raise ImageTooLargeError(
            f"{path}: {w}x{h} (WxH) = {w * h / 1e6:.1f} megapixels, above the limit of {max_pixels / 1e6:g} MP "
            f"({limit_name}); not decoded (raise {limit_name} to read an image this large)")


def _imread(path: Path, max_pixels: int | None = MAX_PIXELS, limit_name: str = "max_pixels") -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise DataFolderError(f"{path}: file not found")
    if not path.is_file():
        raise DataFolderError(f"{path}: not a regular file (a folder, device, pipe or socket); expected an image file")
    header = read_image_header(path)
    if header is not None:
        _too_large(path, header.width, header.height, max_pixels, limit_name)
    data = np.fromfile(str(path), dtype=np.uint8)
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:
        first = (str(exc).strip().splitlines() or ["cv2.error"])[-1].strip()
        raise DataFolderError(f"{path}: cannot decode this image ({first[:160]})") from None
    if img is None:
        raise DataFolderError(f"{path}: cannot read this file as an image (corrupt or unsupported format)")
    if header is None:
        _too_large(path, img.shape[1], img.shape[0], max_pixels, limit_name)
    elif header.orientation != 1 and header.format in _TURNED_BY_US:
        img = _turn(img, header.orientation)
    if img.dtype != np.uint8:
        bits = {np.dtype(np.uint16): "16-bit", np.dtype(np.float32): "32-bit float"}.get(img.dtype, str(img.dtype))
        raise DataFolderError(
            f"{path}: {bits} image; expected 8-bit (convert it, e.g. "
            "cv2.imwrite(out, (img / 257).round().astype('uint8')) for 16-bit)")
    return img


def read_image(path: str | Path, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """An 8-bit image file as uint8 RGB HxWx3 (grey is repeated to 3 channels, an alpha
    channel of an RGBA file is dropped: :func:`read_image_and_alpha` returns it), turned by its
    EXIF orientation. More than ``max_pixels`` pixels (``None``: no limit) raises
    :class:`ImageTooLargeError` before decoding.  Notebook 01b."""
    return read_image_and_alpha(path, max_pixels)[0]


def read_image_and_alpha(path: str | Path, max_pixels: int | None = MAX_PIXELS,
                         limit_name: str = "max_pixels") -> tuple[np.ndarray, np.ndarray | None]:
    """``(rgb, alpha)``: the colours as :func:`read_image` returns them and the file's own
    alpha channel (uint8 HxW), ``None`` for a file without one. ``limit_name``: how the size
    limit is called in the message (``"--max-pixels"`` for a command line).  Notebook 07."""
    img = _imread(Path(path), max_pixels, limit_name)
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[..., None], 3, axis=2)), None
    alpha = None
    if img.shape[2] == 4:
        img, alpha = img[..., :3], np.ascontiguousarray(img[..., 3])
    if img.shape[2] != 3:
        raise DataFolderError(f"{path}: {img.shape[2]}-channel image; expected RGB, RGBA or grey")
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)), alpha


def read_alpha(path: str | Path, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """An 8-bit single-channel alpha matte as uint8 HxW.  Notebook 01b.

    Mattes stored as RGB or RGBA are refused rather than guessed at (which channel is the
    matte?): save them as single-channel 8-bit PNGs. A matte whose largest value is 1 (a 0/1
    binary mask exported to an 8-bit file) is refused too: read as alpha it would be almost
    transparent everywhere, and a data set of them trains on empty mattes. Size limit and
    EXIF orientation as :func:`read_image`.
    """
    img = _imread(Path(path), max_pixels)
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
