"""Batch matting for users: ``python -m lowlight.predict`` (notebook 07).

::

    python -m lowlight.predict --checkpoint runs/quick/train/finetune/stage3/last.pt \\
        --input photos/ --output mattes/
    # the brightness switch of §7.2: original model for bright images, fine-tuned for dark ones
    python -m lowlight.predict --checkpoint runs/quick/train/baseline/baseline/last.pt \\
        --low-light-checkpoint runs/quick/train/finetune/stage3/last.pt --threshold 0.2 \\
        --input photos/ --output mattes/

For every image in ``--input`` (a folder, not recursive, or one file) it writes
``<name>_alpha.png`` (8-bit grey matte) and ``<name>_rgba.png`` (the image with the matte
as its alpha channel, a cut-out) to ``--output``, both at the input's size. Any checkpoint
of notebook 06 works: a plain CV-UNet or a Zero-DCE++ + CV-UNet (``TwoStageModel``); the
kind is read from the state dict's keys. ``--model`` names the encoder the checkpoint was
trained with (default ``cvunet``, MobileNetV2).

A file that cannot be read as an image is reported and skipped; the batch goes on. The
summary at the end counts the images written and failed (and, with the switch, which model
matted each image). Exit status: 0 when at least one image was matted, 1 when none was
(all failed, or no image found), 2 for bad arguments or an unusable checkpoint.

With ``--threshold`` the switch measures each image's mean Rec. 709 luminance (of the
gamma-encoded RGB, in [0, 1]) and sends images darker than the threshold to
``--low-light-checkpoint``; notebook 07 chooses the threshold on validation data and saves
it in ``runs/<profile>/eval/switch.json``.

Images larger than ``--max-side`` pixels on their long side are matted at that size and the
matte is resized (bilinear) back to the input's size.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

__all__ = ["IMAGE_EXTENSIONS", "checkpoint_kind", "load_predictor", "matte_image", "cutout",
           "list_inputs", "output_names", "PredictSummary", "predict_folder", "main"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def checkpoint_kind(state_dict: dict) -> str:
    """``"llie"`` for a Zero-DCE++ + CV-UNet state dict (keys ``llie.*`` and ``matting.*``),
    ``"plain"`` for a CV-UNet alone; :class:`lowlight.train.CheckpointError` for an
    LLIE-only checkpoint (notebook 04's ``zerodce.pt``) or anything else. Notebook 07."""
    from .train import CheckpointError

    keys = list(state_dict)
    if any(k.startswith("matting.") for k in keys) and any(k.startswith("llie.") for k in keys):
        return "llie"
    if any(k.startswith("encoder.") for k in keys):
        return "plain"
    if any(k.startswith("conv1.depthwise") for k in keys):
        raise CheckpointError("this is an LLIE-only checkpoint (Zero-DCE++, notebook 04), not a matting model; "
                              "pass a checkpoint of notebook 06 (runs/<profile>/train/...)")
    raise CheckpointError(f"not a matting checkpoint of this course (first keys: {keys[:3]})")


def load_predictor(checkpoint: str | Path, model_name: str = "cvunet", device=None) -> tuple[nn.Module, str]:
    """The model stored in ``checkpoint`` (any checkpoint of notebook 06), in eval mode on
    ``device``, and its kind (``"plain"`` / ``"llie"``). Raises
    :class:`lowlight.train.CheckpointError` naming the file when it is missing, unreadable,
    or does not fit ``model_name``. Notebook 07."""
    from . import config
    from .train import CheckpointError, build_model, load_checkpoint

    state = load_checkpoint(checkpoint)
    try:
        kind = checkpoint_kind(state["model"])
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {checkpoint}: {exc}") from None
    model = build_model(model_name, pretrained=False, llie="zerodce" if kind == "llie" else None)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {checkpoint}: does not fit --model {model_name!r} "
            f"({str(exc).splitlines()[0][:200]}); was it trained with another encoder?") from exc
    dev = device if isinstance(device, torch.device) else config.get_device(device)
    # channels-last memory: 1.7x faster than NCHW for CV-UNet-MobileNetV2 at 512² on a 2-core CPU
    # (benchmarks/bench_models.py), same maths up to float rounding
    return model.to(dev).to(memory_format=torch.channels_last).eval(), kind


