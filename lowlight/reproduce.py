"""Run the course's notebooks end to end (``python -m lowlight.reproduce``).

Every ``notebooks/NN_*.ipynb`` is executed in order with papermill, the ``profile``
parameter injected; executed copies go to ``runs/<profile>/executed/`` (never over the
sources). One progress line per notebook; a summary (markdown and JSON: notebook,
status, seconds) at the end. On a failure the runner names the notebook, the failing
cell and the error, keeps the partly executed copy, and exits non-zero.

``--inplace`` is the maintainers' mode: it executes the source notebooks themselves on
a profile (set through ``$LOWLIGHT_PROFILE``, no injected cell) and strips widget state,
which is how the committed outputs are produced.

Two traps are handled here (both measured on the course's reference machine):

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
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, asdict
from pathlib import Path
from queue import Empty

from . import config
from .io import atomic_write_text

POLL_SLICE_S = 0.25


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


def discover(notebooks_dir: Path | None = None) -> list[Path]:
    """The course notebooks, ``NN_slug.ipynb``, in order."""
    nb_dir = Path(notebooks_dir or config.NOTEBOOKS_DIR)
    return sorted(p for p in nb_dir.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def select(notebooks: list[Path], only: str | None) -> list[Path]:
    """Filter by a comma-separated list of numbers (``"01,03"``)."""
    if not only:
        return notebooks
    wanted = [w.strip().zfill(2) for w in only.split(",") if w.strip()]
    by_num = {p.name[:2]: p for p in notebooks}
    missing = [w for w in wanted if w not in by_num]
    if missing:
        have = ", ".join(sorted(by_num)) or "none"
        raise SystemExit(f"--only: no notebook numbered {', '.join(missing)}; available: {have}")
    return [by_num[w] for w in sorted(set(wanted))]


@dataclass
class Result:
    notebook: str
    status: str  # "ok", "failed", "skipped"
    seconds: float
    output: str
    error: str | None = None
    cell: str | None = None  # which cell failed, in words


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


def run_one(nb: Path, out: Path, profile: str, timeout: int, inplace: bool = False) -> Result:
    """Execute one notebook; never raises for a notebook error (see :class:`Result`)."""
    t0 = time.perf_counter()
    old_env = os.environ.get(config.ENV_PROFILE)
    os.environ[config.ENV_PROFILE] = profile
    try:
        with short_poll_channels():
            if inplace:
                import nbformat
                from nbclient import NotebookClient

                book = nbformat.read(str(nb), as_version=4)
                client = NotebookClient(book, timeout=timeout, kernel_name="python3",
                                        resources={"metadata": {"path": str(nb.parent)}})
                try:
                    client.execute()
                finally:
                    book.metadata.pop("widgets", None)
                    tmp = out.with_name(f".{out.name}.tmp")
                    nbformat.write(book, str(tmp))
                    os.replace(tmp, out)
            else:
                import papermill as pm

                pm.execute_notebook(
                    str(nb), str(out), parameters={"profile": profile}, kernel_name="python3",
                    cwd=str(nb.parent), progress_bar=False, execution_timeout=timeout,
                )
        return Result(nb.name, "ok", time.perf_counter() - t0, str(out))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reported result
        msg, cell = _describe_failure(exc)
        return Result(nb.name, "failed", time.perf_counter() - t0, str(out), msg, cell)
    finally:
        if old_env is None:
            os.environ.pop(config.ENV_PROFILE, None)
        else:
            os.environ[config.ENV_PROFILE] = old_env


def summary_markdown(results: list[Result], profile: str, total: float) -> str:
    lines = [f"# Reproduction summary — profile `{profile}`", "",
             "| notebook | status | seconds |", "|---|---|---:|"]
    for r in results:
        status = r.status if r.status != "failed" else f"**failed** (cell {r.cell}): {r.error}"
        lines.append(f"| {r.notebook} | {status} | {r.seconds:.1f} |")
    lines += ["", f"Total: {total:.1f} s on {platform.node() or 'this machine'} "
              f"({os.cpu_count()} CPU cores, Python {platform.python_version()})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lowlight.reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=None, help=f"one of {', '.join(config.PROFILES)} (default: $LOWLIGHT_PROFILE or quick)")
    ap.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 01,03")
    ap.add_argument("--output-dir", default=None, help="where executed copies go (default runs/<profile>/executed)")
    ap.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds (default 600; 3600 on full)")
    ap.add_argument("--keep-going", action="store_true", help="run later notebooks after a failure")
    ap.add_argument("--inplace", action="store_true", help="maintainers: execute the source notebooks themselves")
    ap.add_argument("--notebooks-dir", default=None, help="run the NN_*.ipynb of another folder (default: notebooks/)")
    args = ap.parse_args(argv)

    try:
        profile = config.profile_name(args.profile)
    except ValueError as exc:
        ap.error(str(exc))
    timeout = args.timeout or (3600 if profile == "full" else 600)
    notebooks = select(discover(args.notebooks_dir), args.only)
    if not notebooks:
        print(f"no notebooks found in {config.NOTEBOOKS_DIR}", file=sys.stderr)
        return 2
    run_root = config.run_dir(profile)
    out_dir = Path(args.output_dir) if args.output_dir else run_root / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.inplace and args.output_dir:
        ap.error("--inplace writes the source notebooks; it cannot be combined with --output-dir")

    print(f"reproducing {len(notebooks)} notebook(s) on profile '{profile}' -> "
          f"{'the sources (in place)' if args.inplace else out_dir}", flush=True)
    results: list[Result] = []
    t_all = time.perf_counter()
    failed = False
    for i, nb in enumerate(notebooks, 1):
        if failed and not args.keep_going:
            results.append(Result(nb.name, "skipped", 0.0, ""))
            print(f"[{i}/{len(notebooks)}] {nb.name:<40} skipped (an earlier notebook failed)", flush=True)
            continue
        out = nb if args.inplace else out_dir / nb.name
        print(f"[{i}/{len(notebooks)}] {nb.name:<40} ...", end="", flush=True)
        r = run_one(nb, out, profile, timeout, inplace=args.inplace)
        results.append(r)
        if r.status == "ok":
            print(f" ok      {r.seconds:7.1f} s", flush=True)
        else:
            failed = True
            print(f" FAILED  {r.seconds:7.1f} s\n    notebook {nb.name}, cell {r.cell}: {r.error}\n"
                  f"    partly executed copy kept at {r.output}", flush=True)
    total = time.perf_counter() - t_all
    payload = {"profile": profile, "total_seconds": round(total, 2),
               "python": platform.python_version(), "cpu_count": os.cpu_count(),
               "notebooks": [{k: (round(v, 2) if k == "seconds" else v) for k, v in asdict(r).items()} for r in results]}
    atomic_write_text(run_root / "reproduce_summary.json", json.dumps(payload, indent=2) + "\n")
    md = summary_markdown(results, profile, total)
    atomic_write_text(run_root / "reproduce_summary.md", md)
    print("\n" + md)
    print(f"summary: {run_root / 'reproduce_summary.md'} and .json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
