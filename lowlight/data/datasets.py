"""PyTorch datasets over LL-Matte and real data folders (notebook 01b; used from 02 on).

Every dataset returns the same sample dict, so training and evaluation code never cares
where the data came from::

    image   float32 3xHxW in [0, 1]  the network input (low-light, or normal-light -- see ``mode``)
    normal  float32 3xHxW in [0, 1]  the normal-light composite (absent when a transform
                                     cannot move it together with ``image``, see below)
    alpha   float32 1xHxW in [0, 1]  ground truth
    trimap  float32 1xHxW            0 = background, 0.5 = unknown, 1 = foreground
    valid   float32 1xHxW            1 where the pixel counts (a transform may return its own)
    meta    dict of str / int / float: id, family, ev, mean luminances, ... (collates by default)

``mode`` picks the input: ``"low"`` (the low-light version), ``"normal"``, or ``"mixed"``
(normal light with probability ``normal_fraction`` -- the article's guard against
forgetting normal-light behaviour while fine-tuning).

Randomness is per sample, not per process: sample ``i`` in epoch ``e`` draws from
``SeedSequence([seed, e, i])`` (call :meth:`MattingDataset.set_epoch` each epoch), so the
batches are the same with 0 or 8 ``DataLoader`` workers.  An albumentations pipeline is
re-seeded from the same stream before each call (``Compose.set_random_seed``).

The ``transform`` hook is called as ``transform(image=uint8 HxWx3, alpha=float32 HxW)``
-- the call an albumentations ``Compose(..., additional_targets={"alpha": "mask"})``
(or :class:`lowlight.augment.MattingCompose`) expects -- and, when the transform declares
it (an albumentations target ``"normal"``, or a parameter named ``normal``), also
``normal=uint8 HxWx3``.  Otherwise the sample has no ``normal`` entry, because nothing
guarantees it would still be aligned with the transformed image.  It returns a dict
with ``image`` and ``alpha`` (and ``normal``, ``valid`` if it handles them); other plain
values it returns (e.g. ``content_hw`` of an evaluation transform that pads) go to
``meta``.  A plain callable may also take ``rng`` (a numpy Generator of this sample).
"""
from __future__ import annotations

import inspect
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..color import luminance
from .compositing import composite, estimate_foreground, to_alpha_float, to_alpha_uint8
from .folders import (DataFolderError, check_same_size, cover_crop, fit_to_size, list_images,
                      pair_files, read_alpha, read_image)
from .llmatte import LOW_VERSIONS, PROCESSED
from .llmatte_cache import _read_png, build_llmatte, llmatte_dir, load_manifest
from .trimap import trimap_from_alpha

__all__ = ["MODES", "MattingDataset", "LLMatteDataset", "ImageAlphaFolder", "Composition1kFolder",
           "worker_init_fn", "make_loader", "to_tensor_image"]

MODES = ("low", "normal", "mixed")


