"""Batch matting for users: ``python -m lowlight.predict`` (notebook 07).

::

    python -m lowlight.predict --input photos/ --output mattes/            # MODNet as shipped
    python -m lowlight.predict --checkpoint runs/quick/train/modnet-staged/seed0/stage3/last.pt \\
        --input photos/ --output mattes/                                  # the fine-tuned MODNet
    # the brightness switch of §7: the shipped model for bright images, the fine-tuned one for dark ones
    python -m lowlight.predict --low-light-checkpoint runs/quick/train/modnet-staged/seed0/stage3/last.pt \\
        --threshold 0.2 --input photos/ --output mattes/
    # a model exported by `python -m lowlight.export` (one graph, or a switch manifest), run by onnxruntime
    python -m lowlight.predict --onnx modnet-lowlight.onnx --input photos/ --output mattes/

For every image in ``--input`` (a folder, not recursive, or one file) it writes
``<name>_alpha.png`` (8-bit grey matte) and ``<name>_rgba.png`` (the image with the matte as its
alpha channel, a cut-out) to ``--output``, both at the input's size. Without ``--checkpoint`` the
normal-light model is ``--model`` as shipped (``modnet``); a checkpoint says itself which network it
holds (MODNet, CV-UNet, with or without Zero-DCE++ in front). This module never imports the
training code. ``--onnx`` runs a graph written by :mod:`lowlight.export` with onnxruntime on the CPU
instead (:class:`lowlight.inference.OnnxModel`), through the same loop: same outputs, same errors;
given a switch manifest (``.json``) it routes as ``--threshold`` does, with the manifest's threshold
and graphs (their SHA-256 checked). ``--onnx`` goes with none of the model options (``--checkpoint``,
``--low-light-checkpoint``, ``--threshold``, ``--model``) nor a ``--device`` other than ``cpu``.

A file that cannot be read as an image is reported and skipped; the batch goes on. So is an
image whose header declares more than ``--max-pixels`` pixels (default 50 megapixels; it is
never decoded) and a fully transparent one. An input with a partly transparent alpha channel is
matted on its colours, its own alpha ignored, and a warning says so (the matte stays the model's
answer for the pixels; composite the image first to matte what a viewer shows). A JPEG, PNG or
WebP is turned by its EXIF orientation first (:func:`lowlight.data.read_image`). Two inputs never
write to the same output name, and no output is written into the folder that holds the input
(a file's folder for one ``--input`` file). Exit status: 0 when every image was matted, 3 when
some failed (the rest were written), 1 when none was (all failed, or no image found), 2 for bad
arguments, an unusable checkpoint, ONNX file or device, or a model asset that cannot be fetched.

With ``--threshold`` the switch (:class:`lowlight.inference.BrightnessSwitch`) measures
each image's mean Rec. 709 luminance (of the gamma-encoded RGB, in [0, 1]) and sends images darker
than the threshold to ``--low-light-checkpoint``; notebook 07 chooses the threshold on validation
data and saves it in ``runs/<profile>/eval/switch.json``.

Images larger than ``--max-side`` pixels on their long side are matted at that size and the
matte is resized (bilinear) back to the input's size; ``--max-side`` is 0 (never) or at least
:data:`lowlight.inference.MIN_SIDE` (32: MODNet's stride; a smaller image gives a uniform matte).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from .io import IMAGE_EXTENSIONS, MAX_PIXELS, writable_dir_problem

__all__ = ["load_predictor", "describe", "cutout", "list_inputs", "output_names", "output_problem",
           "own_alpha_note", "PredictSummary", "predict_folder", "main"]

def load_predictor(checkpoint: str | Path | None = None, model_name: str = "modnet", device=None) -> nn.Module:
    """The model of ``checkpoint`` (any course checkpoint), or ``model_name`` as shipped when
    ``checkpoint`` is ``None``; in eval mode, channels-last, on ``device``. A bad checkpoint raises
    :class:`lowlight.io.CheckpointError` naming the file. Notebook 07."""
    from . import config
    from .models import create_model, model_from_checkpoint

    dev = device if isinstance(device, torch.device) else config.get_device(device)
    model = model_from_checkpoint(checkpoint) if checkpoint is not None else create_model(model_name)
    return model.to(dev).to(memory_format=torch.channels_last).eval()


def describe(model: nn.Module) -> str:
    """``"MODNet"``, ``"Zero-DCE++ + CV-UNet (cvunet_swin)"``, ... for a model built by the factory."""
    from .models import model_arch

    arch = model_arch(model)
    name = {"modnet": "MODNet", "u2netp": "U²-Netp"}.get(arch["model"], f"CV-UNet ({arch['model']})")
    return ("Zero-DCE++ + " if arch.get("llie") else "") + name


def cutout(img: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGBA uint8 HxWx4: the image's colours with the matte as alpha channel. Notebook 07."""
    if img.shape[:2] != alpha.shape:
        raise ValueError(f"cutout: image {img.shape[:2]} and alpha {alpha.shape} differ in size")
    return np.concatenate([img, alpha[..., None]], axis=2)


