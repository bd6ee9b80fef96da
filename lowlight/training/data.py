"""Training data: LL-Matte and real folders for CV-UNet; the MODNet fine-tuning set (notebook 06).

The MODNet fine-tune learns from three signals, all built here:

(a) **LL-Matte portraits with their true alpha** -- procedural head-and-shoulders composites
    (the ``portrait`` family) at the fine-tuning size;
(b) **self-distillation** -- the original model's matte of the *normal-light* image is the target
    for its *low-light* version. No label is needed, so any photo a user has will do; the course
    uses people-free scenes shipped with scikit-image (a model that hallucinates a person into a
    dark kitchen learns not to), and, with ``signal="distill"``, the LL-Matte portraits too;
(c) **normal-light inputs** in ``normal_fraction`` (20 %) of the draws, against forgetting;
(d) **phone-processed night photos** in ``processed_fraction`` of the low-light draws: the same
    exposure after a phone's auto-exposure gain, denoising, sharpening and JPEG
    (:func:`lowlight.simulate.camera_pipeline`) -- what a matting service actually receives.
    NL-means costs about 0.2 s per 256-pixel image on a CPU, too slow for every draw, so each
    image has one processed version made once: LL-Matte stores one per portrait
    (``processed=True``), the scene crops get theirs when the set is built.

Every draw of a sample is deterministic: sample ``i`` in epoch ``e`` of a set seeded ``s``
darkens with ``SeedSequence([s, e, i])`` (random exposure in ``[-7, -2]`` EV, sensor and cast
from :func:`lowlight.simulate.sample_params`), flips horizontally half of the time and, with
``crop``, takes a random square crop (the teacher's matte is cut with it). The
teacher's targets are computed once, when the set is built, not at every step.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import config
from ..data import finetune_llmatte

__all__ = ["make_datasets", "FinetuneSet", "finetune_llmatte", "scene_crops", "processed_scenes", "build_finetune_set",
           "build_photo_finetune_set", "SIGNALS", "INPUTS", "FT_EV_RANGE", "LLMatteData", "FinetuneData"]

#: what the MODNet fine-tune learns from: true alpha where known + teacher elsewhere, or teacher only
SIGNALS = ("alpha+distill", "distill")
#: the low-light inputs of the MODNet fine-tune: raw sensor frames and phone-processed photos
#: (``profile.finetune.processed_fraction`` of the draws), or raw frames only (the control)
INPUTS = ("raw+processed", "raw")
#: exposure range (EV) drawn for the low-light inputs while fine-tuning
FT_EV_RANGE = (-7.0, -2.0)


def make_datasets(profile: config.Profile, data_path: str | Path | None = None, mode: str = "mixed",
                  augment: bool = True, seed: int | None = None, progress: bool = False):
    """``(train, val)`` for CV-UNet: LL-Matte for the profile (generated on first use), or the
    real-data folder at ``data_path`` (Composition-1k ``fg/alpha/bg`` or ``image/alpha`` pairs;
    an LL-Matte folder with a manifest). Validation is always low-light. The folder is checked
    up front (every file readable, pairs complete) so that a bad file fails before training."""
    from .. import augment as aug
    from .. import data as D

    config.require_profile(profile, where="make_datasets")
    seed = profile.seed if seed is None else seed
    tf = aug.train_transform(profile.data.image_size) if augment else None
    if data_path is None:
        train = D.LLMatteDataset("train", profile, mode=mode, transform=tf, seed=seed, progress=progress)
        val = D.LLMatteDataset("val", profile, mode="low", seed=seed, progress=progress)
        return train, val
    root = Path(data_path)
    if not root.is_dir():
        raise FileNotFoundError(f"--data-path {root}: not a folder")
    if (root / "manifest.json").is_file():
        return (D.LLMatteDataset("train", profile, mode=mode, transform=tf, seed=seed, path=root),
                D.LLMatteDataset("val", profile, mode="low", seed=seed, path=root))
    if (root / "fg").is_dir() and (root / "bg").is_dir():
        cls, kw = D.Composition1kFolder, {}
    elif (root / "image").is_dir() or (root / "images").is_dir():
        cls, kw = D.ImageAlphaFolder, ({"image_dir": "images"} if (root / "images").is_dir() else {})
    else:
        raise FileNotFoundError(
            f"--data-path {root}: expected an LL-Matte folder (manifest.json), a Composition-1k layout "
            "(fg/ alpha/ bg/) or image/alpha pairs (image/ alpha/); see data/README.md")
    full = cls(root, mode=mode, transform=tf, seed=seed, size=profile.data.image_size, **kw)
    if hasattr(full, "check"):
        full.check()
    n_val = max(1, len(full) // 10)
    idx = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed)).tolist()
    val_full = cls(root, mode="low", seed=seed, size=profile.data.eval_size, **kw)
    return torch.utils.data.Subset(full, idx[n_val:]), torch.utils.data.Subset(val_full, idx[:n_val])


# --------------------------------------------------------------------------- the MODNet fine-tune
def scene_crops(size: int, per_photo: int, seed: int = 0) -> list[np.ndarray]:
    """``per_photo`` square crops (``size`` px, 40-100 % of the short side) of each people-free photo
    in :data:`lowlight.data.SCENE_PHOTOS`: unlabelled material for self-distillation."""
    import cv2

    from ..data import SCENE_PHOTOS, load_photo

    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7_777]))
    out = []
    for name in SCENE_PHOTOS:
        img = load_photo(name)
        h, w = img.shape[:2]
        for _ in range(per_photo):
            side = int(rng.uniform(0.4, 1.0) * min(h, w))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = img[y:y + side, x:x + side]
            out.append(np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)))
    return out


@torch.no_grad()
def _teacher_mattes(teacher: torch.nn.Module, images: list[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
    from ..inference import predict_batch

    out = []
    for k in range(0, len(images), batch_size):
        x = torch.stack([torch.from_numpy(im.transpose(2, 0, 1).copy()) for im in images[k:k + batch_size]])
        a = predict_batch(teacher, x.float().div_(255.0), batch_size=batch_size)
        out.extend(np.ascontiguousarray(t[0].numpy(), dtype=np.float32) for t in a)
    return out


class FinetuneSet(Dataset):
    """Samples for fine-tuning on low light (see the module docstring).

    ``images``: uint8 RGB normal-light images, one size; ``teacher``: float32 mattes of the
    original model for each image; ``alphas``: the true matte (float32) where one is known, else
    ``None``. ``signal`` picks the target: ``"alpha+distill"`` -- the true matte where known, the
    teacher's elsewhere; ``"distill"`` -- the teacher's everywhere. Items are the dicts of
    :mod:`lowlight.data.datasets` (``image``, ``alpha``, ``valid``, ``meta``); ``set_epoch`` changes
    the draw; :meth:`with_seed` / :meth:`with_signal` give views that share the images and targets.
    ``processed``: per image ``None`` or ``(uint8 photo, ev)``, its phone-processed low-light version
    and the exposure it was taken at; ``processed_fraction`` of the low-light draws of an image that
    has one use it (:meth:`with_processed` changes the fraction).
    """

    def __init__(self, images, teacher, alphas=None, signal: str = "alpha+distill", seed: int = 0,
                 normal_fraction: float = 0.2, ev_range: tuple[float, float] = FT_EV_RANGE, crop: int | None = None,
                 processed=None, processed_fraction: float = 0.0):
        alphas = list(alphas) if alphas is not None else [None] * len(images)
        processed = list(processed) if processed is not None else [None] * len(images)
        if not (len(images) == len(teacher) == len(alphas) == len(processed)) or not images:
            raise ValueError(f"FinetuneSet: images, teacher, alphas and processed must be equal non-empty lists, got "
                             f"{len(images)}, {len(teacher)}, {len(alphas)}, {len(processed)}")
        if not 0.0 <= processed_fraction <= 1.0:
            raise ValueError(f"processed_fraction: expected a number in [0, 1], got {processed_fraction!r}")
        for k, pr in enumerate(processed):
            if pr is not None and (len(pr) != 2 or np.shape(pr[0]) != np.shape(images[k])):
                raise ValueError(f"processed[{k}]: expected None or (uint8 image of shape {np.shape(images[k])}, ev)")
        if signal not in SIGNALS:
            raise ValueError(f"signal: expected one of {SIGNALS}, got {signal!r}")
        if not 0.0 <= normal_fraction <= 1.0:
            raise ValueError(f"normal_fraction: expected a number in [0, 1], got {normal_fraction!r}")
        self.images, self.teacher, self.alphas = list(images), list(teacher), alphas
        self.processed, self.processed_fraction = processed, float(processed_fraction)
        self.signal = signal
        self.seed, self.epoch = int(seed), 0
        self.normal_fraction = float(normal_fraction)
        self.ev_range = (float(ev_range[0]), float(ev_range[1]))
        h, w = self.images[0].shape[:2]
        if crop is not None and not (isinstance(crop, int) and 32 <= crop <= min(h, w)):
            raise ValueError(f"crop: expected None or an int between 32 and the image side {min(h, w)}, got {crop!r}")
        self.crop = crop

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_processed(self) -> int:
        """How many images have a phone-processed version."""
        return sum(p is not None for p in self.processed)

    @property
    def kinds(self) -> list[str]:
        """``"alpha"`` or ``"teacher"``: where each sample's target comes from."""
        return ["alpha" if (a is not None and self.signal == "alpha+distill") else "teacher" for a in self.alphas]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _view(self, **changes) -> "FinetuneSet":
        kw = dict(signal=self.signal, seed=self.seed, normal_fraction=self.normal_fraction, ev_range=self.ev_range,
                  crop=self.crop, processed=self.processed, processed_fraction=self.processed_fraction)
        kw.update(changes)
        return FinetuneSet(self.images, self.teacher, self.alphas, **kw)

    def with_seed(self, seed: int) -> "FinetuneSet":
        """The same samples and targets, another random stream (one per training seed)."""
        return self._view(seed=seed)

    def with_signal(self, signal: str) -> "FinetuneSet":
        """The same samples with another training signal (no teacher pass needed)."""
        return self._view(signal=signal)

    def with_normal(self, fraction: float) -> "FinetuneSet":
        """The same samples, ``fraction`` of the draws in normal light (0: every draw a low-light one)."""
        return self._view(normal_fraction=fraction)

    def with_processed(self, fraction: float) -> "FinetuneSet":
        """The same samples, ``fraction`` of the low-light draws phone-processed (0: raw frames only)."""
        return self._view(processed_fraction=fraction)

    def __getitem__(self, i: int) -> dict:
        from ..simulate import sample_params, simulate

        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, int(i)]))
        img = self.images[i]
        known = self.alphas[i] is not None and self.signal == "alpha+distill"
        target = self.alphas[i] if known else self.teacher[i]
        version = "raw"
        if rng.random() < self.normal_fraction:
            x, ev, version = img, 0.0, "normal"
        elif (self.processed[i] is not None and self.processed_fraction > 0
              and rng.random() < self.processed_fraction):
            (x, ev), version = self.processed[i], "processed"
            ev = float(ev)
        else:
            ev = float(rng.uniform(*self.ev_range))
            x = simulate(img, sample_params(rng, exposure=float(2.0 ** ev)), rng)
        if rng.random() < 0.5:
            x, target = x[:, ::-1], target[:, ::-1]
        if self.crop is not None:
            h, w = target.shape
            y0, x0 = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
            x, target = x[y0:y0 + self.crop, x0:x0 + self.crop], target[y0:y0 + self.crop, x0:x0 + self.crop]
        return {"image": torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).float().div_(255.0),
                "alpha": torch.from_numpy(np.ascontiguousarray(target))[None],
                "valid": torch.ones(1, *target.shape),
                "meta": {"index": int(i), "kind": "alpha" if known else "teacher", "ev": ev, "input": version}}


