"""Export a matting model to ONNX, checked against PyTorch: ``python -m lowlight.export`` (notebook 07).

::

    python -m lowlight.export --checkpoint runs/quick/train/modnet-staged/seed0/stage3/last.pt \\
        --out modnet-lowlight.onnx                            # one graph
    python -m lowlight.export --low-light-checkpoint runs/quick/train/modnet-staged/seed0/stage3/last.pt \\
        --threshold 0.2 --out switch.json                     # the brightness switch of §7
    python -m lowlight.predict --onnx modnet-lowlight.onnx --input photos/ --output mattes/

**The graph.** One input ``image``: float32 ``N x 3 x H x W``, RGB in [0, 1], with dynamic N, H
and W; one output ``alpha``: ``N x 1 x H x W`` in [0, 1]. The normalisation is inside (MODNet's
``(x - 0.5) / 0.5``, CV-UNet's own), so a caller feeds the image as it is -- unlike the shipped
MODNet graph, which takes ``x * 2 - 1`` under the name ``input``. The networks see sizes that are
multiples of 32; PyTorch pads inside ``pad_input`` with a Python ``if`` that a trace would freeze
at the example's size, so the exported module (:class:`ExportGraph`) pads every input itself --
edge replication on the bottom and right to the next multiple of 32, amounts computed from the
input's shape inside the graph -- and crops the output back: the same pixels as PyTorch at any
size (a multiple of 32 gets a zero pad). With Zero-DCE++ in front, the enhancement runs on the
unpadded image first, as in PyTorch. Export uses torch's TorchScript exporter (``dynamo=False``):
the torch.export-based one needs ``onnxscript``, which the course does not install. It traces a
2 x 3 x 64 x 96 batch; its tracer warnings (shape checks it freezes) are silenced, and the check
below, at batch 1 and other sizes, is what decides: a size or batch frozen by the trace fails it.

**The check.** The file is written to a temporary name beside ``--out``, run by onnxruntime on
random images at ``--check-sizes`` (default 512x512 and the non-square, non-multiple-of-32
333x517) and compared with the PyTorch model: mean |diff| <= 1e-4 and max |diff| <= 1e-3, printed.
Only a file that passes is renamed to ``--out``; on failure nothing is left and the exit status
is 1 with the numbers. Bad arguments, an unusable checkpoint, an ``--out`` that is a folder or
cannot be written exit with status 2 and a one-line message, before anything is written.

**The brightness switch** (``--low-light-checkpoint`` with ``--threshold``; the normal-light model
is ``--checkpoint`` or ``--model`` as shipped) is written as two graphs and a JSON manifest:
``--out switch.json`` names the manifest, the graphs go beside it as ``switch.normal.onnx`` and
``switch.low.onnx``, and the manifest records the threshold, the luminance (mean over pixels of
Rec. 709 luma ``0.2126 R + 0.7152 G + 0.0722 B`` of the gamma-encoded RGB in [0, 1]; darker than
the threshold -> the low-light graph) and each file's name and SHA-256, which
``predict --onnx switch.json`` checks. Why not one graph: on MODNet at 512x512 (onnxruntime, 2
threads, busy 2-core CPU, medians of 7 interleaved runs; one model 0.486 s) a graph that runs both
models and selects per image (``torch.where``) took 1.99x the time of one model; an ONNX ``If`` on
the batch's mean luminance, assembled from the two exported graphs, took 1.02x (52 MB in one file)
but routes a whole batch one way (per-image routing needs a ``Loop`` around it) and measures the
luminance on what the graph is given (the image ``predict`` has already downscaled to
``--max-side``), while ``predict`` and :class:`~lowlight.inference.BrightnessSwitch` decide per
image on the full image. Two plain graphs (26 MB each) plus the luminance in numpy (1 ms at 512²)
cost one model's time, route exactly as the PyTorch path does, and each stays usable alone. An
existing graph file beside ``--out`` is replaced only when the manifest at ``--out`` lists it
(re-exporting the same switch); any other file there is refused, never overwritten.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import warnings
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .inference import MIN_SIDE, ONNX_INPUT, ONNX_OUTPUT, SWITCH_FORMAT, OnnxModel

__all__ = ["DEFAULT_OPSET", "CHECK_SIZES", "MEAN_TOL", "MAX_TOL", "ExportCheckError", "ExportGraph", "export_onnx",
           "check_onnx", "switch_files", "export_switch", "main"]

#: the ONNX opset written unless ``--opset`` says otherwise (the TorchScript exporter goes up to 20)
DEFAULT_OPSET = 17
OPSETS = range(13, 21)
#: the (H, W) of the check against PyTorch: a square multiple of 32 and a non-square size that is not
CHECK_SIZES = ((512, 512), (333, 517))
#: the bounds of the check: mean and max |ONNX - PyTorch| over the alpha of each check size
MEAN_TOL, MAX_TOL = 1e-4, 1e-3


class ExportCheckError(RuntimeError):
    """The exported graph does not compute what the PyTorch model does (the message has the numbers)."""


class ExportGraph(nn.Module):
    """What the ONNX graph computes: ``model`` on RGB in [0, 1] of any size, padded to a multiple of
    its stride *inside the graph* (edge replication, bottom and right, as ``pad_input``) and
    cropped back. A ``TwoStageModel`` (Zero-DCE++ in front) enhances the unpadded image first."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.net = getattr(model, "matting", model)          # TwoStageModel: its matting network
        self.multiple = int(getattr(self.net, "pad_multiple", MIN_SIDE))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.model.enhance(image) if self.net is not self.model else image
        h, w = x.shape[-2], x.shape[-1]
        k = self.multiple
        x = F.pad(x, (0, (w + k - 1) // k * k - w, 0, (h + k - 1) // k * k - h), mode="replicate")
        return self.net(x)[..., :h, :w]


def _graph_bytes(model: nn.Module, opset: int, metadata: dict | None) -> bytes:
    """The serialised ONNX graph of :class:`ExportGraph` around ``model`` (CPU, eval mode)."""
    import onnx

    graph = ExportGraph(model).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")        # tracer warnings on frozen shape checks; check_onnx decides
        torch.onnx.export(graph, (torch.rand(2, 3, 64, 96),), buf, dynamo=False, opset_version=int(opset),
                          input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT], do_constant_folding=True,
                          dynamic_axes={ONNX_INPUT: {0: "N", 2: "H", 3: "W"}, ONNX_OUTPUT: {0: "N", 2: "H", 3: "W"}})
    proto = onnx.load_from_string(buf.getvalue())
    proto.doc_string = ("lowlight export: input 'image' float32 N x 3 x H x W, RGB in [0, 1] (normalised inside, "
                        "padded to a multiple of 32 inside); output 'alpha' N x 1 x H x W in [0, 1]")
    for key, value in (metadata or {}).items():
        proto.metadata_props.add(key=str(key), value=str(value))
    return proto.SerializeToString()


def check_onnx(model: nn.Module, path: str | Path, sizes=CHECK_SIZES, threads: int | None = None,
               seed: int = 0) -> list[dict]:
    """Run the graph at ``path`` (onnxruntime) and ``model`` (PyTorch) on the same random RGB image
    of each ``(H, W)`` in ``sizes``; one row per size: ``{"size", "mean", "max"}`` of |diff|."""
    session = OnnxModel(path, threads=threads)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for h, w in sizes:
        x = torch.rand(1, 3, int(h), int(w), generator=gen)
        with torch.inference_mode():
            ref = model.eval()(x).float()
        diff = (session(x) - ref).abs()
        if diff.shape != ref.shape:
            raise ExportCheckError(f"the graph returned {tuple(diff.shape)} for a {h}x{w} input, expected "
                                   f"{tuple(ref.shape)}")
        rows.append({"size": f"{h}x{w}", "mean": float(diff.mean()), "max": float(diff.max())})
    return rows


def _check_report(rows: list[dict]) -> tuple[str, bool]:
    ok = all(r["mean"] <= MEAN_TOL and r["max"] <= MAX_TOL for r in rows)
    text = "; ".join(f"{r['size']}: mean |diff| {r['mean']:.2e}, max {r['max']:.2e}" for r in rows)
    return f"ONNX vs PyTorch {text} (bounds: mean <= {MEAN_TOL:g}, max <= {MAX_TOL:g})", ok


def _write_checked(model: nn.Module, tmp: str, opset: int, sizes, metadata: dict | None, threads) -> list[dict]:
    """Export ``model`` to the temporary file ``tmp`` and check it; raises :class:`ExportCheckError`."""
    Path(tmp).write_bytes(_graph_bytes(model, opset, metadata))
    rows = check_onnx(model, tmp, sizes, threads=threads)
    text, ok = _check_report(rows)
    if not ok:
        raise ExportCheckError(f"{text}: the export does not match; nothing was written")
    return rows


def _metadata(model: nn.Module, source: str) -> dict:
    arch = dict(getattr(model, "arch", None) or {})
    return {"lowlight.model": arch.get("model", type(model).__name__), "lowlight.llie": arch.get("llie") or "",
            "lowlight.source": source, "lowlight.input": "RGB float32 N x 3 x H x W in [0, 1]"}


def export_onnx(model: nn.Module, path: str | Path, opset: int = DEFAULT_OPSET, sizes=CHECK_SIZES,
                source: str = "", threads: int | None = None, log=None) -> list[dict]:
    """Export ``model`` (any network of :func:`lowlight.models.create_model`) to ONNX at ``path`` and
    check it against PyTorch at ``sizes``; returns the check rows (:func:`check_onnx`). The file
    appears only once the check has passed (atomic write); a failed check raises
    :class:`ExportCheckError` with the numbers and leaves nothing. ``source`` goes into the
    graph's metadata; ``log`` (e.g. ``print``) gets the check line."""
    from .io import atomic_path

    model = model.to("cpu").eval()
    with atomic_path(path) as tmp:
        rows = _write_checked(model, tmp, opset, sizes, _metadata(model, source), threads)
    if log is not None:
        log(f"{path}: {_check_report(rows)[0]}")
    return rows


def switch_files(manifest: str | Path) -> tuple[Path, Path]:
    """The normal- and low-light graph files of the switch whose manifest is ``manifest``."""
    m = Path(manifest)
    return m.with_name(f"{m.stem}.normal.onnx"), m.with_name(f"{m.stem}.low.onnx")


def export_switch(normal: nn.Module, low: nn.Module, threshold: float, manifest: str | Path,
                  opset: int = DEFAULT_OPSET, sizes=CHECK_SIZES, sources=("", ""), threads: int | None = None,
                  log=None) -> dict:
    """The brightness switch as two checked graphs (:func:`switch_files`) and the JSON manifest
    ``manifest``; returns the manifest. Both graphs are checked before either is renamed into
    place; the manifest is written last."""
    from .assets import sha256_file
    from .color import LUMA_WEIGHTS
    from .io import atomic_path, atomic_write_json

    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold {threshold!r}: expected a mean luminance in [0, 1]")
    paths, rows = switch_files(manifest), {}
    with contextlib.ExitStack() as stack:
        for key, model, path, source in zip(("normal", "low_light"), (normal, low), paths, sources):
            tmp = stack.enter_context(atomic_path(path))
            model = model.to("cpu").eval()
            rows[key] = _write_checked(model, tmp, opset, sizes, _metadata(model, source), threads)
    state = {"format": SWITCH_FORMAT, "threshold": float(threshold),
             "luminance": {"weights": list(LUMA_WEIGHTS), "of": "gamma-encoded RGB in [0, 1] (no linearisation)",
                           "rule": "mean over the image's pixels of the weighted sum of R, G, B; "
                                   "below the threshold -> low_light, else normal"},
             "input": f"{ONNX_INPUT}: float32 N x 3 x H x W, RGB in [0, 1]", "output": f"{ONNX_OUTPUT}: N x 1 x H x W",
             "normal": {"file": paths[0].name, "sha256": sha256_file(paths[0]), "source": sources[0]},
             "low_light": {"file": paths[1].name, "sha256": sha256_file(paths[1]), "source": sources[1]}}
    atomic_write_json(manifest, state)
    if log is not None:
        for key, path in zip(("normal", "low_light"), paths):
            log(f"{path}: {_check_report(rows[key])[0]}")
    state["check"] = rows
    return state


# --------------------------------------------------------------------------- command line
def _parse(argv):
    from .models import MODELS

    ap = argparse.ArgumentParser(
        prog="python -m lowlight.export",
        description="Export a matting model (a course checkpoint, or a shipped model) to ONNX: input 'image' RGB "
                    "float32 N x 3 x H x W in [0, 1], any size; output 'alpha' N x 1 x H x W. The file is checked "
                    "against PyTorch with onnxruntime before it is kept.")
    for flag, text in (
            ("--checkpoint", "a fine-tuned checkpoint (notebook 06 / python -m lowlight.training); with the switch: "
                             "the normal-light model (default: --model as shipped)"),
            ("--low-light-checkpoint", "brightness switch: the model for dark images (needs --threshold; --out "
                                       "names the manifest)")):
        ap.add_argument(flag, default=None, help=text)
    ap.add_argument("--model", default=None, choices=list(MODELS),
                    help="without --checkpoint: the shipped model to export (default modnet); with one: the network "
                         "each checkpoint must hold")
    ap.add_argument("--threshold", type=float, default=None,
                    help="brightness switch: images with mean Rec. 709 luminance (0..1) below this go to the "
                         "low-light model (notebook 07 saves one in runs/<profile>/eval/switch.json)")
    ap.add_argument("--out", required=True,
                    help="the .onnx file to write; with the switch the .json manifest, the two graphs beside it")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                    help=f"ONNX opset ({OPSETS.start}..{OPSETS.stop - 1}, default {DEFAULT_OPSET})")
    ap.add_argument("--check-sizes", default=",".join(f"{h}x{w}" for h, w in CHECK_SIZES),
                    help="HxW[,HxW...]: image sizes of the check against PyTorch (default %(default)s)")
    return ap.parse_args(argv)