def list_inputs(path: str | Path) -> tuple[list[Path], list[Path]]:
    """``(images, skipped)``: the files of a folder with an image extension (sorted), and
    the other files; a single file is taken as it is. ``FileNotFoundError`` if ``path``
    does not exist. Notebook 07."""
    p = Path(path)
    if p.is_file():
        return [p], []
    if not p.exists():
        raise FileNotFoundError(f"--input {p}: no such file or folder")
    if not p.is_dir():
        raise ValueError(f"--input {p}: not a regular file or folder (a device, pipe or socket); expected an "
                         "image file or a folder of images")
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    return ([f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS],
            [f for f in files if f.suffix.lower() not in IMAGE_EXTENSIONS])


def output_names(files: Sequence[Path]) -> dict[Path, str]:
    """Output stem per input, all different: its stem; ``stem_ext`` when two inputs share a stem;
    then ``_2``, ``_3`` ... until no two inputs (``a.png``, ``a.PNG``, ``a_png.png``) share a name,
    compared case-insensitively (a case-insensitive file system would merge them). Notebook 07."""
    stems: dict[str, int] = {}
    for f in files:
        stems[f.stem.lower()] = stems.get(f.stem.lower(), 0) + 1
    out, taken = {}, set()
    for f in files:
        base = f.stem if stems[f.stem.lower()] == 1 else f"{f.stem}_{f.suffix.lstrip('.')}"
        name, k = base, 1
        while name.lower() in taken or (name != f.stem and name.lower() in stems):
            k += 1
            name = f"{base}_{k}"
        taken.add(name.lower())
        out[f] = name
    return out


def output_problem(input_path: str | Path, output_dir: str | Path) -> str | None:
    """Why ``output_dir`` cannot take the outputs of ``input_path`` -- it is the input folder, or
    the folder that holds the one input file: the mattes would land beside the photos, could
    overwrite a file there and would be matted again by the next run of that folder -- else ``None``."""
    inp, out = Path(input_path), Path(output_dir)
    home = inp if inp.is_dir() else inp.parent
    if not (out.exists() and out.resolve() == home.resolve()):
        return None
    if inp.is_dir():
        return (f"--output {out}: is the input folder; the mattes would be matted again on the next run "
                "-- choose another folder")
    return (f"--output {out}: is the folder that holds --input {inp.name}; the mattes would land beside it "
            f"(overwriting any {inp.stem}_alpha.png there) -- choose another folder")


def _percent(fraction: float) -> str:
    return "<1" if 0 < fraction < 0.005 else f"{100 * fraction:.0f}"


