"""LL-Matte: the course's procedural low-light matting data set (notebook 01).

The article trains on real low-light foregrounds composited on HDR backgrounds and tests
on a private 200-image "LL-Matte-Test".  We build a stand-in offline and deterministically:

1. a procedural foreground with fractional alpha (:mod:`lowlight.data.foregrounds`),
2. a background (:mod:`lowlight.data.backgrounds`) matched to the family's scenario
   (portraits mostly at night, products mostly backlit),
3. the normal-light composite ``I = alpha*F + (1-alpha)*B`` in 8-bit sRGB,
4. its low-light version from the physical simulator, parameters drawn from
   :data:`lowlight.simulate.PARAM_RANGES` (or the article's formula), alpha unchanged,
5. a trimap from alpha for evaluation.

Optionally (``LLMatteSpec.backlit_clipped`` > 0) a share of the ``portrait`` and ``product``
samples is shot against a bright source with the exposure set for it -- the article's
"backlit product" failure: background kind ``backlit_clipped`` (highlights clipped at 255,
sometimes flare/haze) and the subject under-exposed by the same exposure
(:func:`lowlight.data.backgrounds.backlight_foreground`). Which samples are drawn from a
stream of their own, so the other samples stay byte-identical to the default data, and the
default spec (0) leaves the spec's dictionary -- and so the cache key -- as it was.

Every sample has its own random stream ``SeedSequence([seed, split, index])``: a sample
depends only on the seed, its split and its index, never on how many samples come before
it or on the order of generation.  The test split (``n_test`` = 200 on ``full``) is the
stand-in for LL-Matte-Test.

On disk (``data/llmatte/<profile>-<key>/``)::

    manifest.json                       seed, parameters, per-sample metadata, SHA-256 of files
    train/normal/train-00000.png        normal-light composite (RGB)
    train/low/train-00000.png           low-light input (RGB)
    train/alpha/train-00000.png         alpha (8-bit grey)
    train/trimap/train-00000.png        trimap (0 / 128 / 255)
    val/...  test/...

Lossless PNG, one folder per kind: each split is itself an image/alpha folder (layout (b)
of ``data/README.md``), readable by :class:`lowlight.data.ImageAlphaFolder`, viewable in
any image viewer, and scales to ``full`` (2300 samples at 512 px) without holding the set
in memory.  ``<key>`` hashes the generation parameters *and* the generator's code (the
syntax trees of this package's generator modules and of :mod:`lowlight.simulate`, without
comments and docstrings), so the cache is rebuilt exactly when either changes.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from .. import config
from ..io import atomic_write_text
from .backgrounds import backlight_foreground, make_background
from ..color import luminance
from .compositing import composite, fractional_fraction, to_alpha_uint8
from .foregrounds import FAMILIES, make_foreground
from .photos import photo_licences
from .trimap import trimap_from_alpha

__all__ = [
    "SPLITS", "KINDS", "DEFAULT_FAMILY_WEIGHTS", "finetune_llmatte", "BACKGROUNDS_FOR_FAMILY", "LLMatteSpec",
    "sample_rng", "make_sample", "build_llmatte", "llmatte_dir", "load_manifest",
    "verify_llmatte", "read_sample",
]

FORMAT = "llmatte/1"
SPLITS = ("train", "val", "test")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
KINDS = ("normal", "low", "alpha", "trimap")

#: how often each foreground family is drawn
DEFAULT_FAMILY_WEIGHTS: dict[str, float] = {
    "solid": 0.16, "hair": 0.20, "transparent": 0.14, "smoke": 0.10, "portrait": 0.24, "product": 0.16,
}
#: background kinds per family (the article's scenarios: night portrait, backlit product)
BACKGROUNDS_FOR_FAMILY: dict[str, dict[str, float]] = {
    "portrait": {"night": 0.6, "photo": 0.25, "procedural": 0.15},
    "product": {"backlit": 0.5, "night": 0.2, "photo": 0.2, "procedural": 0.1},
    "*": {"photo": 0.45, "procedural": 0.25, "night": 0.2, "backlit": 0.1},
}
LOWLIGHT_METHODS = ("physical", "article")
#: the families ``backlit_clipped`` applies to (the article's backlit product, and backlit portraits)
BACKLIT_FAMILIES = ("portrait", "product")


@dataclass(frozen=True)
class LLMatteSpec:
    """Everything that determines the generated data (hashed into the cache key)."""

    seed: int = 0
    image_size: int = 128          # train split side
    eval_size: int = 128           # val / test side
    n_train: int = 384
    n_val: int = 48
    n_test: int = 64
    lowlight: str = "physical"     # "physical" (lowlight.simulate) or "article" (the §2.1 formula)
    trimap_width: int | None = None
    family_weights: tuple = tuple(sorted(DEFAULT_FAMILY_WEIGHTS.items()))
    backlit_clipped: float = 0.0   # share of portrait/product samples shot against a clipped bright source

    def __post_init__(self):
        for name in ("image_size", "eval_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 32:
                raise ValueError(f"LLMatteSpec.{name}: expected an int >= 32, got {v!r}")
        for name in ("n_train", "n_val", "n_test"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"LLMatteSpec.{name}: expected an int >= 0, got {v!r}")
        if self.lowlight not in LOWLIGHT_METHODS:
            raise ValueError(f"LLMatteSpec.lowlight: expected one of {LOWLIGHT_METHODS}, got {self.lowlight!r}")
        fw = dict(self.family_weights)
        bad = set(fw) - set(FAMILIES)
        if bad or not fw or min(fw.values()) < 0 or sum(fw.values()) <= 0:
            raise ValueError(f"LLMatteSpec.family_weights: expected non-negative weights over {FAMILIES}, got {fw}")
        _check_backlit(self.backlit_clipped, "LLMatteSpec.backlit_clipped")
        object.__setattr__(self, "backlit_clipped", float(self.backlit_clipped))

    @classmethod
    def from_profile(cls, profile=None, **changes) -> "LLMatteSpec":
        """The spec of a profile (``n_train``/``n_val``/``n_test``, ``image_size``,
        ``eval_size``, ``seed``), with optional changes (e.g. ``lowlight="article"``)."""
        p = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
        if "family_weights" in changes and isinstance(changes["family_weights"], dict):
            changes["family_weights"] = tuple(sorted(changes["family_weights"].items()))
        fields_ = dict(seed=p.seed, image_size=p.image_size, eval_size=p.eval_size, n_train=p.n_train,
                       n_val=p.n_val, n_test=p.n_test)
        fields_.update(changes)
        return cls(**fields_)

    def size(self, split: str) -> int:
        return self.image_size if split == "train" else self.eval_size

    def count(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["family_weights"] = dict(self.family_weights)
        if not self.backlit_clipped:   # the default leaves the dictionary (and the cache key) as before
            del d["backlit_clipped"]
        return d


def _check_backlit(v, name: str) -> None:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"{name}: expected a share in [0, 1] of the portrait and product samples, got {v!r}")


# --------------------------------------------------------------------------- one sample
def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one sample: ``SeedSequence([seed, split code, index])``."""
    if split not in _SPLIT_CODE:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_CODE[split], int(index)]))