def _sizes(text: str) -> list[tuple[int, int]]:
    """``"512x512,333x517"`` -> ``[(512, 512), (333, 517)]``; ``ValueError`` naming the option."""
    sizes = []
    for part in text.split(","):
        h, _, w = part.strip().lower().partition("x")
        if not (h.isdigit() and w.isdigit() and MIN_SIDE <= int(h) <= 4096 and MIN_SIDE <= int(w) <= 4096):
            raise ValueError(f"--check-sizes {text}: expected HxW[,HxW...] with sides from {MIN_SIDE} to 4096, "
                             "e.g. 512x512,333x517")
        sizes.append((int(h), int(w)))
    return sizes


def _switch_file_problem(out: Path) -> str | None:
    """Why the switch's graphs beside ``out`` cannot be written: an existing file that the manifest
    already at ``out`` does not list (a re-export replaces only its own files), else ``None``."""
    import json

    listed = set()
    with contextlib.suppress(OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError):
        state = json.loads(out.read_text(encoding="utf-8"))
        if state.get("format") == SWITCH_FORMAT:
            listed = {state[k].get("file") for k in ("normal", "low_light")}
    for path in switch_files(out):
        if path.is_dir() or (path.exists() and path.name not in listed):
            return (f"--out {out}: the switch writes {path.name} beside it, and {path} already exists (not listed by "
                    "a switch manifest at --out); move it away or choose another --out")
    return None