def own_alpha_note(alpha: np.ndarray | None) -> str | None:
    """What :func:`predict_folder` says about an input's own alpha channel (``None``: none, or
    opaque everywhere). The image is matted on its colours, its own alpha ignored -- the matte
    stays the model's answer for the pixels -- so a partly transparent input gets a warning; a
    fully transparent one raises ``ValueError`` (nothing a viewer sees is left to matte)."""
    if alpha is None or int(alpha.min()) == 255:
        return None
    clear = float((alpha == 0).mean())
    if clear == 1.0:
        raise ValueError("fully transparent (its alpha channel is 0 everywhere): nothing visible to matte")
    partly = float(((alpha > 0) & (alpha < 255)).mean())
    return (f"has an alpha channel ({_percent(clear)} % of pixels transparent, {_percent(partly)} % partly): "
            "matted on its colours, its own alpha ignored")


@dataclass
class PredictSummary:
    """What :func:`predict_folder` did: files written, failures (file, reason), warnings (file,
    note), the model used per image (``"normal"`` / ``"low-light"`` with the switch, else
    ``"model"``) and the luminance that decided it, non-image files skipped. Notebook 07."""

    ok: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    routes: dict = field(default_factory=dict)
    lumas: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def report(self) -> str:
        lines = [f"done: {len(self.ok)} image(s) matted, {len(self.failed)} failed"
                 + (f", {len(self.skipped)} non-image file(s) skipped" if self.skipped else "")]
        if any(v != "model" for v in self.routes.values()):
            n_low = sum(v == "low-light" for v in self.routes.values())
            lines.append(f"brightness switch: {n_low} image(s) to the low-light model, "
                         f"{len(self.routes) - n_low} to the normal-light model")
            for name, route in self.routes.items():
                lines.append(f"  {name}: {route} model (mean luminance {self.lumas[name]:.3f})")
        for name, note in self.notes:
            lines.append(f"  WARNING {name}: {note}")
        for name, why in self.failed:
            lines.append(f"  FAILED {name}: {why}")
        return "\n".join(lines)


def predict_folder(model: nn.Module, input_path: str | Path, output_dir: str | Path,
                   low_model: nn.Module | None = None, threshold: float | None = None,
                   max_side: int | None = 2048, progress: bool = True, log=None,
                   max_pixels: int | None = MAX_PIXELS) -> PredictSummary:
    """Matte every image of ``input_path`` into ``output_dir`` (see the module docstring).
    With ``low_model`` and ``threshold``: images whose mean luminance is below the threshold
    go to ``low_model``. Images of more than ``max_pixels`` pixels are refused unread. Errors of
    single files are collected, never raised; an ``output_dir`` refused by :func:`output_problem`
    raises ``ValueError``. Notebook 07."""
    import cv2

    from .color import luminance
    from .data import DataFolderError, read_image_and_alpha
    from .inference import BrightnessSwitch, matte_image
    from .io import write_png

    if (low_model is None) != (threshold is None):
        raise ValueError("low_model and threshold: give both (brightness switch) or neither")
    problem = output_problem(input_path, output_dir)
    if problem:
        raise ValueError(problem)
    switch = BrightnessSwitch(model, low_model, threshold) if low_model is not None else None
    log = log or (lambda msg: print(msg, file=sys.stderr))
    files, skipped = list_inputs(input_path)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = PredictSummary(skipped=[str(s) for s in skipped])
    names = output_names(files)
    bar = None
    if progress and files:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="matting", unit="img", file=sys.stderr)

    def say(msg: str) -> None:
        if bar is not None:
            bar.write(msg, file=sys.stderr)
        else:
            log(msg)

    for f in files:
        try:
            img, own_alpha = read_image_and_alpha(f, max_pixels, limit_name="--max-pixels")
            note = own_alpha_note(own_alpha)
            luma = float(luminance(img).mean())
            use_low = switch is not None and switch.is_dark(luma)
            m = low_model if use_low else model
            alpha = matte_image(m, img, max_side=max_side)
            write_png(out / f"{names[f]}_alpha.png", alpha)
            write_png(out / f"{names[f]}_rgba.png", cutout(img, alpha))
            summary.ok.append(f.name)
            summary.lumas[f.name] = luma
            summary.routes[f.name] = "model" if low_model is None else ("low-light" if use_low else "normal")
            if note:
                summary.notes.append((f.name, note))
                say(f"warning: {f}: {note}")
        except (DataFolderError, OSError, ValueError, RuntimeError, MemoryError, cv2.error) as exc:
            summary.failed.append((f.name, str(exc)))
            say(f"error: {exc}" if str(f) in str(exc) else f"error: {f}: {exc}")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return summary