def _choose(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = sorted(weights)
    p = np.array([weights[k] for k in keys], np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _mean_linear_luma(img: np.ndarray) -> float:
    from ..color import srgb_to_linear

    return float(srgb_to_linear(luminance(img).astype(np.float64)).mean())


def make_sample(index: int, split: str = "train", size: int = 128, seed: int = 0,
                lowlight: str = "physical", family: str | None = None,
                family_weights: dict | None = None, trimap_width: int | None = None,
                backlit_clipped: float = 0.0) -> dict:
    """Generate one LL-Matte sample (notebook 01).

    Returns a dict with uint8 arrays ``normal`` (HxWx3), ``low`` (HxWx3), ``alpha`` (HxW),
    ``trimap`` (HxW), the layers ``fg`` and ``bg``, and ``meta`` (plain values: id, family,
    style, background, simulator parameters, ``ev``, mean luminances, fraction of
    fractional-alpha pixels).  A pure function of its arguments.

    ``backlit_clipped``: the probability that a ``portrait`` or ``product`` sample is shot against
    a clipped bright source (background ``backlit_clipped``, subject under-exposed, ``fg`` returned
    as rendered); its meta then holds ``backlit_subject_ev``, ``backlit_clipped`` (share of
    background pixels at 255) and ``backlit_haze``. The choice comes from a stream of its own,
    ``SeedSequence([seed, split, index, 1])``: every other sample is the same as with 0.
    """
    from ..simulate import article_low_light, sample_params, simulate

    if lowlight not in LOWLIGHT_METHODS:
        raise ValueError(f"lowlight: expected one of {LOWLIGHT_METHODS}, got {lowlight!r}")
    rng = sample_rng(seed, split, index)
    weights = family_weights or DEFAULT_FAMILY_WEIGHTS
    fam = family or _choose(rng, weights)
    fg = make_foreground(fam, size, rng)
    bg_kind = _choose(rng, BACKGROUNDS_FOR_FAMILY.get(fam, BACKGROUNDS_FOR_FAMILY["*"]))
    _check_backlit(backlit_clipped, "backlit_clipped")
    if backlit_clipped > 0 and fam in BACKLIT_FAMILIES:
        pick = np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_CODE[split], int(index), 1]))
        if pick.random() < backlit_clipped:
            bg_kind = "backlit_clipped"
    bg, bg_info = make_background(bg_kind, size, rng)
    fg_img = backlight_foreground(fg.fg, bg_info) if bg_kind == "backlit_clipped" else fg.fg
    a8 = to_alpha_uint8(fg.alpha)
    normal = composite(fg_img, a8, bg)
    if lowlight == "physical":
        params = sample_params(rng)
        low = simulate(normal, params, rng)
        sim = {k: v for k, v in params.to_dict().items() if k not in ("cast", "shot_noise", "adc_bits")}
        sim.update(cast_r=params.cast[0], cast_g=params.cast[1], cast_b=params.cast[2])
    else:
        low = article_low_light(normal, rng=rng)
        sim = {"gamma": 0.4, "scale": 0.3}
    lum_n, lum_l = _mean_linear_luma(normal), _mean_linear_luma(low)
    if "ev" not in sim:   # the article's formula has no exposure: measure it
        sim["ev"] = math.log2(max(lum_l, 1e-6) / max(lum_n, 1e-6))
    meta = {
        "id": f"{split}-{index:05d}", "split": split, "index": int(index), "family": fam,
        "style": fg.style, "background": bg_kind, "bg_source": str(bg_info.get("source", bg_kind)),
        "texture": str(fg.info.get("texture", "procedural")), "lowlight": lowlight,
        **{k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in sim.items()},
        "mean_luma_normal": float(luminance(normal).mean()), "mean_luma_low": float(luminance(low).mean()),
        "frac_fractional": fractional_fraction(a8),
        "frac_fractional_object": fractional_fraction(a8, "object"),
    }
    if bg_kind == "backlit_clipped":
        meta.update(backlit_subject_ev=bg_info["subject_ev"], backlit_clipped=bg_info["clipped"],
                    backlit_haze=bg_info["haze"])
    return {"normal": normal, "low": low, "alpha": a8, "trimap": trimap_from_alpha(a8, trimap_width),
            "fg": fg_img, "bg": bg, "meta": meta}


