"""The slider explorer of notebook 01, driven in a real browser.

JupyterLab runs on 127.0.0.1 (random port, random token, private config/runtime dirs)
in a temporary copy of ``notebooks/01_low_light_simulation.ipynb``; Debian's Chromium,
driven headless by playwright, runs all cells, moves the exposure slider with the
keyboard and checks that both images of the explorer change: the simulation figure and
the panel with MODNet's matte of the simulated image (the second image of the widget's
output, see :func:`lowlight.viz.widgets.explorer_views`). Screenshots of the explorer
before and after land in ``runs/browser/`` (``failure.png`` when a step fails).

Needs ``/usr/bin/chromium`` and the ``[dev]`` extras: ``scripts/setup.sh --dev``.
Run alone with ``python -m pytest tests/test_browser.py -q``; skip with ``-m "not browser"``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lowlight import config

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = "01_low_light_simulation.ipynb"
SETUP_HINT = "run `scripts/setup.sh --dev` (it apt-installs chromium and pip-installs the dev extras)"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
OUT_DIR = config.RUNS_DIR / "browser"

# generous per-step limits (seconds): other jobs may share the CPU
SERVER_START_S = 90
PAGE_LOAD_S = 120       # JupyterLab's bundle + kernel start
RUN_ALL_S = 240         # the whole notebook on the smoke profile
IMAGE_CHANGE_S = 60
IDLE_HOLD_S = 0.3

# the explorer is an ipywidgets `interactive`: a VBox of controls + an Output widget
EXPLORER = ".jp-OutputArea-output .widget-interact"
EV_HANDLE = f"{EXPLORER} .widget-slider .noUi-handle[role=slider] >> nth=0"
EV_READOUT = f"{EXPLORER} .widget-slider .widget-readout >> nth=0"
# the explorer's Output widget shows two images: [simulation figure, MODNet matte panel]
EXPLORER_IMGS_JS = """() => {
    const box = document.querySelector('.jp-OutputArea-output .widget-interact');
    if (!box) return null;
    const imgs = Array.from(box.querySelectorAll('.widget-output img')).map(i => i.getAttribute('src'));
    return imgs.length === 2 && imgs.every(s => s) ? imgs : null;
}"""


# --------------------------------------------------------------------------- helpers
class StepTimeout(AssertionError):
    """A named step of the browser test did not finish in time."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(url: str, token: str, method: str = "GET", timeout: float = 5.0):
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"},
                                 data=b"" if method == "POST" else None)
    with _NO_PROXY.open(req, timeout=timeout) as resp:
        return resp.status, resp.read()


def _log_tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no server log)"


class Lab:
    """A JupyterLab server in its own process group, in a private temporary home."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = _free_port()
        self.token = secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        nb_dir = self.workdir / "nb"
        nb_dir.mkdir()
        shutil.copy2(config.NOTEBOOKS_DIR / NOTEBOOK, nb_dir / NOTEBOOK)
        env = dict(os.environ)
        for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                         ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")]:
            (self.workdir / sub).mkdir()
            env[var] = str(self.workdir / sub)
        # The kernelspec and the ipywidgets lab extension live in sys.prefix/share/jupyter,
        # which stays on Jupyter's path next to the private JUPYTER_DATA_DIR.
        env.pop("JUPYTER_PATH", None)
        env["LOWLIGHT_PROFILE"] = "smoke"
        env["LOWLIGHT_ROOT"] = str(config.ROOT)
        # no news / update toasts over the page
        notif = self.workdir / "settings" / "@jupyterlab" / "apputils-extension"
        notif.mkdir(parents=True)
        (notif / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={nb_dir}", "--KernelManager.transport=ipc",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(cmd, cwd=nb_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited with code {self.proc.returncode} while starting:\n"
                                     f"{_log_tail(self.log_path)}")
            try:
                status, _ = _http(f"{self.base}/api/status?token={self.token}", self.token, timeout=2)
                if status == 200:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise StepTimeout(f"JupyterLab did not answer /api/status within {SERVER_START_S} s:\n"
                          f"{_log_tail(self.log_path)}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                _http(f"{self.base}/api/shutdown", self.token, method="POST", timeout=10)
            except (urllib.error.URLError, OSError):
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        # the server's session may still hold kernels it spawned: end that group only
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(1.0)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
            pass


# --------------------------------------------------------------------------- context managers
@contextlib.contextmanager
def running_lab():
    """A started :class:`Lab`; always shut down (and its directory removed) on exit."""
    # a short path: kernels talk over unix sockets (ipc), whose paths must stay < 108 bytes
    workdir = Path(tempfile.mkdtemp(prefix="llb-", dir="/tmp" if os.path.isdir("/tmp") else None))
    server = Lab(workdir)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def require_browser():
    """Fail (not skip: CI installs both) when Chromium or playwright is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: {SETUP_HINT}", pytrace=False)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail(f"python playwright is not installed: {SETUP_HINT}", pytrace=False)


