"""Run the course's notebooks end to end (``python -m lowlight.reproduce``).

Every ``notebooks/NN_*.ipynb`` (and ``NNx_*.ipynb``: ``01b`` runs after ``01``, before ``02``) is
executed in order with papermill, the ``profile`` parameter injected; executed copies go to
``runs/<profile>/executed/`` (never over the sources) and the figures they save to
``runs/<profile>/executed/figures/``, so a reproduction leaves the committed ``figures/`` and
notebooks as they are. Kernels talk over IPC sockets, not TCP. One progress line per notebook; a
summary (markdown and JSON: notebook, status, seconds) at the end. On a failure the runner names
the notebook, the failing cell and the error, keeps the partly executed copy (or says that none
was written), and exits non-zero.

The summary of a run of the whole course is ``runs/<profile>/reproduce_summary.md``/``.json``.
A partial run (``--only``, or ``--notebooks-dir`` of another folder) writes
``reproduce_summary.only-NN.*`` (``.partial.*`` for another folder) beside its executed
copies instead, so it never replaces the full run's summary.

Provenance: every executed notebook records, in ``metadata.lowlight``, the profile and
:func:`source_digest` -- a SHA-256 of the package's source at the start of the run -- and the
summary records the same digest. ``tests/test_digest.py`` checks that the committed notebooks
carry the digest of the committed code.

``--inplace`` is the maintainers' mode: it executes the source notebooks themselves on
a profile (set through ``$LOWLIGHT_PROFILE``, no injected cell), writes ``figures/`` and records the
digest, which is how the committed outputs are produced
(``python -m lowlight.reproduce --profile quick --inplace``).

Widget state: both modes store, in ``metadata.widgets``, the state of the ipywidgets an executed
notebook displays (nbclient's ``store_widget_state``, trimmed by
:func:`lowlight.widget_state.keep_displayed_widgets`), so a static view -- nbviewer, exported HTML --
draws notebook 01's sliders instead of the text ``interactive(children=(FloatSlider(...``.

Final step: once every notebook has run, the explorer figure of notebook 01 (``01_explorer_static.png``)
is rendered again (:mod:`lowlight.final_steps`) beside the notebooks' other figures, so it shows the
fine-tuned MODNet that notebook 06 trained after notebook 01 had run.

Two traps are handled here (both measured on a 2-core CPU machine):

* a kernel-channel wait can stall on a cell that displays ipywidgets (nbclient issue
  312). :func:`short_poll_channels` makes every wait on a kernel channel a series of
  waits of at most 0.25 s, which removed the stall; every cell also runs under a
  timeout, so a stall can never hang the run.
* a widget callback's exception never reaches papermill; the tests exercise callbacks
  directly instead.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, asdict
from pathlib import Path
from queue import Empty

from . import config
from .io import atomic_path, atomic_write_text, writable_dir_problem
from .final_steps import FinalStep, run_final_steps, summary_lines
from .widget_state import keep_displayed_widgets

POLL_SLICE_S = 0.25
#: the command that re-executes the committed notebooks (quoted by errors and tests)
INPLACE_COMMAND = "python -m lowlight.reproduce --profile quick --inplace"


def source_digest(package_dir: str | Path | None = None) -> str:
    """SHA-256 of the package's source: every ``lowlight/**/*.py`` file (``__pycache__``
    ignored), sorted by its path relative to the package's parent, hashing each relative
    path (POSIX form) and the file's bytes, each preceded by its length. Editing any
    source file -- code, comment or docstring -- changes it; nothing else does."""
    pkg = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parent
    files = sorted((p.relative_to(pkg.parent).as_posix(), p) for p in pkg.rglob("*.py")
                   if "__pycache__" not in p.relative_to(pkg).parts and p.is_file())
    h = hashlib.sha256()
    for rel, path in files:
        name, data = rel.encode("utf-8"), path.read_bytes()
        h.update(len(name).to_bytes(8, "little") + name)
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def provenance(profile: str, digest: str | None = None) -> dict:
    """What :func:`run_one` records in ``metadata.lowlight`` of each executed notebook."""
    from . import __version__

    return {"source_digest": digest or source_digest(), "profile": profile, "lowlight_version": __version__,
            "executed_by": "python -m lowlight.reproduce"}


@contextlib.contextmanager
def short_poll_channels(slice_s: float = POLL_SLICE_S):
    """Patch ``jupyter_client``'s async channel so each wait lasts at most ``slice_s``.

    The caller's overall timeout is still honoured (``None`` = wait forever, in slices).
    The original method is restored on exit.
    """
    from jupyter_client.channels import AsyncZMQSocketChannel

    original = AsyncZMQSocketChannel.get_msg

    async def get_msg_in_slices(self, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            wait = slice_s if remaining is None else max(0.0, min(slice_s, remaining))
            try:
                return await original(self, timeout=wait)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    AsyncZMQSocketChannel.get_msg = get_msg_in_slices
    try:
        yield
    finally:
        AsyncZMQSocketChannel.get_msg = original


def kernel_manager_class():
    """The kernel manager the runner starts kernels with: IPC transport (Unix sockets in a private
    temporary folder) instead of TCP on localhost, so no port is opened and the kernel does not warn
    that it is "running over TCP without encryption" for every notebook."""
    import shutil
    import tempfile
    import weakref

    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            folder = None
            if "ip" not in kwargs:
                folder = tempfile.mkdtemp(prefix="lowlight-kernel-")
                kwargs["ip"] = os.path.join(folder, "kernel")
            super().__init__(**kwargs)
            if folder is not None:       # the sockets' folder goes with the manager (or at exit)
                weakref.finalize(self, shutil.rmtree, folder, True)

    return IPCKernelManager


#: a notebook's number: two digits, and a letter for a notebook that follows another (``01b``)
NUMBER = re.compile(r"(\d\d[a-z]?)_")


def notebook_number(path: Path) -> str:
    """``01`` of ``01_slug.ipynb``, ``01b`` of ``01b_slug.ipynb``."""
    return NUMBER.match(path.name).group(1)


def discover(notebooks_dir: Path | None = None) -> list[Path]:
    """The course notebooks, ``NN_slug.ipynb`` and ``NNx_slug.ipynb``, in order (``01``, ``01b``, ``02``)."""
    nb_dir = Path(notebooks_dir or config.NOTEBOOKS_DIR)
    return sorted(p for p in nb_dir.glob("[0-9][0-9]*_*.ipynb") if p.is_file() and NUMBER.match(p.name))


def _as_number(token: str) -> str | None:
    """``"1"`` -> ``"01"``, ``"1B"`` -> ``"01b"``; ``None`` for a token that is not a notebook number."""
    m = re.fullmatch(r"(\d{1,2})([a-z]?)", token.strip().lower())
    return m and m.group(1).zfill(2) + m.group(2)


def select(notebooks: list[Path], only: str | None) -> list[Path]:
    """Filter by a comma-separated list of numbers (``"01,01b,03"``; ``None`` = all).

    A value with no number in it (``""``, ``","``), a token that is not a number, or a number
    without a notebook raises ``ValueError`` naming ``--only`` and listing the valid names.
    """
    if only is None:
        return notebooks
    by_num = {notebook_number(p): p for p in notebooks}
    have = ", ".join(f"{n} ({p.name})" for n, p in sorted(by_num.items())) or "none"
    tokens = [w.strip() for w in only.split(",") if w.strip()]
    if not tokens:
        raise ValueError(f"--only {only!r}: empty; expected comma-separated notebook numbers such as 01,03; "
                         f"valid: {have}")
    bad = [w for w in tokens if not _as_number(w)]
    if bad:
        raise ValueError(f"--only {only!r}: {', '.join(map(repr, bad))} is not a notebook number; expected "
                         f"comma-separated numbers such as 01,03; valid: {have}")
    wanted = [_as_number(w) for w in tokens]
    missing = [w for w in wanted if w not in by_num]
    if missing:
        raise ValueError(f"--only {only!r}: no notebook numbered {', '.join(missing)}; valid: {have}")
    return [by_num[w] for w in sorted(set(wanted))]


@dataclass
class Result:
    notebook: str
    status: str  # "ok", "failed", "skipped"
    seconds: float
    output: str
    error: str | None = None
    cell: str | None = None  # which cell failed, in words
    written: bool = False    # whether ``output`` was written by this run (a partly executed copy on failure)


def _describe_failure(exc: BaseException) -> tuple[str, int | None]:
    cell = getattr(exc, "cell_index", None)
    source = (getattr(exc, "source", None) or "").strip().splitlines()
    where = f"{cell} of the executed copy" if cell is not None else None
    if where and source:
        where += f" ({source[0][:60]!r})"
    ename = getattr(exc, "ename", None) or type(exc).__name__
    evalue = getattr(exc, "evalue", None) or str(exc)
    evalue = evalue.strip().splitlines()[-1] if evalue.strip() else ""
    return f"{ename}: {evalue}", where


def _stamp(book, meta: dict, status: str) -> None:
    book.metadata["lowlight"] = dict(meta, status=status)


def _write_notebook(book, path: Path) -> None:
    import nbformat

    with atomic_path(path) as tmp:
        nbformat.write(book, tmp)


def run_one(nb: Path, out: Path, profile: str, timeout: int, inplace: bool = False,
            meta: dict | None = None) -> Result:
    """Execute one notebook; never raises for a notebook error (see :class:`Result`).

    The executed notebook (also a partly executed one) records ``meta`` -- by default
    :func:`provenance` -- plus its ``status`` in ``metadata.lowlight``.
    """
    import nbformat

    meta = provenance(profile) if meta is None else meta
    t0 = time.perf_counter()
    old_env = {k: os.environ.get(k) for k in (config.ENV_PROFILE, config.ENV_FIGURES)}
    os.environ[config.ENV_PROFILE] = profile
    if inplace:                       # the committed figures/ (quick) or runs/<profile>/figures/
        os.environ.pop(config.ENV_FIGURES, None)
    else:                             # beside the executed notebooks: a reproduction leaves the clone clean
        os.environ[config.ENV_FIGURES] = str(out.parent / "figures")
    written = False
    if not inplace and out.exists():
        out.unlink()   # a stale copy of an earlier run must not pass for this run's output
    try:
        with short_poll_channels():
            if inplace:
                from nbclient import NotebookClient

                book = nbformat.read(str(nb), as_version=4)
                book.metadata.pop("widgets", None)     # an earlier run's state names models that are gone
                client = NotebookClient(book, timeout=timeout, kernel_name="python3",
                                        kernel_manager_class=kernel_manager_class(), store_widget_state=True,
                                        resources={"metadata": {"path": str(nb.parent)}})
                status = "failed"
                try:
                    client.execute()
                    status = "ok"
                finally:
                    client.set_widgets_metadata()      # also after a failure (execute() sets it on success)
                    keep_displayed_widgets(book)
                    _stamp(book, meta, status)
                    _write_notebook(book, out)
                    written = True
            else:
                import papermill as pm

                try:
                    pm.execute_notebook(
                        str(nb), str(out), parameters={"profile": profile}, kernel_name="python3",
                        cwd=str(nb.parent), progress_bar=False, execution_timeout=timeout,
                        kernel_manager_class=kernel_manager_class(), store_widget_state=True,
                    )
                    status = "ok"
                except BaseException:
                    status = "failed"
                    raise
                finally:
                    if out.exists():
                        written = True
                        with contextlib.suppress(Exception):   # a stamp must not hide the real error
                            book = nbformat.read(str(out), as_version=4)
                            keep_displayed_widgets(book)   # also drops the source's state of an earlier run
                            _stamp(book, meta, status)
                            _write_notebook(book, out)
        return Result(nb.name, "ok", time.perf_counter() - t0, str(out), written=written)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reported result
        msg, cell = _describe_failure(exc)
        return Result(nb.name, "failed", time.perf_counter() - t0, str(out), msg, cell, written=written)
    finally:
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _failure_lines(r: Result, inplace: bool) -> str:
    where = f"notebook {r.notebook}, cell {r.cell}" if r.cell else f"notebook {r.notebook}"
    if r.written:
        kept = (f"partly executed notebook written in place: {r.output}" if inplace
                else f"partly executed copy kept at {r.output}")
    else:
        kept = ("the source notebook was left unchanged (it was never executed)" if inplace
                else "no executed copy was written (the notebook could not be read or started)")
    return f"    {where}: {r.error}\n    {kept}"


def summary_paths(run_root: Path, out_dir: Path, partial: bool, only: str | None) -> tuple[Path, Path]:
    """``(json, md)`` paths of the summary: the run root for the whole course, else beside the
    executed copies under a name that says which notebooks ran (never the full run's name)."""
    if not partial:
        return run_root / "reproduce_summary.json", run_root / "reproduce_summary.md"
    nums = sorted({_as_number(w) or w.strip() for w in (only or "").split(",") if w.strip()})
    stem = f"reproduce_summary.only-{'-'.join(nums)}" if nums else "reproduce_summary.partial"
    return out_dir / f"{stem}.json", out_dir / f"{stem}.md"


def summary_markdown(results: list[Result], profile: str, total: float, digest: str | None = None,
                     partial: bool = False, final: list[FinalStep] = ()) -> str:
    title = f"# Reproduction summary — profile `{profile}`" + (" (partial run)" if partial else "")
    lines = [title, "", "| notebook | status | seconds |", "|---|---|---:|"]
    for r in results:
        status = r.status if r.status != "failed" else \
            f"**failed**{f' (cell {r.cell})' if r.cell else ''}: {r.error}"
        lines.append(f"| {r.notebook} | {status} | {r.seconds:.1f} |")
    if final:
        lines += [""] + summary_lines(list(final))
    lines += ["", f"Total: {total:.1f} s on {platform.node() or 'this machine'} "
              f"({os.cpu_count()} CPU cores, Python {platform.python_version()})."]
    if digest:
        lines.append(f"Source digest (SHA-256 of `lowlight/**/*.py`): `{digest}`.")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m lowlight.reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=None, help=f"one of {', '.join(config.PROFILES)} (default: $LOWLIGHT_PROFILE or quick)")
    ap.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 01,01b,03")
    ap.add_argument("--output-dir", default=None, help="where executed copies go (default runs/<profile>/executed)")
    ap.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds (default 600; 3600 on full)")
    ap.add_argument("--keep-going", action="store_true", help="run later notebooks after a failure")
    ap.add_argument("--inplace", action="store_true",
                    help="maintainers: execute the source notebooks themselves (how the committed outputs, "
                         "with their source digest, are produced)")
    ap.add_argument("--notebooks-dir", default=None, help="run the NN_*.ipynb of another folder (default: notebooks/)")
    return ap