def matte_image(model: nn.Module, img: np.ndarray, max_side: int | None = 2048, device=None) -> np.ndarray:
    """8-bit matte (uint8 HxW, the input's size) of a uint8 RGB image. Images whose long
    side exceeds ``max_side`` are matted downscaled and the matte resized back. Notebook 07."""
    import cv2

    h, w = img.shape[:2]
    x = img
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        x = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).float().div_(255.0)[None].to(device)
    t = t.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        a = model(t).float()[0, 0].cpu().numpy()
    if a.shape != (h, w):
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def cutout(img: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGBA uint8 HxWx4: the image's colours with the matte as alpha channel. Notebook 07."""
    if img.shape[:2] != alpha.shape:
        raise ValueError(f"cutout: image {img.shape[:2]} and alpha {alpha.shape} differ in size")
    return np.concatenate([img, alpha[..., None]], axis=2)


def _write_png(path: Path, arr: np.ndarray) -> None:
    """Encode as PNG and write through a temporary file + rename (RGB(A) -> OpenCV's BGR(A))."""
    import cv2

    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA if arr.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr)
    if not ok:  # pragma: no cover - uint8 PNG always encodes
        raise OSError(f"{path}: PNG encoding failed")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.tobytes())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def list_inputs(path: str | Path) -> tuple[list[Path], list[Path]]:
    """``(images, skipped)``: the files of a folder with an image extension (sorted), and
    the other files; a single file is taken as it is. ``FileNotFoundError`` if ``path``
    does not exist. Notebook 07."""
    p = Path(path)
    if p.is_file():
        return [p], []
    if not p.is_dir():
        raise FileNotFoundError(f"--input {p}: no such file or folder")
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    return ([f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS],
            [f for f in files if f.suffix.lower() not in IMAGE_EXTENSIONS])


def output_names(files: Sequence[Path]) -> dict[Path, str]:
    """Output stem per input: its stem, or ``stem_ext`` when two inputs share a stem. Notebook 07."""
    stems: dict[str, int] = {}
    for f in files:
        stems[f.stem] = stems.get(f.stem, 0) + 1
    return {f: (f.stem if stems[f.stem] == 1 else f"{f.stem}_{f.suffix.lstrip('.').lower()}") for f in files}


@dataclass
class PredictSummary:
    """What :func:`predict_folder` did: files written, failures (file, reason), the model
    used per image (``"normal"`` / ``"low-light"`` with the switch, else ``"model"``) and the
    luminance that decided it, non-image files skipped. Notebook 07."""

    ok: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    routes: dict = field(default_factory=dict)
    lumas: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)

    def report(self) -> str:
        lines = [f"done: {len(self.ok)} image(s) matted, {len(self.failed)} failed"
                 + (f", {len(self.skipped)} non-image file(s) skipped" if self.skipped else "")]
        if any(v != "model" for v in self.routes.values()):
            n_low = sum(v == "low-light" for v in self.routes.values())
            lines.append(f"brightness switch: {n_low} image(s) to the low-light model, "
                         f"{len(self.routes) - n_low} to the normal-light model")
            for name, route in self.routes.items():
                lines.append(f"  {name}: {route} model (mean luminance {self.lumas[name]:.3f})")
        for name, why in self.failed:
            lines.append(f"  FAILED {name}: {why}")
        return "\n".join(lines)