@contextlib.contextmanager
def chromium_page(profile_dir: Path):
    """A page of a fresh headless Chromium profile; the browser is closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield ctx.pages[0] if ctx.pages else ctx.new_page()
        finally:
            ctx.close()


# --------------------------------------------------------------------------- page helpers
def _status_bar(pg) -> str:
    return pg.evaluate("() => document.getElementById('jp-main-statusbar')?.innerText || ''")


def _cells_queued(pg) -> bool:
    """Whether a rendered cell still waits to run ("[*]:"). The kernel reports Idle between two
    cells of a Run All, and on a loaded machine the front end can take seconds to send the next
    one, so Idle alone does not mean the notebook has finished."""
    return pg.evaluate("() => Array.from(document.querySelectorAll('.jp-InputPrompt'))"
                       ".some(e => e.innerText.includes('[*]'))")


def _wait_idle(pg, timeout: float, step: str, hold: float = IDLE_HOLD_S) -> None:
    """Wait until the status bar's kernel item says '(ipykernel) | Idle' for ``hold`` seconds
    and no rendered cell is queued."""
    deadline = time.monotonic() + timeout
    since = None
    while time.monotonic() < deadline:
        if "(ipykernel) | Idle" in _status_bar(pg) and not _cells_queued(pg):
            since = since or time.monotonic()
            if time.monotonic() - since >= hold:
                return
        else:
            since = None
        pg.wait_for_timeout(50)
    raise StepTimeout(f"{step}: kernel never reached Idle within {timeout:.0f} s "
                      f"(status bar: {_status_bar(pg)!r}; server log: {OUT_DIR / 'failure_jupyterlab.log'})")


def _wait_for_explorer(pg, timeout: float) -> None:
    """Wait for the explorer's EV slider after Run All; fail early when the notebook has
    finished (kernel idle for a while) without rendering it (e.g. no widget manager)."""
    handle = pg.locator(EV_HANDLE)
    deadline = time.monotonic() + timeout
    seen_busy, idle_since = False, None
    while time.monotonic() < deadline:
        if handle.count():
            return
        status = _status_bar(pg)
        if "(ipykernel) | Busy" in status:
            seen_busy, idle_since = True, None
        elif _cells_queued(pg):
            idle_since = None
        elif seen_busy and "(ipykernel) | Idle" in status:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 5.0:
                texts = pg.locator(".jp-OutputArea-output").all_inner_texts()
                hint = [t[:200] for t in texts if any(w in t.lower() for w in ("interactive", "widget", "error"))]
                raise AssertionError(
                    "the notebook ran but no explorer slider was rendered "
                    f"(is the @jupyter-widgets/jupyterlab-manager extension installed?); outputs: {hint}")
        pg.wait_for_timeout(100)
    raise StepTimeout(f"explorer slider appears: no explorer slider within {timeout:.0f} s "
                      f"(status bar: {_status_bar(pg)!r})")


def _wait_settled(pg, timeout: float, step: str) -> str:
    """Wait until the kernel is idle and the explorer's image stays the same for 0.4 s."""
    deadline = time.monotonic() + timeout
    while True:
        _wait_idle(pg, max(deadline - time.monotonic(), 1.0), step)
        src = _explorer_imgs(pg)
        pg.wait_for_timeout(400)
        if src and _explorer_imgs(pg) == src and "(ipykernel) | Idle" in _status_bar(pg):
            return src
        if time.monotonic() > deadline:
            raise StepTimeout(f"{step}: the explorer's image kept changing for {timeout:.0f} s")