def _check_args(args) -> str | None:
    """The first problem of the arguments (a message naming the option), found before any model loads."""
    from .io import writable_dir_problem

    switch = args.low_light_checkpoint is not None
    if switch != (args.threshold is not None):
        return "--low-light-checkpoint and --threshold go together (the brightness switch needs both)"
    if switch and not (math.isfinite(args.threshold) and 0.0 <= args.threshold <= 1.0):
        return f"--threshold {args.threshold}: expected a mean luminance in [0, 1]"
    if args.opset not in OPSETS:
        return f"--opset {args.opset}: expected {OPSETS.start} to {OPSETS.stop - 1}"
    try:
        _sizes(args.check_sizes)
    except ValueError as exc:
        return str(exc)
    out = Path(args.out)
    if out.is_dir():
        return f"--out {out}: is a folder; expected the file to write (e.g. {out / 'model.onnx'})"
    suffix = ".json" if switch else ".onnx"
    if out.suffix.lower() != suffix:
        return (f"--out {out}: expected a file name ending in {suffix}" +
                (" (with the switch --out names the manifest; the two graphs go beside it)" if switch else ""))
    if out.exists() and not out.is_file():
        return f"--out {out}: exists and is not a regular file"
    return writable_dir_problem(out.parent, "--out") or (_switch_file_problem(out) if switch else None)