def _run_notebooks(notebooks: list[Path], args, out_dir: Path, profile: str, timeout: int,
                   meta: dict) -> list[Result]:
    """Run ``notebooks`` in order with one progress line each; after a failure the rest are skipped
    unless ``--keep-going``."""
    results: list[Result] = []
    failed = False
    for i, nb in enumerate(notebooks, 1):
        if failed and not args.keep_going:
            results.append(Result(nb.name, "skipped", 0.0, ""))
            print(f"[{i}/{len(notebooks)}] {nb.name:<40} skipped (an earlier notebook failed)", flush=True)
            continue
        out = nb if args.inplace else out_dir / nb.name
        print(f"[{i}/{len(notebooks)}] {nb.name:<40} ...", end="", flush=True)
        r = run_one(nb, out, profile, timeout, inplace=args.inplace, meta=meta)
        results.append(r)
        if r.status == "ok":
            print(f" ok      {r.seconds:7.1f} s", flush=True)
        else:
            failed = True
            print(f" FAILED  {r.seconds:7.1f} s\n{_failure_lines(r, args.inplace)}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)

    try:
        prof = config.get_profile(args.profile)          # resolved once; the notebooks get its name
    except ValueError as exc:
        ap.error(str(exc))
    if args.inplace and args.output_dir:
        ap.error("--inplace writes the source notebooks; it cannot be combined with --output-dir")
    if args.timeout is not None and args.timeout <= 0:
        ap.error(f"--timeout {args.timeout}: expected a positive number of seconds per cell")
    timeout = args.timeout or (3600 if prof.name == "full" else 600)
    nb_dir = Path(args.notebooks_dir) if args.notebooks_dir else config.NOTEBOOKS_DIR
    if not nb_dir.is_dir():
        ap.error(f"--notebooks-dir {nb_dir}: not a folder" if args.notebooks_dir
                 else f"the course's notebooks folder {nb_dir} is missing")
    every = discover(nb_dir)
    if not every:
        print(f"error: no notebooks (NN_*.ipynb) found in {nb_dir}", file=sys.stderr)
        return 2
    try:
        notebooks = select(every, args.only)
    except ValueError as exc:
        ap.error(str(exc))
    default_dir = nb_dir.resolve() == config.NOTEBOOKS_DIR.resolve()
    partial = not default_dir or len(notebooks) < len(every)
    run_root = config.run_dir(prof)
    out_dir = Path(args.output_dir) if args.output_dir else run_root / "executed"
    problem = writable_dir_problem(out_dir, "--output-dir" if args.output_dir else "the executed copies' folder")
    if not problem and not partial:
        problem = writable_dir_problem(run_root, "the run folder (it holds the summary)")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    digest = source_digest()
    meta = provenance(prof.name, digest)

    print(f"reproducing {len(notebooks)} notebook(s) on profile '{prof.name}' -> "
          f"{'the sources (in place)' if args.inplace else out_dir}", flush=True)
    t_all = time.perf_counter()
    results = _run_notebooks(notebooks, args, out_dir, prof.name, timeout, meta)
    # where run_one sent the notebooks' figures: the profile's own folder in place, else beside the copies
    final = run_final_steps({r.notebook for r in results if r.status == "ok"}, prof.name,
                            None if args.inplace else out_dir / "figures", timeout)
    failed = any(r.status == "failed" for r in [*results, *final])
    total = time.perf_counter() - t_all
    changed = source_digest() != digest
    if changed:
        print("warning: the package's source changed during this run; the notebooks record the digest of "
              "the start, so re-run once the code is settled", file=sys.stderr)
    payload = {"profile": prof.name, "total_seconds": round(total, 2),
               "python": platform.python_version(), "cpu_count": os.cpu_count(),
               "source_digest": digest, "source_changed_during_run": changed,
               "partial": partial, "only": args.only, "notebooks_dir": str(nb_dir),
               "executed_copies": "in place" if args.inplace else str(out_dir),
               "notebooks": [{k: (round(v, 2) if k == "seconds" else v) for k, v in asdict(r).items()} for r in results],
               "final_steps": [{k: (round(v, 2) if k == "seconds" else v) for k, v in asdict(f).items()} for f in final]}
    json_path, md_path = summary_paths(run_root, out_dir, partial, args.only)
    atomic_write_text(json_path, json.dumps(payload, indent=2) + "\n")
    md = summary_markdown(results, prof.name, total, digest, partial, final)
    atomic_write_text(md_path, md)
    print("\n" + md)
    print(f"summary: {md_path} and .json" + (" (a partial run: the full run's summary "
                                              f"{run_root / 'reproduce_summary.md'} is left as it was)" if partial else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
