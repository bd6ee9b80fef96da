"""The article's ``train.py``, working: ``python -m lowlight.training`` (notebook 06).

::

    python -m lowlight.training --model modnet --stage all --use-dynamic-loss          # MODNet, 3 stages
    python -m lowlight.training --model cvunet_swin --data-path ./data/lowlight_matting \\
        --batch-size 16 --lr 1e-4 --epochs 10 --stage 1 --use-dynamic-loss --profile full
    torchrun --nproc_per_node=4 -m lowlight.training --model cvunet --profile full --stage all

MODNet starts from its shipped weights (the original), so its stages are ``1``-``3``; CV-UNet's
original is trained first (``--stage baseline``). Stages after the first start from the previous
stage's checkpoint in ``--out``. Every argument is checked before anything trains; errors name
the argument and what was expected, and exit with status 2 (1 when training itself fails).

The run folder has one writer: a second run into the same ``--out`` stops at once, naming the
process that holds it (:mod:`lowlight.training.lock`). Every checkpoint already in ``--out`` is
checked against the run (profile, model; with ``--resume`` the learning rate, length, loss and
batch size) before a dataset is built or a file written (:mod:`lowlight.training.resume`);
``--resume-with-new-settings`` continues with changed settings on purpose. Warnings of the
training guard (weights that do not move, batches of constant targets) go to stderr as
``warning: ...``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch

from .. import config
from ..assets import AssetError
from ..data.photo_folder import PhotoFolderError
from ..io import CheckpointError, atomic_write_json, cli_error, weights_digest, writable_dir_problem
from .data import FinetuneData, LLMatteData
from .guard import CollapseError, TrainingWarning
from .lock import lock_busy, run_lock
from .recipe import PreviousStageMissing, build_model, loader_settings, recipe_stages, train
from .resume import check_run_folder
from .stages import BASELINE, PRETRAINED_FAMILIES, LossSpec, family_of
from .trainer import amp_setup, dist_info

__all__ = ["main"]


def _parse(argv):
    from ..models import MODELS

    ap = argparse.ArgumentParser(
        prog="python -m lowlight.training",
        description="Staged fine-tuning for low light (the article's train.py). MODNet starts from its shipped "
                    "weights; CV-UNet trains its original first. Under torchrun --nproc_per_node=N it trains "
                    "with DistributedDataParallel.")
    ap.add_argument("--model", default="modnet", choices=list(MODELS))
    ap.add_argument("--data-path", default=None, help="LL-Matte folder, Composition-1k fg/alpha/bg, image/alpha "
                                                      "pairs, or (MODNet with --signal distill) a folder of plain "
                                                      "photos (default: the profile's LL-Matte / fine-tuning set)")
    ap.add_argument("--heldout-share", type=float, default=0.2,
                    help="with a folder of plain photos: the share kept out of training for the report "
                         "(chosen by a hash of each file's relative path)")
    ap.add_argument("--anchor", type=float, default=0.0,
                    help="L2-SP weight: a penalty on the squared distance of the weights from the original's "
                         "(0: none, the article's recipe)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None, help="override the stage's learning rate")
    ap.add_argument("--epochs", type=int, default=None, help="override the stage's epochs")
    ap.add_argument("--steps", type=int, default=None, help="override the stage's optimisation steps (MODNet)")
    ap.add_argument("--stage", default="all", choices=["baseline", "1", "2", "3", "all"],
                    help="which stage to run; 1-3 start from the previous stage's checkpoint in --out")
    ap.add_argument("--use-dynamic-loss", action="store_true", help="brightness-dependent edge weight")
    ap.add_argument("--dynamic-mode", default="sample", choices=["batch", "sample", "smooth"],
                    help="with --use-dynamic-loss: the article's per-batch rule, or per sample")
    ap.add_argument("--signal", default="alpha+distill", choices=["alpha+distill", "distill"],
                    help="MODNet: true alpha + self-distillation, or self-distillation only")
    ap.add_argument("--inputs", default="raw+processed", choices=["raw+processed", "raw"],
                    help="MODNet: low-light draws as raw frames and phone-processed photos, or raw frames only")
    ap.add_argument("--llie", default=None, choices=["zerodce"], help="put a pretrained LLIE in front")
    ap.add_argument("--llie-checkpoint", default=None, help="the LLIE's weights (notebook 04's zerodce.pt)")
    ap.add_argument("--pretrained", default="yes",
                    help="'yes' (MODNet's weights), 'none', or a weights file for CV-UNet's encoder")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out (with the "
                                                          "settings they were trained with)")
    ap.add_argument("--resume-with-new-settings", action="store_true",
                    help="with --resume: continue with changed --lr/--steps/--epochs/--batch-size/loss settings "
                         "(the optimiser and schedule take them from the step reached)")
    ap.add_argument("--out", default=None, help="output folder (default runs/<profile>/cli/<model>)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--amp", default="auto", choices=["auto", "off", "fp16", "bf16"])
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    return ap.parse_args(argv)


def _check_args(args, prof) -> str | None:
    """The first problem with the arguments, as a message naming the argument, or None."""
    family = family_of(args.model)
    for name in ("batch_size", "epochs", "steps", "workers"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "workers" else 1):
            return f"--{name.replace('_', '-')} {v}: expected an integer >= {0 if name == 'workers' else 1}"
    if args.lr is not None and not 0 < args.lr < float("inf"):
        return f"--lr {args.lr}: expected a finite number > 0"
    if not 0 <= args.anchor < float("inf"):
        return f"--anchor {args.anchor}: expected a finite number >= 0"
    if not 0 <= args.heldout_share < 1:
        return f"--heldout-share {args.heldout_share}: expected a number in [0, 1)"
    if args.resume_with_new_settings and not args.resume:
        return "--resume-with-new-settings: given without --resume"
    if family in PRETRAINED_FAMILIES and args.stage == "baseline":
        return (f"--stage baseline: {args.model}'s original is the shipped model; its stages are 1, 2, 3 or all")
    if args.llie and not args.llie_checkpoint:
        return ("--llie zerodce needs --llie-checkpoint (the pretrained Zero-DCE++ of notebook 04, "
                f"{config.RunLayout.of(prof).llie_checkpoint}); a random LLIE in front would only add noise")
    if args.llie_checkpoint and not args.llie:
        return f"--llie-checkpoint {args.llie_checkpoint}: given without --llie zerodce"
    if args.llie_checkpoint and not Path(args.llie_checkpoint).is_file():
        return f"--llie-checkpoint {args.llie_checkpoint}: no such file"
    if args.pretrained not in ("yes", "none", "modnet") and not Path(args.pretrained).is_file():
        return f"--pretrained {args.pretrained}: expected 'yes', 'none' or an existing weights file"
    if family in PRETRAINED_FAMILIES and args.pretrained not in ("yes", "none"):
        return f"--pretrained {args.pretrained}: {args.model} takes 'yes' (its shipped weights) or 'none'"
    if args.data_path and not Path(args.data_path).is_dir():
        return f"--data-path {args.data_path}: not a folder"
    if args.data_path and family in PRETRAINED_FAMILIES and _plain_photos(Path(args.data_path)) \
            and args.signal != "distill":
        return (f"--data-path {args.data_path}: a folder of plain photos has no mattes; fine-tune on it with "
                "--signal distill (the original's daylight mattes are the targets)")
    try:
        device = config.get_device(args.device)
    except (ValueError, RuntimeError) as exc:
        return f"--device {args.device}: {exc}"
    try:
        amp_setup(device, args.amp)
    except ValueError as exc:
        return f"--amp {args.amp}: {exc}"
    return None


def main(argv: Sequence[str] | None = None, after_training=None) -> int:
    args = _parse(argv)

    fail = cli_error

    try:
        prof = config.get_profile(args.profile)
    except ValueError as exc:
        return fail(f"--profile: {exc}")
    problem = _check_args(args, prof)
    if problem:
        return fail(problem)
    family = family_of(args.model)
    out = Path(args.out) if args.out else config.RunLayout.of(prof).root / "cli" / args.model
    problem = writable_dir_problem(out, "--out")
    if problem:
        return fail(problem)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = args.device
    if world > 1:
        torch.distributed.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        else:
            device = "cpu"
    seed = prof.seed if args.seed is None else args.seed
    try:
        with warnings.catch_warnings(), _sigterm_exits():
            warnings.simplefilter("always", TrainingWarning)
            warnings.showwarning = _show_warning
            return _train(args, prof, family, out, device, seed, after_training)
    except AssetError as exc:       # the shipped weights cannot be had (offline, damaged cache): one line, exit 2
        return fail(str(exc))
    except PhotoFolderError as exc:  # a folder of photos that cannot be used: nothing was trained
        return fail(str(exc))
    except (CollapseError, CheckpointError, FileNotFoundError, FileExistsError, ValueError, OSError) as exc:
        return fail(str(exc), 1)
    finally:
        if world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@contextlib.contextmanager
def _sigterm_exits():
    """SIGTERM (``kill``, torchrun stopping its workers) ends the run like an exception, so that the
    run folder's lock is released (by default it would end the process on the spot): exit status 143.

    The handler raises ``SystemExit`` wherever the main thread is. If that is inside a finalizer
    (``__del__``, a ``weakref`` callback, a garbage collection), Python prints the exception and
    goes on, and the run would end with status 0 as if nothing had been asked. So the signal is also
    recorded, the trainer's step loop asks :func:`_terminated` after each step, and leaving this
    block after a recorded signal raises the exit again. While the run folder's lock is being taken
    or released (:func:`~lowlight.training.lock.lock_busy`), and for a second signal, the handler
    only records: the run stops as soon as it holds the lock (:func:`_train` asks right then)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def stop(signum, _frame):
        _RECEIVED.append(signum)
        if len(_RECEIVED) == 1 and not lock_busy():
            raise SystemExit(128 + signum)

    _RECEIVED.clear()
    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _terminated()