def to_tensor_image(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 (or float in [0, 1]) -> float32 3xHxW tensor in [0, 1]."""
    a = np.asarray(img)
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))
    return t.float().div_(255.0) if a.dtype == np.uint8 else t.float()


def _plane(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]


def _transform_targets(t) -> tuple[bool, bool]:
    """(passes ``normal``, passes ``rng``) for a transform; validates albumentations pipelines."""
    if t is None:
        return False, False
    if not callable(t):
        raise TypeError(f"transform: expected a callable, got {type(t).__name__}")
    targets = getattr(t, "additional_targets", None)
    if isinstance(targets, Mapping):   # albumentations Compose
        if "alpha" not in targets:
            raise ValueError(
                "transform: this albumentations pipeline does not declare the 'alpha' target, so alpha "
                "would pass through untouched while the image is flipped/cropped; build it with "
                "A.Compose([...], additional_targets={'alpha': 'mask'}) (add 'normal': 'image' to move the "
                "normal-light image too)")
        return "normal" in targets, False
    try:
        params = inspect.signature(t).parameters.values()
    except (TypeError, ValueError):
        return False, False
    names = {p.name for p in params}
    # only an explicit ``normal`` parameter: a ``**kwargs`` catch-all may pass it through unmoved
    return ("normal" in names), ("rng" in names)


class MattingDataset(Dataset):
    """Common machinery: input ``mode``, per-sample seeding, the transform hook, trimaps and
    conversion to tensors.  Subclasses implement :meth:`raw`.  Notebook 01b."""

    def __init__(self, mode: str = "low", normal_fraction: float = 0.2, transform=None, seed: int = 0,
                 trimap_width: int | None = None):
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        if not 0.0 <= float(normal_fraction) <= 1.0:
            raise ValueError(f"normal_fraction: expected a number in [0, 1], got {normal_fraction!r}")
        self.mode = mode
        self.normal_fraction = float(normal_fraction)
        self.transform = transform
        self._pass_normal, self._pass_rng = _transform_targets(transform)
        self.seed = int(seed)
        self.epoch = 0
        self.trimap_width = trimap_width

    # -- to implement ------------------------------------------------------------
    def raw(self, index: int, rng: np.random.Generator) -> dict:
        """uint8 ``normal``, ``low`` (HxWx3), ``alpha`` (HxW), optional ``trimap``, and ``meta``."""
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Change the random stream (mixed-mode choice, on-the-fly low light, augmentation)
        for a new epoch.  Workers see it when they are (re)started, i.e. with
        ``persistent_workers=False`` (the :func:`make_loader` default)."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, int(index)]))

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        rng = self.rng(index)
        r = self.raw(index, rng)
        use_normal = self.mode == "normal" or (self.mode == "mixed" and rng.random() < self.normal_fraction)
        image = r["normal"] if use_normal else r["low"]
        normal = r["normal"]
        alpha = to_alpha_float(r["alpha"])
        valid = None
        trimap8 = r.get("trimap")
        has_normal = True
        if self.transform is not None:
            kwargs = {"image": image, "alpha": alpha}
            if self._pass_normal:
                kwargs["normal"] = normal
            if self._pass_rng:
                kwargs["rng"] = rng
            if hasattr(self.transform, "set_random_seed"):
                self.transform.set_random_seed(int(rng.integers(0, 2**31 - 1)))
            out = self.transform(**kwargs)
            if not isinstance(out, Mapping) or "image" not in out or "alpha" not in out:
                raise TypeError("transform: must return a dict with at least 'image' and 'alpha', got "
                                f"{type(out).__name__}{' with keys ' + str(list(out)) if isinstance(out, Mapping) else ''}")
            image = np.asarray(out["image"])
            alpha = np.asarray(out["alpha"], np.float32)
            if alpha.ndim == 3:
                alpha = alpha[..., 0]
            alpha = np.clip(alpha, 0.0, 1.0)
            has_normal = self._pass_normal and "normal" in out
            normal = out.get("normal") if has_normal else None
            valid = out.get("valid")
            extra = {k: v for k, v in out.items() if k not in ("image", "alpha", "normal", "valid")
                     and isinstance(v, (str, int, float, tuple))}
            trimap8 = None    # recomputed from the transformed alpha
        if trimap8 is None:
            trimap8 = trimap_from_alpha(alpha, self.trimap_width)
        sample = {
            "image": to_tensor_image(image),
            "alpha": _plane(alpha),
            "trimap": _plane(np.where(trimap8 == 255, 1.0, np.where(trimap8 == 0, 0.0, 0.5))),
            "valid": _plane(np.ones(alpha.shape, np.float32) if valid is None else np.asarray(valid, np.float32)),
        }
        if has_normal:
            sample["normal"] = to_tensor_image(normal)
        meta = dict(r["meta"])
        if self.transform is not None:
            meta.update(extra)
        meta["input"] = "normal" if use_normal else "low"
        meta["epoch"] = self.epoch
        sample["meta"] = meta
        return sample


# --------------------------------------------------------------------------- LL-Matte
class LLMatteDataset(MattingDataset):
    """A split of the generated LL-Matte data (built or found in the cache on first use).

    ``split``: ``"train"``, ``"val"`` or ``"test"`` (the LL-Matte-Test stand-in).
    ``profile`` (a :class:`lowlight.config.Profile`) sets sizes, counts and the default ``seed``;
    ``path`` reads an existing folder instead;
    ``spec_changes`` go to :class:`lowlight.data.LLMatteSpec`.  ``low``: which low-light
    version is the input -- ``"raw"`` (the sensor's dark frame) or ``"processed"`` (the same frame
    as a phone delivers it; the folder must have been built with ``processed=True``). Notebook 01b.
    """

    def __init__(self, split: str, profile, mode: str = "low", normal_fraction: float = 0.2,
                 transform=None, seed: int | None = None, path: str | Path | None = None,
                 root: str | Path | None = None, build: bool = True, progress: bool = True,
                 verbose: bool = False, trimap_width: int | None = None, low: str = "raw", **spec_changes):
        from .. import config

        if split not in ("train", "val", "test"):
            raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
        prof = config.require_profile(profile, where="LLMatteDataset")
        super().__init__(mode, normal_fraction, transform, prof.seed if seed is None else seed, trimap_width)
        if path is None:
            path = (build_llmatte(prof, root=root, progress=progress, verbose=verbose, **spec_changes) if build
                    else llmatte_dir(prof, root=root, **spec_changes))
        self.path = Path(path)
        self.manifest = load_manifest(self.path)
        self.split = split
        self.items = self.manifest["splits"][split]
        self._stored_trimap = trimap_width is None
        if low not in LOW_VERSIONS:
            raise ValueError(f"low: expected one of {LOW_VERSIONS}, got {low!r}")
        if low == "processed" and not self.manifest.get("spec", {}).get("processed"):
            raise ValueError(f"low='processed': the LL-Matte folder {self.path} has no processed version; "
                             "build one with processed=True (e.g. lowlight.data.finetune_llmatte(profile))")
        self.low = low

    def __len__(self) -> int:
        return len(self.items)

    def raw(self, index: int, rng: np.random.Generator) -> dict:
        it = self.items[index]
        base = self.path / self.split
        sid = it["id"]
        meta = {k: v for k, v in it.items() if k != "files" and isinstance(v, (str, int, float))}
        meta["source"] = "llmatte"
        return {
            "normal": _read_png(self.path, base / "normal" / f"{sid}.png"),
            "low": _read_png(self.path, base / ("low" if self.low == "raw" else PROCESSED) / f"{sid}.png"),
            "alpha": _read_png(self.path, base / "alpha" / f"{sid}.png", alpha=True),
            "trimap": _read_png(self.path, base / "trimap" / f"{sid}.png", alpha=True) if self._stored_trimap else None,
            "meta": meta,
        }


# --------------------------------------------------------------------------- real folders
class _RealFolder(MattingDataset):
    """Low light on the fly for real data: ``lowlight="physical"`` draws
    :func:`lowlight.simulate.sample_params` per sample, ``"article"`` applies the article's
    formula, ``None`` takes the images as they are (already low-light photos)."""

    def __init__(self, lowlight: str | None, size: int | None, mode, normal_fraction, transform, seed,
                 trimap_width, sim_overrides: dict | None):
        super().__init__(mode, normal_fraction, transform, seed, trimap_width)
        if lowlight not in ("physical", "article", None):
            raise ValueError(f"lowlight: expected 'physical', 'article' or None, got {lowlight!r}")
        if size is not None and (not isinstance(size, (int, np.integer)) or size < 8):
            raise ValueError(f"size: expected None or an int >= 8, got {size!r}")
        self.lowlight = lowlight
        self.size = size
        self.sim_overrides = dict(sim_overrides or {})

    #: set by subclasses: ``[(stem, image or foreground path, alpha path)]`` and the root folder
    pairs: list
    root: Path

    def load_pair(self, pair_index: int) -> tuple[np.ndarray, np.ndarray]:
        """The (image or foreground, alpha) files of pair ``pair_index`` as read and size-checked
        (uint8)."""
        stem, ip, ap = self.pairs[pair_index]
        img, alpha = read_image(ip), read_alpha(ap)
        check_same_size(img, ip, alpha, ap)
        return img, alpha

    def _background_files(self) -> list[Path]:
        return []

    def check(self, max_listed: int = 10) -> int:
        """Read every file once (images, alphas, backgrounds), so that a bad file fails now and
        not when a training epoch first draws it. Returns the number of samples; raises one
        :class:`DataFolderError` that names every bad file (the first ``max_listed`` of them)."""
        import cv2

        problems: list[str] = []

        def attempt(fn, *args, path=None):
            try:
                fn(*args)
            except DataFolderError as exc:
                problems.append(str(exc))
            except (OSError, MemoryError, cv2.error) as exc:
                problems.append(f"{path}: cannot be read ({type(exc).__name__}: {exc})")

        for i in range(len(self.pairs)):
            attempt(self.load_pair, i, path=self.pairs[i][1])
        for b in self._background_files():
            attempt(read_image, b, path=b)
        if problems:
            shown = "\n  ".join(problems[:max_listed])
            more = f"\n  ... and {len(problems) - max_listed} more" if len(problems) > max_listed else ""
            raise DataFolderError(
                f"{problems[0].split(': ', 1)[0]}: bad file in data folder {self.root} "
                f"({len(problems)} bad file(s) found by reading every file once):\n  {shown}{more}")
        return len(self)

    def _low(self, normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        from ..simulate import article_low_light, sample_params, simulate

        if self.lowlight is None:
            return normal, {"ev": 0.0}
        if self.lowlight == "article":
            low = article_low_light(normal, rng=rng)
            return low, {"ev": float(np.log2(max(luminance(low).mean(), 1e-6) / max(luminance(normal).mean(), 1e-6)))}
        p = sample_params(rng, **self.sim_overrides)
        return simulate(normal, p, rng), {"ev": float(p.ev), "exposure": float(p.exposure),
                                          "full_well": float(p.full_well), "read_noise": float(p.read_noise),
                                          "blur_sigma": float(p.blur_sigma), "motion_length": int(p.motion_length)}

    def _finish(self, sid: str, layout: str, normal, alpha, rng) -> dict:
        low, sim = self._low(normal, rng)
        meta = {"id": sid, "family": "real", "source": layout, "lowlight": str(self.lowlight), **sim,
                "mean_luma_normal": float(luminance(normal).mean()), "mean_luma_low": float(luminance(low).mean())}
        return {"normal": normal, "low": low, "alpha": alpha, "meta": meta}


class ImageAlphaFolder(_RealFolder):
    """Layout (b): ``<root>/<image_dir>/x.jpg`` + ``<root>/<alpha_dir>/x.png`` (AM-2k:
    ``original/`` + ``mask/``; P3M: ``blurred_image/`` + ``mask/``; LL-Matte splits:
    ``normal/`` + ``alpha/``).  Notebook 01b.

    ``backgrounds``: ``None`` keeps each photo's own background; a folder of images (or
    ``"procedural"`` for LL-Matte's generated backgrounds) re-composites the subject on a
    new one after estimating a clean foreground (``estimate_fg="ml"``: pymatting's
    multi-level method, avoids colour bleeding; ``"none"``: use the photo as F).
    Pairing errors are raised at construction, per-file errors when a sample is read;
    :meth:`check` reads every file once and names all the bad ones.
    """

    def __init__(self, root: str | Path, image_dir: str = "image", alpha_dir: str = "alpha",
                 lowlight: str | None = "physical", size: int | None = None, mode: str = "low",
                 normal_fraction: float = 0.2, transform=None, seed: int = 0, trimap_width: int | None = None,
                 backgrounds: str | Path | None = None, estimate_fg: str = "ml", sim_overrides: dict | None = None):
        super().__init__(lowlight, size, mode, normal_fraction, transform, seed, trimap_width, sim_overrides)
        root = Path(root)
        if not root.is_dir():
            raise DataFolderError(f"{root}: data folder not found")
        self.root = root
        self.pairs = pair_files(root / image_dir, root / alpha_dir, image_role=image_dir)
        self.backgrounds = backgrounds
        self._bg_files = None
        if backgrounds is not None and backgrounds != "procedural":
            self._bg_files = list(list_images(backgrounds, "background").values())
        if estimate_fg not in ("ml", "none"):
            raise ValueError(f"estimate_fg: expected 'ml' or 'none', got {estimate_fg!r}")
        self.estimate_fg = estimate_fg

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The (image, alpha) pair ``index`` as read and size-checked (uint8)."""
        return self.load_pair(index)

    def _background_files(self) -> list[Path]:
        return list(self._bg_files or [])

    def raw(self, index: int, rng: np.random.Generator) -> dict:
        img, alpha = self.load(index)
        img, alpha = fit_to_size([img, alpha], self.size)
        if self.backgrounds is not None:
            h, w = alpha.shape
            brng = np.random.default_rng(np.random.SeedSequence([self.seed, 1_000_003, index]))
            if self._bg_files is not None:
                bg = cover_crop(read_image(self._bg_files[int(brng.integers(len(self._bg_files)))]), h, w, brng)
            else:
                from .backgrounds import make_background

                side = max(h, w)
                bg = make_background(str(brng.choice(["photo", "procedural", "night"])), side, brng)[0][:h, :w]
            img = composite(estimate_foreground(img, alpha, self.estimate_fg), alpha, np.ascontiguousarray(bg))
        return self._finish(self.pairs[index][0], "image_alpha", img, alpha, rng)


class Composition1kFolder(_RealFolder):
    """Layout (a): ``<root>/fg/x.png`` + ``<root>/alpha/x.png`` + backgrounds ``<root>/bg/*``,
    composited on the fly, ``bg_per_fg`` backgrounds per foreground (Composition-1k's test
    set uses 20).  The background of sample ``i`` is fixed by ``seed`` and ``i``; it is
    scaled to cover the foreground and cropped, as in the Composition-1k script.
    :meth:`check` reads every foreground, alpha and background once.  Notebook 01b.
    """

    def __init__(self, root: str | Path, fg_dir: str = "fg", alpha_dir: str = "alpha", bg_dir: str = "bg",
                 bg_per_fg: int = 1, lowlight: str | None = "physical", size: int | None = None,
                 mode: str = "low", normal_fraction: float = 0.2, transform=None, seed: int = 0,
                 trimap_width: int | None = None, sim_overrides: dict | None = None):
        super().__init__(lowlight, size, mode, normal_fraction, transform, seed, trimap_width, sim_overrides)
        root = Path(root)
        if not root.is_dir():
            raise DataFolderError(f"{root}: data folder not found")
        if not isinstance(bg_per_fg, (int, np.integer)) or bg_per_fg < 1:
            raise ValueError(f"bg_per_fg: expected an int >= 1, got {bg_per_fg!r}")
        self.root = root
        self.pairs = pair_files(root / fg_dir, root / alpha_dir, image_role=fg_dir)
        self.bg_files = list(list_images(root / bg_dir, "background").values())
        self.bg_per_fg = int(bg_per_fg)

    def __len__(self) -> int:
        return len(self.pairs) * self.bg_per_fg

    def _background_files(self) -> list[Path]:
        return list(self.bg_files)

    def raw(self, index: int, rng: np.random.Generator) -> dict:
        fi, j = divmod(index, self.bg_per_fg)
        stem = self.pairs[fi][0]
        fg, alpha = self.load_pair(fi)
        # the backgrounds of one foreground are distinct (while there are enough of them)
        order = np.random.default_rng(np.random.SeedSequence([self.seed, 2_000_003, fi])).permutation(len(self.bg_files))
        bpath = self.bg_files[int(order[j % len(order)])]
        brng = np.random.default_rng(np.random.SeedSequence([self.seed, 2_000_004, index]))
        bg = cover_crop(read_image(bpath), *alpha.shape, brng)
        normal = composite(fg, alpha, bg)
        normal, alpha = fit_to_size([normal, alpha], self.size)
        out = self._finish(f"{stem}__{bpath.stem}", "composition1k", normal, to_alpha_uint8(alpha), rng)
        return out


# --------------------------------------------------------------------------- loaders
def worker_init_fn(worker_id: int) -> None:
    """Seed Python's and numpy's global generators in a ``DataLoader`` worker from the
    loader's (seeded) torch seed, and keep each worker to one thread."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, num_workers: int = 0,
                seed: int = 0, drop_last: bool = False, **kwargs) -> DataLoader:
    """A ``DataLoader`` whose shuffling and worker seeds follow ``seed`` (default collate
    works on the sample dicts).  Notebook 01b; used by the training notebooks."""
    g = torch.Generator()
    g.manual_seed(int(seed))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      worker_init_fn=worker_init_fn, generator=g, drop_last=drop_last,
                      persistent_workers=False, **kwargs)