def _parse(argv):
    from .models import MODELS

    ap = argparse.ArgumentParser(
        prog="python -m lowlight.predict",
        description="Matte every image of a folder; writes <name>_alpha.png (8-bit matte) and <name>_rgba.png "
                    "(cut-out) at the input's size. Default model: MODNet as shipped.")
    ap.add_argument("--input", required=True, help="folder of images (or one image file)")
    ap.add_argument("--output", required=True, help="output folder (created if missing; not the input folder)")
    ap.add_argument("--model", default=None, choices=list(MODELS),
                    help="the shipped model to use when no --checkpoint is given (default modnet)")
    ap.add_argument("--onnx", default=None,
                    help="a model exported by `python -m lowlight.export` (.onnx), or its brightness-switch manifest "
                         "(.json), run with onnxruntime on the CPU; instead of the model options")
    ap.add_argument("--checkpoint", default=None,
                    help="a fine-tuned checkpoint (notebook 06 / python -m lowlight.training); with "
                         "--low-light-checkpoint: the normal-light model")
    ap.add_argument("--low-light-checkpoint", default=None,
                    help="brightness switch: the model for dark images (needs --threshold)")
    ap.add_argument("--threshold", type=float, default=None,
                    help="brightness switch: images with mean Rec.709 luminance (0..1) below this go to "
                         "--low-light-checkpoint (notebook 07 saves one chosen on validation data in "
                         "runs/<profile>/eval/switch.json)")
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA when available)")
    ap.add_argument("--max-side", type=int, default=2048,
                    help="matte larger images at this long side and resize the matte back (0 = never; "
                         "else at least 32)")
    ap.add_argument("--max-pixels", type=float, default=MAX_PIXELS,
                    help="skip (as failed) images whose header declares more pixels than this, without "
                         f"decoding them (default {MAX_PIXELS} = {MAX_PIXELS / 1e6:g} megapixels; e.g. 2e8 for a "
                         "200-megapixel panorama)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def _check_args(args) -> str | None:
    """The first problem of the arguments (a message naming the option), found before any model loads."""
    from .inference import MIN_SIDE

    if args.onnx is not None:
        given = [opt for opt, value in (("--checkpoint", args.checkpoint), ("--model", args.model),
                                        ("--low-light-checkpoint", args.low_light_checkpoint),
                                        ("--threshold", args.threshold)) if value is not None]
        if given:
            return (f"--onnx and {given[0]} exclude each other: the exported graph (or its switch manifest) is the "
                    "model")
        if args.device not in (None, "cpu"):
            return f"--device {args.device}: --onnx runs with onnxruntime on the CPU (leave --device out)"
    if (args.low_light_checkpoint is None) != (args.threshold is None):
        return "--low-light-checkpoint and --threshold go together (the brightness switch needs both)"
    if args.threshold is not None and not (0.0 <= args.threshold <= 1.0):
        return f"--threshold {args.threshold}: expected a mean luminance in [0, 1]"
    if args.max_side < 0 or 0 < args.max_side < MIN_SIDE:
        return (f"--max-side {args.max_side}: expected 0 (never downscale) or at least {MIN_SIDE} pixels (the "
                f"models work at stride {MIN_SIDE}; a smaller image gives a uniform matte)")
    pixels = float(args.max_pixels)
    if not (math.isfinite(pixels) and pixels >= 1 and pixels.is_integer()):
        return f"--max-pixels {pixels:g}: expected a whole number of pixels >= 1 (e.g. 2e8)"
    inp, out = Path(args.input), Path(args.output)
    if not inp.exists():
        return f"--input {inp}: no such file or folder"
    if not (inp.is_file() or inp.is_dir()):
        return (f"--input {inp}: not a regular file or folder (a device, pipe or socket); expected an image "
                "file or a folder of images")
    return output_problem(inp, out) or writable_dir_problem(out, "--output")


def _usable_device(name: str | None):
    """``(torch.device, None)``, or ``(None, message)`` when ``--device name`` cannot hold a tensor here."""
    from . import config

    try:
        dev = config.get_device(name)
        torch.ones(1, device=dev).cpu()
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, AssertionError, NotImplementedError...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0].rstrip(".")
        return None, (f"--device {name!r}: not usable on this machine ({first[:160]}); expected cpu, cuda or "
                      "cuda:N (default: CUDA when available)")
    return dev, None