#: signals received by :func:`_sigterm_exits`'s handler in this process
_RECEIVED: list[int] = []


def _terminated(*_step) -> None:
    """Raise the exit a received SIGTERM asked for, if its first ``SystemExit`` was swallowed."""
    if _RECEIVED:
        raise SystemExit(128 + _RECEIVED[0])


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on stderr as ``warning: ...`` (the category named unless it is the guard's)."""
    kind = "" if issubclass(category, TrainingWarning) else f"{category.__name__}: "
    print(f"warning: {kind}{message}", file=sys.stderr, flush=True)


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _plain_photos(root: Path) -> bool:
    """Whether ``root`` is none of the labelled layouts (LL-Matte, Composition-1k, image/alpha)."""
    labelled = ((root / "manifest.json").is_file() or ((root / "fg").is_dir() and (root / "bg").is_dir())
                or (root / "image").is_dir() or (root / "images").is_dir())
    return not labelled


def _data(args, prof, family, out: Path, seed: int):
    """``(data source of the run, the photo folder or None)``: a folder of plain photos (a shipped model,
    self-distillation), a labelled folder or LL-Matte (CV-UNet, or any model given a labelled folder),
    or MODNet's fine-tuning set."""
    if args.data_path and family in PRETRAINED_FAMILIES and _plain_photos(Path(args.data_path)):
        from ..data import scan_photo_folder
        from ..models import create_model
        from .data import build_photo_finetune_set

        photos = scan_photo_folder(args.data_path, heldout_share=args.heldout_share)
        _err(photos.describe())
        teacher = create_model(args.model)
        train_set = build_photo_finetune_set(prof, photos, teacher=teacher, seed=seed,
                                             cache=out / "teacher_mattes.npz", log=_err)
        val_set = (build_photo_finetune_set(prof, replace(photos, train=photos.heldout), teacher=teacher, seed=seed,
                                            processed=False, log=lambda *_: None).with_normal(0.0)
                   if photos.heldout else [])
        atomic_write_json(out / "photos.json", {"root": str(photos.root), "train": photos.train,
                                                "heldout": photos.heldout, "skipped": photos.skipped,
                                                "heldout_share": photos.heldout_share})
        return FinetuneData(prof, seed, signal="distill", inputs=args.inputs, train_set=train_set,
                            val_set=val_set), photos
    if args.data_path or family == "cvunet":
        return LLMatteData(prof, seed, data_path=args.data_path), None
    return FinetuneData(prof, seed, signal=args.signal, inputs=args.inputs, teacher=args.model), None


def _stages(args, prof, family):
    """The recipe's stage list with the loss of ``--use-dynamic-loss``/``--dynamic-mode``, and the
    ``(start, stop)`` of ``--stage`` in it, the chosen stages changed by ``--lr/--epochs/--steps``."""
    loss = LossSpec(dynamic=args.dynamic_mode if args.use_dynamic_loss else None)
    stages = recipe_stages(prof, family, loss=loss)
    wanted = {"all": None, "baseline": BASELINE}.get(args.stage, f"stage{args.stage}")
    names = [s.name for s in stages]
    start, stop = (0, len(stages)) if wanted is None else (names.index(wanted), names.index(wanted) + 1)
    if args.lr is not None or args.epochs is not None or args.steps is not None:
        stages[start:stop] = [replace(s, lr=args.lr or s.lr, epochs=args.epochs or s.epochs,
                                      steps=args.steps or s.steps) for s in stages[start:stop]]
    if args.anchor:
        stages = [replace(s, anchor=args.anchor) for s in stages]
    return stages, start, stop


def _train(args, prof, family, out: Path, device, seed: int, after_training=None) -> int:
    """Lock ``out``, check its checkpoints against the run, then build and train (see the module docstring).
    ``after_training``: called on rank 0 when a run on a folder of plain photos has trained its last stage
    (``python -m lowlight.training`` passes :func:`lowlight.adapt.report_on_heldout`: the report on the
    held-out photos)."""
    stages, start, stop = _stages(args, prof, family)
    batch, workers = loader_settings(prof, family)
    batch = args.batch_size or batch
    with run_lock(out, log=_err):
        _terminated()                       # a SIGTERM that came while the lock was being taken
        check_run_folder(out, stages, start, stop, prof.name, {"model": args.model, "llie": args.llie}, batch,
                         args.resume, args.resume_with_new_settings)
        pretrained = {"yes": True, "none": False}.get(args.pretrained, args.pretrained)
        model = build_model(args.model, seed, pretrained=pretrained, llie=args.llie,
                            llie_checkpoint=args.llie_checkpoint)
        data, photos = _data(args, prof, family, out, seed)
        t0 = time.perf_counter()
        try:
            results = train(model, stages, data, prof, out, seed, start=start, stop=stop, device=device, amp=args.amp,
                  batch_size=batch, num_workers=workers if args.workers is None else args.workers,
                  resume=args.resume, progress=True, new_settings=args.resume_with_new_settings,
                  on_step=_terminated)
        except PreviousStageMissing as exc:
            print(f"error: --stage {args.stage}: needs the previous stage's checkpoint {exc.path} (run --stage "
                  f"{exc.previous.replace('stage', '')} first, same --out)", file=sys.stderr)
            return 2
        if after_training is not None and photos is not None and stop == len(stages) and dist_info()[0] == 0:
            after_training(out, prof, args.model, model, photos, data.sets()[0], stages[start:stop], results, seed,
                           time.perf_counter() - t0, log=_err)
            print(f"report: {out / 'report.html'} (and report.md)", flush=True)
    print(f"rank {dist_info()[0]} final weights sha256 {weights_digest(model)}", flush=True)
    if dist_info()[1] > 1:
        torch.distributed.barrier()
    return 0
