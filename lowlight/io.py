"""Files: atomic writes, image files, checkpoints -- one definition each.

Nothing the course writes can be seen half-written: every file goes to a temporary name in
the same folder and is renamed over its target only once complete (:func:`atomic_path`); a
temporary file left by a killed writer is removed by the next write of the same target.
Checkpoints are read weights-only (no pickled code runs) and a file that is not a course
checkpoint is refused with a :class:`CheckpointError` that names it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "atomic_path", "pid_alive", "remove_stale_temps", "atomic_write_text", "atomic_write_bytes", "atomic_write_json",
           "jsonable", "csv_text", "write_png", "cli_error", "CheckpointError", "save_checkpoint", "load_checkpoint", "weights_digest"]

#: file suffixes read as images (data folders, ``predict``)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: the largest image (width x height) the image readers decode unless told otherwise: 50 megapixels
#: (a 746 kB PNG can declare 16000 x 16000 pixels; decoding and matting it took 7.6 GB)
MAX_PIXELS = 50_000_000


#: a temporary file of :func:`atomic_path`: ``.<target name>.<pid>.<random>.part`` (and the older
#: ``.<target name>.<pid>.tmp``); the pid and the random part are the last two dotted fields
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)(?:\.[a-z0-9_]+\.part|\.tmp)")
#: per folder (scanned once per process): target name -> [(temp file name, writer pid)]
_TEMPS_SEEN: dict[str, dict[str, list[tuple[str, int]]]] = {}


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (True when unsure: never delete then)."""
    if os.name != "posix":          # os.kill(pid, 0) would terminate the process on Windows
        return True
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                 # PermissionError: it exists, owned by someone else
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that writers of ``path`` left behind when they were killed
    (``kill -9``, power loss): ``.<name>.<pid>.*.part`` whose ``pid`` is no longer a running
    process. Files of a live process -- another writer at work -- are never touched. Each
    folder is listed once per process. Returns the files removed."""
    path = Path(path)
    key = os.path.abspath(path.parent)
    seen = _TEMPS_SEEN.get(key)
    if seen is None:
        seen = {}
        try:
            with os.scandir(path.parent) as it:
                for entry in it:
                    m = _TEMP_NAME.fullmatch(entry.name)
                    if m and int(m["pid"]) != os.getpid():
                        seen.setdefault(m["name"], []).append((entry.name, int(m["pid"])))
        except OSError:
            pass
        _TEMPS_SEEN[key] = seen
    removed = []
    for name, pid in seen.pop(path.name, []):
        if not pid_alive(pid):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)
                removed.append(path.parent / name)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int = 0o644):
    """Yield a temporary path beside ``path``; on success it is renamed over ``path`` (with
    permissions ``mode``), on failure removed -- a reader never sees half a file.

    The temporary name carries the writer's pid (``.<name>.<pid>.<random>.part``): a kill that
    leaves one behind is cleaned up by the next write of the same target
    (:func:`remove_stale_temps`), which removes only the files of processes no longer running."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".part")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def jsonable(x):
    """``x`` with NaN/inf floats as ``None``, paths and numpy scalars as plain values, tuples as
    lists, dict keys as strings: what JSON can hold without surprises."""
    import math

    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item") and hasattr(x, "dtype") and getattr(x, "ndim", 1) == 0:   # numpy scalar
        return jsonable(x.item())
    return x


def atomic_write_json(path: str | os.PathLike, obj, **kwargs) -> Path:
    """Write ``obj`` (through :func:`jsonable`) as indented JSON to ``path`` atomically."""
    kwargs.setdefault("indent", 1)
    return atomic_write_text(path, json.dumps(jsonable(obj), **kwargs) + "\n")


def csv_text(rows, keys=None) -> str:
    """Rows (dicts) as CSV text; floats with 6 significant digits; columns ``keys`` (default: all
    keys in order of first appearance)."""
    import csv
    import io as _io

    rows = list(rows)
    keys = list(keys or dict.fromkeys(k for r in rows for k in r))
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in keys})
    return buf.getvalue()


def write_png(path: str | os.PathLike, arr) -> Path:
    """Encode a uint8 grey (HxW), RGB or RGBA array as PNG and write it atomically."""
    import cv2
    import numpy as np

    arr = np.asarray(arr)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"write_png {path}: expected uint8 HxW, HxWx3 or HxWx4, got {arr.dtype} {arr.shape}")
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA if arr.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr)
    if not ok:  # pragma: no cover - uint8 PNG always encodes
        raise OSError(f"{path}: PNG encoding failed")
    return atomic_write_bytes(path, buf.tobytes())


def cli_error(message: str, status: int = 2) -> int:
    """Print ``error: message`` on stderr and return ``status``: how every command line of the course
    refuses an input (2: a bad argument or file; 1: the work itself failed)."""
    import sys

    print(f"error: {message}", file=sys.stderr)
    return status


def writable_dir_problem(path: str | os.PathLike, option: str) -> str | None:
    """Create folder ``path`` if needed and check that a file can be written in it; returns a
    message naming ``option`` when not (a CLI finds it before doing any work), else ``None``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{option} {path}: exists and is not a folder"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return f"{option} {path}: cannot create or write there ({exc.strerror or exc})"
    return None


# --------------------------------------------------------------------------- checkpoints
class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, not a course checkpoint, or of another model."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save(state)`` to a temporary file beside ``path``, then rename."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a course checkpoint weights-only; a clear :class:`CheckpointError` otherwise.

    A course checkpoint is a dict with a ``"model"`` state dict. Files that torch cannot read
    weights-only (a pickle with code in it, a truncated or empty file) are refused: the message
    says the file is not a course checkpoint rather than suggesting to load it unsafely.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path}: the file is empty (0 bytes); not a course checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        first = (str(exc).strip().splitlines() or [""])[0]
        if "weights_only" in first or "Unsupported global" in str(exc):
            reason = "it holds Python objects other than tensors, so it is not a course checkpoint"
        else:
            reason = f"{type(exc).__name__}: {first[:160]}" if first else type(exc).__name__
        raise CheckpointError(f"checkpoint {path}: cannot be read as a weights-only torch checkpoint "
                              f"({reason})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"checkpoint {path}: expected a dict with a 'model' state dict "
                              "(a checkpoint written by `python -m lowlight.training`)")
    return state


def weights_digest(model) -> str:
    """SHA-256 of a model's state dict (names, shapes and bytes), for equality checks."""
    import torch

    m = getattr(model, "module", model)
    h = hashlib.sha256()
    for k, v in sorted(m.state_dict().items()):
        h.update(k.encode())
        t = v.detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()