def predict_folder(model: nn.Module, input_path: str | Path, output_dir: str | Path,
                   low_model: nn.Module | None = None, threshold: float | None = None,
                   max_side: int | None = 2048, progress: bool = True, log=None) -> PredictSummary:
    """Matte every image of ``input_path`` into ``output_dir`` (see the module docstring).
    With ``low_model`` and ``threshold``: images whose mean luminance is below the threshold
    go to ``low_model``. Errors of single files are collected, never raised. Notebook 07."""
    from .data import DataFolderError, read_image
    from .simulate import luminance

    if (low_model is None) != (threshold is None):
        raise ValueError("low_model and threshold: give both (brightness switch) or neither")
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
    for f in files:
        try:
            img = read_image(f)
            luma = float(luminance(img).mean())
            use_low = low_model is not None and luma < threshold
            m = low_model if use_low else model
            alpha = matte_image(m, img, max_side=max_side)
            _write_png(out / f"{names[f]}_alpha.png", alpha)
            _write_png(out / f"{names[f]}_rgba.png", cutout(img, alpha))
            summary.ok.append(f.name)
            summary.lumas[f.name] = luma
            summary.routes[f.name] = "model" if low_model is None else ("low-light" if use_low else "normal")
        except (DataFolderError, OSError, ValueError, RuntimeError) as exc:
            summary.failed.append((f.name, str(exc)))
            msg = f"error: {exc}" if str(f) in str(exc) else f"error: {f}: {exc}"
            if bar is not None:
                bar.write(msg, file=sys.stderr)
            else:
                log(msg)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return summary


def _parse(argv):
    ap = argparse.ArgumentParser(
        prog="python -m lowlight.predict",
        description="Matte every image of a folder with a checkpoint of notebook 06; writes <name>_alpha.png "
                    "(8-bit matte) and <name>_rgba.png (cut-out) at the input's size.")
    ap.add_argument("--checkpoint", required=True,
                    help="model checkpoint (plain CV-UNet or LLIE + CV-UNet); with --low-light-checkpoint: "
                         "the normal-light model")
    ap.add_argument("--input", required=True, help="folder of images (or one image file)")
    ap.add_argument("--output", required=True, help="output folder (created if missing)")
    ap.add_argument("--low-light-checkpoint", default=None,
                    help="brightness switch: the model for dark images (needs --threshold)")
    ap.add_argument("--threshold", type=float, default=None,
                    help="brightness switch: images with mean Rec.709 luminance (0..1) below this go to "
                         "--low-light-checkpoint (notebook 07 saves one chosen on validation data in "
                         "runs/<profile>/eval/switch.json)")
    ap.add_argument("--model", default="cvunet",
                    help="the encoder the checkpoints were trained with (default cvunet = MobileNetV2)")
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA when available)")
    ap.add_argument("--max-side", type=int, default=2048,
                    help="matte larger images at this long side and resize the matte back (0 = never)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status. Notebook 07."""
    args = _parse(argv)
    from . import config
    from .train import MODEL_NAMES, CheckpointError

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return 2

    if args.model not in MODEL_NAMES:
        return fail(f"--model {args.model!r}: expected one of {', '.join(sorted(MODEL_NAMES))}")
    if (args.low_light_checkpoint is None) != (args.threshold is None):
        return fail("--low-light-checkpoint and --threshold go together (the brightness switch needs both)")
    if args.threshold is not None and not (0.0 <= args.threshold <= 1.0):
        return fail(f"--threshold {args.threshold}: expected a mean luminance in [0, 1]")
    if args.max_side < 0:
        return fail(f"--max-side {args.max_side}: expected >= 0")
    inp = Path(args.input)
    if not inp.exists():
        return fail(f"--input {inp}: no such file or folder")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        return fail(f"--output {out}: exists and is not a folder")
    try:
        device = config.get_device(args.device)
    except (ValueError, RuntimeError) as exc:
        return fail(f"--device {args.device!r}: {exc}")
    try:
        model, kind = load_predictor(args.checkpoint, args.model, device)
        low_model, low_kind = (load_predictor(args.low_light_checkpoint, args.model, device)
                               if args.low_light_checkpoint else (None, None))
    except CheckpointError as exc:
        return fail(str(exc))
    desc = f"model: {args.checkpoint} ({'Zero-DCE++ + ' if kind == 'llie' else ''}CV-UNet)"
    if low_model is not None:
        desc = (f"brightness switch at mean luminance {args.threshold:g}: normal light -> {args.checkpoint} ({kind}), "
                f"low light -> {args.low_light_checkpoint} ({low_kind})")
    print(desc, file=sys.stderr)
    summary = predict_folder(model, inp, out, low_model, args.threshold, max_side=args.max_side or None,
                             progress=not args.no_progress)
    print(summary.report())
    if not summary.ok:
        print("error: no image was matted" + ("" if summary.failed else f" (no image files in {inp})"),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