def _load(checkpoint: str | None, model_name: str | None) -> nn.Module:
    """The model of ``checkpoint`` (it must hold ``model_name`` when given), or ``model_name`` as shipped."""
    from .io import CheckpointError
    from .models import MODELS, create_model, model_arch, model_from_checkpoint

    if checkpoint is None:
        return create_model(model_name or "modnet")
    model = model_from_checkpoint(checkpoint)
    held = model_arch(model)["model"]
    if model_name is not None and MODELS[held] != MODELS[model_name]:
        raise CheckpointError(f"checkpoint {checkpoint}: holds model {held!r}, not --model {model_name!r}")
    return model


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status: 0 written and checked,
    1 the check failed (nothing written), 2 bad arguments, checkpoint or output."""
    args = _parse(argv)
    from .assets import AssetError
    from .io import CheckpointError, cli_error

    fail = cli_error

    problem = _check_args(args)
    if problem:
        return fail(problem)
    sizes, log = _sizes(args.check_sizes), (lambda msg: print(msg, flush=True))
    source = args.checkpoint or f"{args.model or 'modnet'} as shipped"
    try:
        model = _load(args.checkpoint, args.model)
        low = _load(args.low_light_checkpoint, args.model) if args.low_light_checkpoint else None
    except (CheckpointError, AssetError) as exc:
        return fail(str(exc))
    try:
        if low is None:
            export_onnx(model, args.out, args.opset, sizes, source=source, log=log)
        else:
            export_switch(model, low, args.threshold, args.out, args.opset, sizes,
                          sources=(source, args.low_light_checkpoint), log=log)
            log(f"{args.out}: brightness switch at mean luminance {args.threshold:g} -> "
                f"{', '.join(p.name for p in switch_files(args.out))}")
    except ExportCheckError as exc:
        return fail(str(exc), 1)
    except (OSError, RuntimeError) as exc:       # disk full, an operator the exporter cannot write
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return fail(f"--out {args.out}: export failed ({type(exc).__name__}: {first})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