def processed_scenes(scenes: list[np.ndarray], seed: int = 0) -> list[tuple[np.ndarray, float]]:
    """One phone-processed night version of each scene crop, ``(uint8 photo, ev)``: sensor and
    processing drawn by :func:`lowlight.simulate.sample_camera_params` (its stream
    ``SeedSequence([seed, 8_888, k])`` for crop ``k``), exposure in :data:`FT_EV_RANGE`."""
    from ..simulate import camera_pipeline, sample_camera_params, sample_params

    out = []
    for k, img in enumerate(scenes):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 8_888, k]))
        ev = float(rng.uniform(*FT_EV_RANGE))
        cam = sample_camera_params(rng, sensor=sample_params(rng, exposure=float(2.0 ** ev)))
        out.append((camera_pipeline(img, cam, rng), ev))
    return out


def build_finetune_set(profile: config.Profile, teacher: torch.nn.Module | None = None,
                       signal: str = "alpha+distill", seed: int = 0, progress: bool = False) -> FinetuneSet:
    """The MODNet fine-tuning set of ``profile``: its LL-Matte portraits (with their true matte) plus
    people-free scene crops, ``teacher``'s matte of every image (computed once, here) and one
    phone-processed low-light version of every image (LL-Matte's stored one; made here for the
    scenes), used in ``profile.finetune.processed_fraction`` of the low-light draws. ``teacher``
    defaults to MODNet as shipped. Use :meth:`FinetuneSet.with_signal` /
    :meth:`~FinetuneSet.with_processed` for other variants rather than building again."""
    from ..data import LLMatteDataset

    p = config.require_profile(profile, where="build_finetune_set")
    ft = p.finetune
    if signal not in SIGNALS:
        raise ValueError(f"signal: expected one of {SIGNALS}, got {signal!r}")
    if teacher is None:
        from ..models import create_model

        teacher = create_model("modnet")
    ds = LLMatteDataset("train", p, mode="low", path=finetune_llmatte(p, progress), seed=seed, low="processed")
    raw = [ds.raw(i, None) for i in range(len(ds))]
    scenes = scene_crops(ft.size, ft.scene_crops, seed=p.seed)
    images = [r["normal"] for r in raw] + scenes
    alphas = [r["alpha"].astype(np.float32) / 255.0 for r in raw] + [None] * len(scenes)
    processed = [(r["low"], float(r["meta"]["ev"])) for r in raw] + processed_scenes(scenes, seed=p.seed)
    return FinetuneSet(images, _teacher_mattes(teacher.eval(), images), alphas, signal=signal, seed=seed,
                       crop=ft.crop, processed=processed, processed_fraction=ft.processed_fraction)


