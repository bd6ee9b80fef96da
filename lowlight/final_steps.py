"""What ``python -m lowlight.reproduce`` does once every notebook has run.

One step so far: **the explorer figure**. Notebook 01 saves one state of its explorer as
``01_explorer_static.png``, MODNet's mattes included; it runs before notebook 06 trains the
fine-tuned MODNet, so the figure it saves says the fine-tuned model is absent. When notebook 01 ran
without error, the runner renders that figure again at the end (:func:`render_explorer_figure`), with
the original's and -- when notebook 06 has written
``runs/<profile>/train/modnet-staged/seed0/stage3/last.pt`` -- the fine-tuned model's mattes, into the
folder the notebooks' figures went to: ``figures/`` (``quick``) or ``runs/<profile>/figures/`` with
``--inplace``, else ``runs/<profile>/executed/figures/`` beside the executed copies.

The drawing is :mod:`lowlight.viz.explorer_static`, run in a child process: the runner never
imports matplotlib. The summary records each step (:class:`FinalStep`).
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import config

__all__ = ["EXPLORER_NOTEBOOK", "FinalStep", "render_explorer_figure", "run_final_steps", "summary_lines"]

#: the notebook whose explorer figure the final step renders again
EXPLORER_NOTEBOOK = "01_low_light_simulation.ipynb"


@dataclass
class FinalStep:
    """A step run once every notebook has run; never raises for a failure (``status``, ``error``)."""

    step: str
    status: str  # "ok", "failed"
    seconds: float
    figure: str | None = None        # the file it wrote (as config.display_path shows it)
    models: list | None = None       # the models the figure shows, in its order
    checkpoint: str | None = None    # the fine-tuned checkpoint it read (None: absent, see ``missing``)
    missing: str | None = None       # why the fine-tuned model is absent
    error: str | None = None


def render_explorer_figure(profile: str, figures: Path | None, timeout: int) -> FinalStep:
    """Notebook 01's explorer figure rendered again with the models on disk now. ``figures`` is where
    the notebooks' figures went (``$LOWLIGHT_FIGURES_DIR``); ``None`` (``--inplace``) means the profile's
    own folder. Runs ``python -m lowlight.viz.explorer_static`` on this package, root and profile."""
    import subprocess

    env = dict(os.environ, **{config.ENV_PROFILE: profile, config.ENV_ROOT: str(config.ROOT), "MPLBACKEND": "Agg"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                      os.environ.get("PYTHONPATH")]))
    if figures is None:
        env.pop(config.ENV_FIGURES, None)
    else:
        env[config.ENV_FIGURES] = str(figures)
    step, t0 = "explorer figure", time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "lowlight.viz.explorer_static", "--profile", profile],
                           capture_output=True, text=True, env=env, cwd=str(config.ROOT), timeout=timeout)
    except subprocess.TimeoutExpired:
        return FinalStep(step, "failed", time.perf_counter() - t0, error=f"timed out after {timeout} s")
    seconds = time.perf_counter() - t0
    lines = r.stdout.strip().splitlines()
    try:
        drawn = json.loads(lines[-1]) if r.returncode == 0 and lines else None
    except json.JSONDecodeError:
        drawn = None
    if not isinstance(drawn, dict):
        said = (r.stderr.strip().splitlines() or lines or [""])[-1]
        return FinalStep(step, "failed", seconds, error=f"exit {r.returncode}: {said}".rstrip(": "))
    return FinalStep(step, "ok", seconds, **{k: drawn.get(k) for k in ("figure", "models", "checkpoint", "missing")})


def run_final_steps(ran_ok: set[str], profile: str, figures: Path | None, timeout: int) -> list[FinalStep]:
    """The steps this run calls for, each with a progress line: the explorer figure when notebook 01
    is among the notebooks that ran without error (``ran_ok``, file names)."""
    if EXPLORER_NOTEBOOK not in ran_ok:
        return []
    print(f"[final] {'explorer figure (notebook 01)':<40} ...", end="", flush=True)
    f = render_explorer_figure(profile, figures, timeout)
    if f.status == "ok":
        print(f" ok      {f.seconds:7.1f} s\n    {f.figure}: {', '.join(f.models or [])}"
              + (f"\n    {f.missing}" if f.missing else ""), flush=True)
    else:
        print(f" FAILED  {f.seconds:7.1f} s\n    {f.error}", flush=True)
    return [f]


def summary_lines(final: list[FinalStep]) -> list[str]:
    """One markdown line per step, for the run's summary."""
    out = []
    for f in final:
        if f.status == "ok":
            shows = " and ".join(f.models or []) + (f" ({f.missing})" if f.missing else "")
            out.append(f"Final step: the {f.step} of {EXPLORER_NOTEBOOK} rendered again with {shows}: "
                       f"`{f.figure}` ({f.seconds:.1f} s).")
        else:
            out.append(f"Final step: the {f.step} **failed**: {f.error}")
    return out