def _readout_text(page, readout, timeout_ms: int = 10_000) -> str:
    """The readout's text, waiting for it to be rendered (it is briefly empty while the widget
    view re-renders on a loaded machine)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        text = readout.inner_text().strip()
        if text or time.monotonic() > deadline:
            return text
        page.wait_for_timeout(100)


def _number(text: str) -> float:
    """A slider readout as a float (ipywidgets prints a typographic minus sign)."""
    return float(text.replace("\u2212", "-"))


def _explorer_imgs(pg) -> list[str] | None:
    """``[simulation src, matte src]``, or None while the output is (re)rendering."""
    return pg.evaluate(EXPLORER_IMGS_JS)


# --------------------------------------------------------------------------- the test
def test_exposure_slider_updates_the_figure_and_the_matte(tmp_path):
    require_browser()
    with running_lab() as lab, chromium_page(tmp_path / "chromium-profile") as page:
        _drive_explorer(lab, page)


def _drive_explorer(lab: Lab, page) -> None:
    from playwright.sync_api import TimeoutError as PWTimeout

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in ("slider_before.png", "slider_after.png", "failure.png", "failure_jupyterlab.log"):
        (OUT_DIR / stale).unlink(missing_ok=True)
    t0 = time.monotonic()
    step = "open the notebook"
    try:
        page.set_default_timeout(30_000)
        page.goto(f"{lab.base}/lab/tree/{NOTEBOOK}?token={lab.token}", timeout=PAGE_LOAD_S * 1000)

        step = "kernel start"
        # the toolbar says idle before any kernel exists: trust only the status bar
        _wait_idle(page, PAGE_LOAD_S, step)

        step = "Run -> Run All Cells"
        page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(r"^Run$")).first.click()
        page.locator('[data-command="runmenu:run-all"]').click()

        step = "explorer slider appears"
        _wait_for_explorer(page, RUN_ALL_S)
        step = "notebook finishes"
        _wait_idle(page, RUN_ALL_S, step)
        src_before = _explorer_imgs(page)
        assert src_before, ("the explorer's Output widget does not show its two images "
                            "(simulation, MODNet matte) after Run All")

        explorer = page.locator(EXPLORER).first
        explorer.scroll_into_view_if_needed()
        handle = page.locator(EV_HANDLE)
        readout = page.locator(EV_READOUT)
        value_before = handle.get_attribute("aria-valuenow")
        readout_before = _readout_text(page, readout)
        explorer.screenshot(path=str(OUT_DIR / "slider_before.png"))

        step = "move the exposure slider"
        handle.focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(60)
        value_after = handle.get_attribute("aria-valuenow")
        assert value_after != value_before, (
            f"ArrowRight did not move the EV slider (aria-valuenow stayed {value_before})")
        assert float(value_after) > float(value_before)

        step = "matte image changes"
        try:
            page.wait_for_function(
                f"(before) => {{ const s = ({EXPLORER_IMGS_JS})(); return s !== null && s[1] !== before; }}",
                arg=src_before[1], timeout=IMAGE_CHANGE_S * 1000, polling=100)
        except PWTimeout:
            raise StepTimeout(f"the matte image did not change within {IMAGE_CHANGE_S} s "
                              f"(EV {value_before} -> {value_after}; status bar: {_status_bar(page)!r})") from None
        # every key press queues one callback: let the last one land
        step = "widget update settles"
        src_after = _wait_settled(page, IMAGE_CHANGE_S, step)
        readout_after = _readout_text(page, readout)
        explorer.screenshot(path=str(OUT_DIR / "slider_after.png"))

        assert src_after, "the explorer lost its images after the move"
        assert src_after[0] != src_before[0], "the simulation figure is the same after the move"
        assert src_after[1] != src_before[1], "MODNet's matte image is the same after the move"
        assert readout_after != readout_before, f"EV readout stayed {readout_before!r}"
        assert _number(readout_after) == pytest.approx(float(value_after), abs=0.051), (
            f"readout {readout_after!r} does not match the slider's value {value_after}")
        assert _number(readout_after) > _number(readout_before)
        print(f"EV {readout_before} -> {readout_after}; browser test took {time.monotonic() - t0:.1f} s")
    except BaseException as exc:
        try:
            page.screenshot(path=str(OUT_DIR / "failure.png"), full_page=True)
            shutil.copy2(lab.log_path, OUT_DIR / "failure_jupyterlab.log")
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        if isinstance(exc, AssertionError) and not isinstance(exc, StepTimeout):
            raise AssertionError(f"[step: {step}] {exc}") from exc
        raise