def _cached_teacher(teacher: torch.nn.Module, crops: list[np.ndarray], boxes: list[dict], cache: Path | None,
                    log) -> list[np.ndarray]:
    """The teacher's mattes of ``crops``, read from ``cache`` (an ``.npz``) when it was written for
    the same crops and teacher weights, else computed and written there (atomically)."""
    import hashlib
    import json

    from ..io import atomic_path, weights_digest

    key = hashlib.sha256(json.dumps([weights_digest(teacher), boxes, [c.shape for c in crops]],
                                    default=str).encode()).hexdigest()
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            if str(z["key"]) == key and len(z["mattes"]) == len(crops):
                log(f"teacher mattes: {len(crops)} read from {cache}")
                return [np.ascontiguousarray(m) for m in z["mattes"]]
    mattes = _teacher_mattes(teacher.eval(), crops)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, key=np.array(key), mattes=np.stack(mattes).astype(np.float16))
        mattes = [m.astype(np.float16).astype(np.float32) for m in mattes]   # the same values as a later read
        log(f"teacher mattes: {len(crops)} computed, cached in {cache}")
    return mattes


def build_photo_finetune_set(profile: config.Profile, photos, teacher: torch.nn.Module | None = None,
                             seed: int = 0, per_photo: int | None = None, cache: str | Path | None = None,
                             processed: bool = True, log=print) -> FinetuneSet:
    """A self-distillation set from plain photos (no mattes): ``per_photo`` square crops of each
    training photo of ``photos`` (a :class:`lowlight.data.PhotoFolder`; default
    ``profile.finetune.scene_crops``) at ``profile.finetune.size``, the teacher's daylight matte of
    each crop as its target (cached in ``cache``, e.g. beside the run), and, with ``processed``, one
    phone-processed night version of each crop (:func:`processed_scenes`; without, e.g. for a
    validation set, every low-light draw is a raw frame). The held-out photos are not touched."""
    from ..data import photo_crops

    p = config.require_profile(profile, where="build_photo_finetune_set")
    ft = p.finetune
    if teacher is None:
        from ..models import create_model

        teacher = create_model("modnet")
    crops, boxes = photo_crops(photos.train, ft.size, per_photo or ft.scene_crops, seed=p.seed)
    mattes = _cached_teacher(teacher, crops, boxes, Path(cache) if cache else None, log)
    if not processed:
        return FinetuneSet(crops, mattes, None, signal="distill", seed=seed, crop=ft.crop)
    return FinetuneSet(crops, mattes, None, signal="distill", seed=seed, crop=ft.crop,
                       processed=processed_scenes(crops, seed=p.seed), processed_fraction=ft.processed_fraction)


