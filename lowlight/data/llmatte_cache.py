"""LL-Matte on disk: building the cache under ``data/llmatte/``, its manifest, reading and
verifying stored samples, and the fine-tuning variant (notebooks 01b and 06). The layout and the
cache key are described in :mod:`lowlight.data.llmatte`, which makes the samples."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .. import config
from ..io import atomic_write_text, pid_alive
from .folders import DataFolderError, read_alpha, read_image
from .llmatte import KINDS, PROCESSED, SPLITS, LLMatteSpec, make_sample
from .photos import photo_licences

__all__ = ["FORMAT", "build_llmatte", "llmatte_dir", "load_manifest", "verify_llmatte", "read_sample",
           "finetune_llmatte"]

FORMAT = "llmatte/1"
#: the temporary folder a build writes into: ``.tmp-<profile>-<key>-<pid of the builder>``
_TMP_NAME = re.compile(r"\.tmp-(?P<name>.+)-(?P<key>[0-9a-f]{12})-(?P<pid>[0-9]+)")
#: folder -> its files' (size, mtime) when this process last hashed them (hashed once per process)
_HASHED: dict[str, tuple] = {}
_SOURCE_FILES = ("_draw.py", "backgrounds.py", "compositing.py", "foregrounds.py", "llmatte.py", "llmatte_cache.py",
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
    for path in sorted((here.parent / "simulate").glob("*.py")) + [here.parent / "color.py",
                                                                      here.parent / "filters.py"]:
        h.update(path.name.encode())
        h.update(_code_fingerprint(path))
    return h.hexdigest()


def _cache_key(spec: LLMatteSpec) -> str:
    blob = json.dumps({"format": FORMAT, "spec": spec.to_dict(), "source": _source_hash()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def llmatte_dir(profile: config.Profile, root: str | Path | None = None, **changes) -> Path:
    """Where the data of ``profile`` (a :class:`lowlight.config.Profile`, plus ``changes`` to its
    :class:`LLMatteSpec`) lives: ``<root>/<profile>-<key>`` with ``root`` defaulting to ``data/llmatte``."""
    spec = LLMatteSpec.from_profile(profile, **changes)
    return Path(root or config.DATA_DIR / "llmatte") / f"{profile.name}-{_cache_key(spec)}"


def _png_bytes(img: np.ndarray) -> bytes:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - cv2 always encodes uint8 PNG
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _write_sample(out: Path, sample: dict) -> dict[str, tuple[str, int]]:
    """Write the PNGs of ``sample``; returns ``{kind: (SHA-256, size in bytes)}``."""
    sid = sample["meta"]["id"]
    split = sample["meta"]["split"]
    written = {}
    for kind in KINDS + ((PROCESSED,) if PROCESSED in sample else ()):
        data = _png_bytes(sample[kind])
        (out / split / kind / f"{sid}.png").write_bytes(data)
        written[kind] = (hashlib.sha256(data).hexdigest(), len(data))
    return written


def _generate_one(args):
    index, split, spec = args
    s = make_sample(index, split, spec.size(split), spec.seed, spec.lowlight,
                    family_weights=dict(spec.family_weights), trimap_width=spec.trimap_width,
                    backlit_clipped=spec.backlit_clipped, processed=spec.processed)
    return s


def _is_complete(path: Path) -> bool:
    return _cache_problem(path, hashes=False) is None


def build_llmatte(profile: config.Profile, root: str | Path | None = None, force: bool = False,
                  progress: bool = True, verbose: bool = True, workers: int | None = None,
                  clean_stale: bool = False, **changes) -> Path:
    """Generate (or find cached) LL-Matte data for ``profile`` (a :class:`lowlight.config.Profile`);
    returns its folder.

    The folder name carries a hash of the parameters and of the generator's source, so a
    finished folder is reused (once checked, see below) and anything else is regenerated.  Generation writes
    into a temporary folder that is renamed into place when complete (a crash or a
    concurrent run never leaves half a data set behind), shows a tqdm progress bar and
    prints the speed.  ``workers > 1`` generates in that many processes (same bytes);
    ``None`` takes the profile's ``data.num_workers`` (0 on ``smoke``/``quick``, 8 on ``full``),
    at least 1 and capped by the CPU count.
    ``clean_stale=True`` removes folders that an older version of this generator made for the
    *same* spec (same profile and parameters, another source hash); other variants and any
    folder the course did not generate are never touched.  ``changes`` go
    to :class:`LLMatteSpec` (e.g. ``lowlight="article"``, ``n_test=16``).  Notebook 01b.

    A cached folder is checked before it is used: every file the manifest lists must be there
    with its recorded size, and its SHA-256 must match (hashed once per process while the files'
    sizes and modification times stay the same; 0.04 s for the ``quick`` profile's 1984 files).
    A damaged folder raises a :class:`lowlight.data.DataFolderError` that names the file;
    ``force=True`` regenerates it.  Temporary folders left by a killed build (their process no
    longer runs) are removed when the next build starts.
    """
    spec = LLMatteSpec.from_profile(profile, **changes)
    name = profile.name
    if workers is None:
        workers = max(1, min(profile.data.num_workers, os.cpu_count() or 1))
    base = Path(root or config.DATA_DIR / "llmatte")
    key = _cache_key(spec)
    path = base / f"{name}-{key}"
    _remove_dead_temps(base, verbose)
    if path.is_dir() and not force:
        problem = _cache_problem(path)
        if problem:
            raise DataFolderError(f"{problem}. The cached LL-Matte data in {path} no longer matches what was "
                                  f"built, so it is not used: {_REMEDY}")
        if verbose:
            print(f"LL-Matte ({name}): using cached {config.display_path(path)}")
        return path
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{name}-{key}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    for split in SPLITS:
        for kind in spec.kinds:
            (tmp / split / kind).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        splits, sizes = _generate_into(tmp, spec, workers, progress, f"LL-Matte {name}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    _write_manifest(tmp, spec, name, key, (splits, sizes), seconds, workers)
    _move_into_place(tmp, path, force)
    if verbose:
        n = sum(spec.count(s) for s in SPLITS)
        print(f"LL-Matte ({name}): generated {n} samples "
              f"(train {spec.n_train} @ {spec.image_size}px, val {spec.n_val} + test {spec.n_test} "
              f"@ {spec.eval_size}px) in {seconds:.1f} s = {n / max(seconds, 1e-9):.1f} samples/s -> {config.display_path(path)}")
    if clean_stale:
        _remove_stale(base, name, path, spec)
    return path


def _generate_into(tmp: Path, spec: LLMatteSpec, workers: int, progress: bool,
                   desc: str) -> tuple[dict[str, list], dict[str, int]]:
    """Generate every sample of ``spec`` into ``tmp`` (in ``workers`` processes when more than one);
    returns the manifest's per-split lists (each sample's meta and file hashes) and the size in
    bytes of every file (by its path relative to the folder)."""
    from tqdm.auto import tqdm

    jobs = [(i, split, spec) for split in SPLITS for i in range(spec.count(split))]
    splits: dict[str, list] = {s: [] for s in SPLITS}
    sizes: dict[str, int] = {}
    with tqdm(total=len(jobs), desc=desc, unit="img", disable=not progress, file=sys.stderr,
              mininterval=0.5) as bar:
        def store(s: dict) -> None:
            written = _write_sample(tmp, s)
            split, sid = s["meta"]["split"], s["meta"]["id"]
            splits[split].append({**s["meta"], "files": {kind: digest for kind, (digest, _) in written.items()}})
            sizes.update({f"{split}/{kind}/{sid}.png": n for kind, (_, n) in written.items()})
            bar.update(1)

        if workers > 1 and len(jobs) > 1:
            import multiprocessing as mp

            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            with ctx.Pool(workers) as pool:
                for s in pool.imap(_generate_one, jobs, chunksize=8):
                    store(s)
        else:
            for job in jobs:
                store(_generate_one(job))
    return splits, sizes


def _write_manifest(tmp: Path, spec: LLMatteSpec, name: str, key: str, samples: tuple[dict, dict],
                    seconds: float, workers: int) -> None:
    """``manifest.json``: the spec, the source hash, counts, sizes, timing, licences, the samples
    (``splits``: metadata and the SHA-256 of each file) and ``file_bytes``, each file's size by its
    path relative to the folder (checked, with the hashes, whenever the cache is reused)."""
    splits, file_bytes = samples
    n = sum(spec.count(s) for s in SPLITS)
    manifest = {
        "format": FORMAT, "profile": name, "key": key, "seed": spec.seed, "spec": spec.to_dict(),
        "source_hash": _source_hash(), "n": {s: spec.count(s) for s in SPLITS},
        "sizes": {s: spec.size(s) for s in SPLITS},
        "generation": {"seconds": round(seconds, 3), "samples_per_s": round(n / max(seconds, 1e-9), 2),
                       "workers": workers, "created": time.strftime("%Y-%m-%dT%H:%M:%S")},
        "licences": {"generated data": "CC0 (procedural, this course)", **photo_licences()},
        "splits": splits, "file_bytes": file_bytes,
    }
    atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))


def _move_into_place(tmp: Path, path: Path, force: bool) -> None:
    """Rename the finished ``tmp`` folder to ``path``; a concurrent run that finished the same data
    first keeps its folder."""
    if path.exists() and (force or not _is_complete(path)):
        shutil.rmtree(path, ignore_errors=True)
    try:
        os.replace(tmp, path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _is_complete(path):
            raise


def _remove_stale(base: Path, name: str, path: Path, spec: LLMatteSpec) -> None:
    """Remove the folders an older generator made for the same profile and spec (see
    :func:`build_llmatte`); folders without a readable manifest are never touched."""
    for other in base.glob(f"{name}-*"):
        if other == path or not other.is_dir():
            continue
        try:
            m = json.loads((other / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if (m.get("format") == FORMAT and m.get("profile") == name and m.get("spec") == spec.to_dict()
                and m.get("source_hash") != _source_hash()):
            shutil.rmtree(other, ignore_errors=True)


#: what to do with a damaged LL-Matte folder (the end of every such error)
_REMEDY = ("regenerate it with lowlight.data.build_llmatte(<the same profile and arguments>, force=True), "
           "or delete the folder")


def _read_manifest(man: Path) -> tuple[dict | None, str]:
    """``(manifest, "")`` or ``(None, what is wrong with the file)``; never raises."""
    try:
        m = json.loads(man.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as exc:   # ValueError: bad JSON or bad UTF-8
        return None, f"cannot be read as JSON ({type(exc).__name__}: {exc})"
    if not isinstance(m, dict):
        return None, f"not an LL-Matte manifest (a JSON {type(m).__name__}, not an object)"
    if m.get("format") != FORMAT:
        return None, f"format {m.get('format')!r}, expected {FORMAT!r}"
    splits = m.get("splits")
    if not isinstance(splits, dict) or not all(
            isinstance(items, list) and all(isinstance(it, dict) and isinstance(it.get("id"), str)
                                            and isinstance(it.get("files"), dict) for it in items)
            for items in splits.values()):
        return None, "its 'splits' are not lists of samples with an 'id' and their 'files'"
    if not isinstance(m.get("file_bytes", {}), dict):
        return None, "its 'file_bytes' is not an object"
    return m, ""


def load_manifest(path: str | Path) -> dict:
    """The ``manifest.json`` of an LL-Matte folder; an error that names the file and says what to
    do when it is missing (``FileNotFoundError``) or unreadable, corrupt or of another format
    (:class:`lowlight.data.DataFolderError`, a ``ValueError``)."""
    man = Path(path) / "manifest.json"
    if not man.is_file():
        raise FileNotFoundError(f"{man}: no LL-Matte manifest here; build one with lowlight.data.build_llmatte()")
    m, problem = _read_manifest(man)
    if m is None:
        raise DataFolderError(f"{man}: {problem}; this LL-Matte folder cannot be used: {_REMEDY}")
    return m


def _listed_files(path: Path, m: dict):
    """``(file, SHA-256, size or None)`` of every file the manifest ``m`` of ``path`` lists."""
    sizes = m.get("file_bytes", {})
    for split, items in m["splits"].items():
        for it in items:
            for kind, digest in it["files"].items():
                rel = f"{split}/{kind}/{it['id']}.png"
                yield path / rel, digest, sizes.get(rel)


def _sha256(f: Path) -> str:
    return hashlib.sha256(f.read_bytes()).hexdigest()


def _cache_problem(path: Path, hashes: bool = True) -> str | None:
    """``None`` when the folder ``path`` holds what its manifest lists, else the first problem,
    naming the file. Checks presence and sizes, then (``hashes``) the SHA-256 of every file --
    skipped when this process already hashed the files at their current sizes and mtimes."""
    man = path / "manifest.json"
    m, problem = _read_manifest(man)
    if m is None:
        return f"{man}: {problem}"
    listed, stamp = [], [man.stat().st_mtime_ns]
    for f, digest, size in _listed_files(path, m):
        try:
            st = f.stat()
        except OSError:
            return f"{f}: missing (listed in {man})"
        if size is not None and st.st_size != size:
            return f"{f}: {st.st_size} bytes, the manifest records {size} (truncated or replaced)"
        listed.append((f, digest))
        stamp.append((st.st_size, st.st_mtime_ns))
    if not hashes or _HASHED.get(str(path)) == tuple(stamp):
        return None
    for f, digest in listed:
        if _sha256(f) != digest:
            return f"{f}: its SHA-256 differs from the one recorded in {man} (the file changed after it was built)"
    _HASHED[str(path)] = tuple(stamp)
    return None


def verify_llmatte(path: str | Path) -> list[str]:
    """Re-hash every file of an LL-Matte folder; returns the files whose SHA-256 differs
    from the manifest (empty list: intact)."""
    path = Path(path)
    return [str(f) for f, digest, _ in _listed_files(path, load_manifest(path))
            if not f.is_file() or _sha256(f) != digest]


def _remove_dead_temps(base: Path, verbose: bool) -> list[Path]:
    """Remove the temporary folders (``.tmp-<profile>-<key>-<pid>``) in ``base`` that a build
    killed before it finished left behind: those whose process no longer runs. The folders of
    a running build, here or in another process, are never touched. Returns the folders removed."""
    try:
        entries = [e for e in os.scandir(base) if _TMP_NAME.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    removed = []
    for entry in entries:
        if not pid_alive(int(_TMP_NAME.fullmatch(entry.name)["pid"])):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
            if verbose:
                print(f"LL-Matte: removed {config.display_path(entry.path)}, the unfinished build of a process "
                      "that no longer runs")
    return removed


def _read_png(folder: str | Path, file: Path, alpha: bool = False) -> np.ndarray:
    """Read one PNG of the LL-Matte folder ``folder`` (:func:`lowlight.data.read_image`, or
    :func:`lowlight.data.read_alpha` with ``alpha``); a file that cannot be read raises a
    :class:`lowlight.data.DataFolderError` that names it and says how to regenerate the folder."""
    try:
        return read_alpha(file) if alpha else read_image(file)
    except DataFolderError as exc:      # the same type (e.g. ImageTooLargeError), told where and what to do
        exc.args = (f"{exc}; it belongs to the LL-Matte data in {folder}: {_REMEDY} "
                    f"(lowlight.data.verify_llmatte(folder) lists every damaged file)",)
        raise


def read_sample(path: str | Path, split: str, sample_id: str) -> dict:
    """One stored sample as uint8 arrays ``normal``, ``low`` (HxWx3), ``alpha``, ``trimap`` (HxW),
    and ``processed`` (HxWx3) when the folder has that version."""
    base = Path(path) / split
    kinds = KINDS + ((PROCESSED,) if (base / PROCESSED / f"{sample_id}.png").is_file() else ())
    return {kind: _read_png(path, base / kind / f"{sample_id}.png", alpha=kind in ("alpha", "trimap"))
            for kind in kinds}


def finetune_llmatte(profile: config.Profile, progress: bool = False) -> Path:
    """The LL-Matte variant MODNet is fine-tuned and evaluated on: the ``portrait`` family only,
    ``profile.finetune.size`` pixels, ``profile.finetune.portraits`` = (train, val, test) samples,
    each low-light frame also phone-processed (``processed=True``). Built once, cached."""
    ft = config.require_profile(profile, where="finetune_llmatte").finetune
    n_train, n_val, n_test = ft.portraits
    return build_llmatte(profile, progress=progress, verbose=False, image_size=ft.size, eval_size=ft.size,
                         n_train=n_train, n_val=n_val, n_test=n_test, family_weights={"portrait": 1.0},
                         processed=True)