# --------------------------------------------------------------------------- cache on disk
_SOURCE_FILES = ("_draw.py", "backgrounds.py", "compositing.py", "foregrounds.py", "llmatte.py",
                 "photos.py", "trimap.py")


def _code_fingerprint(path: Path) -> bytes:
    """The code of a module without comments and docstrings (its AST), so that editing prose
    does not invalidate the cache but any change of behaviour does."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def _source_hash() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _SOURCE_FILES:
        h.update(name.encode())
        h.update(_code_fingerprint(here / name))
    for path in sorted((here.parent / "simulate").glob("*.py")) + [here.parent / "color.py"]:
        h.update(path.name.encode())
        h.update(_code_fingerprint(path))
    return h.hexdigest()


def _cache_key(spec: LLMatteSpec) -> str:
    blob = json.dumps({"format": FORMAT, "spec": spec.to_dict(), "source": _source_hash()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def llmatte_dir(profile=None, root: str | Path | None = None, **changes) -> Path:
    """Where the data of ``profile`` (plus ``changes`` to its :class:`LLMatteSpec`) lives:
    ``<root>/<profile>-<key>`` with ``root`` defaulting to ``data/llmatte``."""
    spec = LLMatteSpec.from_profile(profile, **changes)
    name = profile.name if isinstance(profile, config.Profile) else config.profile_name(profile)
    return Path(root or config.DATA_DIR / "llmatte") / f"{name}-{_cache_key(spec)}"


def _png_bytes(img: np.ndarray) -> bytes:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - cv2 always encodes uint8 PNG
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _write_sample(out: Path, sample: dict) -> dict:
    sid = sample["meta"]["id"]
    split = sample["meta"]["split"]
    hashes = {}
    for kind in KINDS:
        data = _png_bytes(sample[kind])
        (out / split / kind / f"{sid}.png").write_bytes(data)
        hashes[kind] = hashlib.sha256(data).hexdigest()
    return hashes


def _generate_one(args):
    index, split, spec = args
    s = make_sample(index, split, spec.size(split), spec.seed, spec.lowlight,
                    family_weights=dict(spec.family_weights), trimap_width=spec.trimap_width,
                    backlit_clipped=spec.backlit_clipped)
    return s


def _is_complete(path: Path) -> bool:
    man = path / "manifest.json"
    if not man.is_file():
        return False
    try:
        m = json.loads(man.read_text())
    except (OSError, ValueError):
        return False
    for split, items in m.get("splits", {}).items():
        for it in items:
            for kind in KINDS:
                if not (path / split / kind / f"{it['id']}.png").is_file():
                    return False
    return True


def build_llmatte(profile=None, root: str | Path | None = None, force: bool = False,
                  progress: bool = True, verbose: bool = True, workers: int | None = None,
                  clean_stale: bool = False, **changes) -> Path:
    """Generate (or find cached) LL-Matte data for ``profile``; returns its folder.

    The folder name carries a hash of the parameters and of the generator's source, so a
    finished folder is reused as is and anything else is regenerated.  Generation writes
    into a temporary folder that is renamed into place when complete (a crash or a
    concurrent run never leaves half a data set behind), shows a tqdm progress bar and
    prints the speed.  ``workers > 1`` generates in that many processes (same bytes);
    ``None`` takes the profile's ``num_workers`` (1 on ``smoke``/``quick``, 8 on ``full``),
    capped by the CPU count.
    ``clean_stale=True`` removes folders that an older version of this generator made for the
    *same* spec (same profile and parameters, another source hash); other variants and any
    folder the course did not generate are never touched.  ``changes`` go
    to :class:`LLMatteSpec` (e.g. ``lowlight="article"``, ``n_test=16``).  Notebook 01.
    """
    spec = LLMatteSpec.from_profile(profile, **changes)
    prof = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    name = prof.name
    if workers is None:
        workers = max(1, min(prof.num_workers, os.cpu_count() or 1))
    base = Path(root or config.DATA_DIR / "llmatte")
    key = _cache_key(spec)
    path = base / f"{name}-{key}"
    if path.is_dir() and not force and _is_complete(path):
        if verbose:
            print(f"LL-Matte ({name}): using cached {path}")
        return path
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{name}-{key}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    for split in SPLITS:
        for kind in KINDS:
            (tmp / split / kind).mkdir(parents=True, exist_ok=True)
    jobs = [(i, split, spec) for split in SPLITS for i in range(spec.count(split))]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc=f"LL-Matte {name}", unit="img", disable=not progress,
               file=sys.stderr, mininterval=0.5)
    manifest_splits: dict[str, list] = {s: [] for s in SPLITS}
    t0 = time.perf_counter()
    try:
        if workers > 1 and len(jobs) > 1:
            import multiprocessing as mp

            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            with ctx.Pool(workers) as pool:
                for s in pool.imap(_generate_one, jobs, chunksize=8):
                    files = _write_sample(tmp, s)
                    manifest_splits[s["meta"]["split"]].append({**s["meta"], "files": files})
                    bar.update(1)
        else:
            for job in jobs:
                s = _generate_one(job)
                files = _write_sample(tmp, s)
                manifest_splits[s["meta"]["split"]].append({**s["meta"], "files": files})
                bar.update(1)
    except BaseException:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    bar.close()
    seconds = time.perf_counter() - t0
    n = len(jobs)
    manifest = {
        "format": FORMAT, "profile": name, "key": key, "seed": spec.seed, "spec": spec.to_dict(),
        "source_hash": _source_hash(), "n": {s: spec.count(s) for s in SPLITS},
        "sizes": {s: spec.size(s) for s in SPLITS},
        "generation": {"seconds": round(seconds, 3), "samples_per_s": round(n / max(seconds, 1e-9), 2),
                       "workers": workers, "created": time.strftime("%Y-%m-%dT%H:%M:%S")},
        "licences": {"generated data": "CC0 (procedural, this course)", **photo_licences()},
        "splits": manifest_splits,
    }
    atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
    if path.exists() and (force or not _is_complete(path)):
        shutil.rmtree(path, ignore_errors=True)
    try:
        os.replace(tmp, path)
    except OSError:
        # a concurrent run finished the same data first: keep its folder
        shutil.rmtree(tmp, ignore_errors=True)
        if not _is_complete(path):
            raise
    if verbose:
        print(f"LL-Matte ({name}): generated {n} samples "
              f"(train {spec.n_train} @ {spec.image_size}px, val {spec.n_val} + test {spec.n_test} "
              f"@ {spec.eval_size}px) in {seconds:.1f} s = {n / max(seconds, 1e-9):.1f} samples/s -> {path}")
    if clean_stale:
        for other in base.glob(f"{name}-*"):
            if other == path or not other.is_dir():
                continue
            try:
                m = json.loads((other / "manifest.json").read_text())
            except (OSError, ValueError):
                continue                                  # not ours: never touched
            if (m.get("format") == FORMAT and m.get("profile") == name and m.get("spec") == spec.to_dict()
                    and m.get("source_hash") != _source_hash()):
                shutil.rmtree(other, ignore_errors=True)
    return path


def load_manifest(path: str | Path) -> dict:
    """The ``manifest.json`` of an LL-Matte folder (clear error when it is not one)."""
    path = Path(path)
    man = path / "manifest.json"
    if not man.is_file():
        raise FileNotFoundError(f"{man}: no LL-Matte manifest here; build one with lowlight.data.build_llmatte()")
    m = json.loads(man.read_text())
    if m.get("format") != FORMAT:
        raise ValueError(f"{man}: format {m.get('format')!r}, expected {FORMAT!r}")
    return m


def verify_llmatte(path: str | Path) -> list[str]:
    """Re-hash every file of an LL-Matte folder; returns the files whose SHA-256 differs
    from the manifest (empty list: intact)."""
    path = Path(path)
    m = load_manifest(path)
    bad = []
    for split, items in m["splits"].items():
        for it in items:
            for kind, digest in it["files"].items():
                f = path / split / kind / f"{it['id']}.png"
                if not f.is_file() or hashlib.sha256(f.read_bytes()).hexdigest() != digest:
                    bad.append(str(f))
    return bad


def read_sample(path: str | Path, split: str, sample_id: str) -> dict:
    """One stored sample as uint8 arrays ``normal``, ``low`` (HxWx3), ``alpha``, ``trimap`` (HxW)."""
    from .folders import read_alpha, read_image

    base = Path(path) / split
    return {
        "normal": read_image(base / "normal" / f"{sample_id}.png"),
        "low": read_image(base / "low" / f"{sample_id}.png"),
        "alpha": read_alpha(base / "alpha" / f"{sample_id}.png"),
        "trimap": read_alpha(base / "trimap" / f"{sample_id}.png"),
    }


def finetune_llmatte(profile: config.Profile | str | None = None, progress: bool = False) -> Path:
    """The LL-Matte variant MODNet is fine-tuned and evaluated on: the ``portrait`` family only,
    ``profile.ft_size`` pixels, ``profile.ft_n`` = (train, val, test) samples. Built once, cached."""
    p = config.as_profile(profile)
    n_train, n_val, n_test = p.ft_n
    return build_llmatte(p, progress=progress, verbose=False, image_size=p.ft_size, eval_size=p.ft_size,
                         n_train=n_train, n_val=n_val, n_test=n_test, family_weights={"portrait": 1.0})