# --------------------------------------------------------------------------- data per stage
class LLMatteData:
    """The data of CV-UNet's stages (and of any model given a data folder): for each stage,
    :func:`make_datasets` of ``profile`` (``data_path``: a real-data folder instead of LL-Matte)
    in the stage's ``data_mode`` -- normal light for the original, mixed for the three stages.
    Calling it with a :class:`~lowlight.training.stages.StageSpec` gives ``(train, val)``."""

    def __init__(self, profile: config.Profile, seed: int, data_path: str | Path | None = None):
        self.profile = config.require_profile(profile, where="LLMatteData")
        self.seed, self.data_path = seed, data_path

    def __call__(self, spec) -> tuple:
        """``(train, val)`` for the stage ``spec`` (its ``data_mode``)."""
        return make_datasets(self.profile, self.data_path, mode=spec.data_mode, seed=self.seed)


class FinetuneData:
    """The data of MODNet's fine-tune, the same for every stage: the :class:`FinetuneSet` of
    ``profile`` seeded ``seed`` with ``signal`` and ``inputs`` (``"raw+processed"``:
    ``profile.finetune.processed_fraction`` of the low-light draws are phone-processed photos;
    ``"raw"``: sensor frames only), and low-light validation portraits. ``train_set``: a set to
    draw from instead of building one (its images and teacher targets are shared);
    ``normal_fraction``: the share of normal-light draws (``None``: the set's own); ``teacher``: the
    shipped model whose daylight mattes are the distillation targets (the one being fine-tuned); ``val_set``:
    validation samples with true alpha (default: the fine-tuning LL-Matte's validation split; an
    empty sequence: no validation).
    Both are made on first use (:meth:`sets`) and kept."""

    def __init__(self, profile: config.Profile, seed: int, signal: str = "alpha+distill",
                 inputs: str = "raw+processed", train_set: FinetuneSet | None = None, val_set=None,
                 normal_fraction: float | None = None, teacher: str = "modnet"):
        self.profile = config.require_profile(profile, where="FinetuneData")
        if signal not in SIGNALS:
            raise ValueError(f"signal: expected one of {SIGNALS}, got {signal!r}")
        if inputs not in INPUTS:
            raise ValueError(f"inputs: expected one of {INPUTS}, got {inputs!r}")
        self.seed, self.signal, self.inputs = seed, signal, inputs
        self.normal_fraction, self.teacher = normal_fraction, teacher
        self._train, self._val = train_set, val_set
        self._ready = False

    def sets(self) -> tuple:
        """``(train, val)``: the fine-tuning set as drawn for this run, and the validation samples."""
        if not self._ready:
            from ..data import LLMatteDataset

            if self._train is not None:
                base = self._train
            else:
                from ..models import create_model

                base = build_finetune_set(self.profile, teacher=create_model(self.teacher), signal=self.signal,
                                          seed=self.seed)
            fraction = self.profile.finetune.processed_fraction if self.inputs == "raw+processed" else 0.0
            self._train = base.with_seed(self.seed).with_signal(self.signal).with_processed(fraction)
            if self.normal_fraction is not None:
                self._train = self._train.with_normal(self.normal_fraction)
            if self._val is None:
                self._val = LLMatteDataset("val", self.profile, mode="low", path=finetune_llmatte(self.profile))
            self._ready = True
        return self._train, (self._val if self._val is None or len(self._val) else None)

    def __call__(self, spec) -> tuple:
        """``(train, val)``: the same for every stage (see :meth:`sets`)."""
        return self.sets()
