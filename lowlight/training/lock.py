"""One writer per run folder (notebook 06, ``python -m lowlight.training``).

Two training runs writing into the same ``--out`` at once would interleave their checkpoints
and logs. :func:`run_lock` prevents it with a lock file, ``<folder>/.lock``:

* it is created atomically (``O_CREAT | O_EXCL``) and holds its owner as JSON: PID, host,
  the process's start time (Linux: ``/proc/<pid>/stat``, so a recycled PID is not mistaken
  for the owner), the command line and when it was taken;
* a second run into the same folder fails at once with :class:`RunFolderLocked`, naming the
  folder, the PID and the host that hold it;
* a lock whose owner is gone (a run killed with ``kill -9`` or by a power loss) is *stale*: the
  next run reports it and takes it over. A lock taken on another host cannot be checked from
  here and is never taken over (the message says to delete it if that run is gone);
* it is removed when the run ends, by an exception too (``finally``); only the owner removes it.
  While this process creates and fills the file, or removes it, :func:`lock_busy` is true: a signal
  handler that raises (the CLI's SIGTERM) waits until the lock is held, so that a run stopped the
  instant its lock appears does not leave the file behind.

Under ``torchrun`` only rank 0 takes it (rank 0 is the process that writes, see
:meth:`lowlight.training.Trainer.end_epoch`); the other ranks learn from rank 0 whether it got
it, so that all of them stop together when it did not. The lock is re-entrant within a process:
the CLI holds it while it checks the folder, and :func:`lowlight.training.train` inside it
takes it again at no cost.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from .trainer import dist_info

__all__ = ["LOCK_NAME", "RunFolderLocked", "run_lock", "lock_owner", "lock_busy"]

#: the lock file's name inside a run folder
LOCK_NAME = ".lock"
#: a lock file that cannot be parsed and is older than this (seconds) is stale: its writer died
#: between creating and filling it
_UNREADABLE_GRACE_S = 30.0
#: folders this process holds (absolute path -> nesting depth)
_HELD: dict[str, int] = {}
#: > 0 while this process takes or releases a lock (see :func:`lock_busy`)
_BUSY = [0]


def lock_busy() -> bool:
    """Whether this process is between creating its lock file and holding it, or is removing it:
    an exception raised there by a signal handler would leave the file behind, so a handler should
    only record the signal then (:mod:`lowlight.training.cli` does, and raises once the lock is held)."""
    return _BUSY[0] > 0


class RunFolderLocked(FileExistsError):
    """Another live process (``pid`` on ``host``) holds the run folder's lock."""

    def __init__(self, message: str, folder: Path, pid: int | None = None, host: str | None = None):
        super().__init__(message)
        self.folder, self.pid, self.host = Path(folder), pid, host


def _start_ticks(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])     # field 22; the name in (...) may hold spaces


def _running(pid: int, ticks: int | None) -> bool:
    """Whether the process that wrote a lock as ``pid`` (started at ``ticks``) still runs here."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # a process of another user: it exists
        pass
    now = _start_ticks(pid)
    return ticks is None or now is None or now == ticks


def lock_owner(folder: str | os.PathLike) -> dict | None:
    """The owner recorded in ``folder``'s lock (``pid``, ``host``, ...), ``{}`` when the file
    cannot be parsed, or ``None`` when the folder is not locked."""
    path = Path(folder) / LOCK_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        owner = json.loads(text)
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else {}


def _create(path: Path) -> bool:
    """Create the lock file with this process as owner; False if it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    me = {"pid": os.getpid(), "host": socket.gethostname(), "start_ticks": _start_ticks(os.getpid()),
          "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:500]}
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(me, fh)
    return True


def _stale_reason(path: Path, owner: dict) -> str | None:
    """Why the lock at ``path`` (owner ``owner``) is stale, or None when it is not."""
    if not owner:
        age = time.time() - path.stat().st_mtime if path.exists() else _UNREADABLE_GRACE_S
        return f"it is unreadable and {age:.0f} s old" if age >= _UNREADABLE_GRACE_S else None
    if owner.get("host") != socket.gethostname():
        return None
    if not _running(owner["pid"], owner.get("start_ticks")):
        return f"PID {owner['pid']} on {owner['host']} is no longer running"
    return None


def _refusal(folder: Path, path: Path, owner: dict) -> RunFolderLocked:
    if not owner:
        return RunFolderLocked(f"run folder {folder} is locked by {path}, which is being written or unreadable; "
                               "if no run uses this folder, delete that file", folder)
    pid, host = owner["pid"], owner.get("host", "?")
    elsewhere = ("" if host == socket.gethostname() else
                 f" (another machine: this one cannot tell whether it still runs; delete {path} if it does not)")
    return RunFolderLocked(f"run folder {folder} is in use by another training run: PID {pid} on host {host}, "
                           f"since {owner.get('since', '?')} ({owner.get('command', '')!s}){elsewhere}. "
                           f"Wait for it to finish, or choose another output folder (--out)", folder, pid, host)


def _acquire(folder: Path, log: Callable[[str], None]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    for _ in range(3):                        # a takeover can race another run's: try again then
        if _create(path):
            return path
        owner = lock_owner(folder)
        if owner is None:                     # released between the two calls: try again
            continue
        reason = _stale_reason(path, owner)
        if reason is None:
            raise _refusal(folder, path, owner or {})
        log(f"warning: run folder {folder}: taking over the stale lock {path} ({reason}; "
            f"left by a run that was killed)")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    raise _refusal(folder, path, lock_owner(folder) or {})


def _release(path: Path) -> None:
    owner = lock_owner(path.parent)
    if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@contextlib.contextmanager
def _local_lock(folder: Path, log: Callable[[str], None]):
    key = os.path.abspath(folder)
    if key in _HELD:                           # this process holds it already (re-entrant)
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    _BUSY[0] += 1
    try:
        path = _acquire(folder, log)
    except BaseException:
        _BUSY[0] -= 1
        raise
    _HELD[key] = 1
    try:
        _BUSY[0] -= 1                          # held: from here an exception releases it
        yield
    finally:
        _BUSY[0] += 1
        try:
            del _HELD[key]
            _release(path)
        finally:
            _BUSY[0] -= 1


def _agree(failed: bool) -> bool:
    """Rank 0's ``failed``, on every rank."""
    device = torch.device("cuda", torch.cuda.current_device()) if torch.distributed.get_backend() == "nccl" else "cpu"
    flag = torch.tensor([1 if failed else 0], device=device)
    torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, log: Callable[[str], None] = print):
    """Hold ``folder``'s lock for the ``with`` block (see the module docstring); raises
    :class:`RunFolderLocked` when another live run holds it. Under ``torchrun`` every rank must
    enter it: rank 0 takes the lock, the others stop with rank 0 when it could not."""
    folder = Path(folder)
    rank, world = dist_info()
    if world == 1:
        with _local_lock(folder, log):
            yield
        return
    with contextlib.ExitStack() as stack:
        error = None
        if rank == 0:
            try:
                stack.enter_context(_local_lock(folder, log))
            except RunFolderLocked as exc:
                error = exc
        if _agree(error is not None):
            raise error or RunFolderLocked(f"run folder {folder}: rank 0 could not take its lock (another run "
                                           "writes there; rank 0's message says which)", folder)
        yield