def _onnx_models(path: str):
    """``(model, low_model, threshold, description)`` of ``--onnx``; raises :class:`OnnxModelError`."""
    from .inference import load_onnx_predictor

    model, low_model, threshold = load_onnx_predictor(path)
    if low_model is None:
        return model, None, None, f"model: {model.arch['model']} exported to ONNX, {path}, run by onnxruntime"
    return (model, low_model, threshold, f"brightness switch at mean luminance {threshold:g} from {path}: normal "
            f"light -> {model.path.name}, low light -> {low_model.path.name} (ONNX, run by onnxruntime)")


def _models(args, device):
    """``(model, low_model, threshold, description)`` that the arguments name. Raises
    :class:`~lowlight.io.CheckpointError`, :class:`~lowlight.assets.AssetError` or
    :class:`~lowlight.inference.OnnxModelError`."""
    if args.onnx is not None:
        return _onnx_models(args.onnx)
    name = args.model or "modnet"
    model = load_predictor(args.checkpoint, name, device)
    low_model = load_predictor(args.low_light_checkpoint, name, device) if args.low_light_checkpoint else None
    desc = f"model: {describe(model)}" + (f" from {args.checkpoint}" if args.checkpoint else " as shipped")
    if low_model is not None:
        desc = (f"brightness switch at mean luminance {args.threshold:g}: normal light -> {describe(model)}"
                f"{' from ' + args.checkpoint if args.checkpoint else ' as shipped'}, low light -> "
                f"{describe(low_model)} from {args.low_light_checkpoint}")
    return model, low_model, args.threshold, desc


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status. Notebook 07."""
    args = _parse(argv)
    from .assets import AssetError
    from .inference import OnnxModelError
    from .io import CheckpointError, cli_error

    fail = cli_error

    problem = _check_args(args)
    if problem:
        return fail(problem)
    inp, out = Path(args.input), Path(args.output)
    device, problem = (None, None) if args.onnx is not None else _usable_device(args.device)
    if problem:
        return fail(problem)
    try:
        model, low_model, threshold, desc = _models(args, device)
    except (CheckpointError, AssetError, OnnxModelError) as exc:
        return fail(str(exc))
    print(desc, file=sys.stderr)
    summary = predict_folder(model, inp, out, low_model, threshold, max_side=args.max_side or None,
                             progress=not args.no_progress, max_pixels=int(args.max_pixels))
    print(summary.report())
    if not summary.ok:
        print("error: no image was matted" + ("" if summary.failed else f" (no image files in {inp})"),
              file=sys.stderr)
        return 1
    if summary.failed:
        print(f"error: {len(summary.failed)} of {len(summary.ok) + len(summary.failed)} image(s) failed "
              "(listed above); the others were written", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
