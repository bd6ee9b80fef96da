"""What the checkpoints in a run folder may be resumed with (notebook 06, ``--resume``).

A checkpoint ``out/<stage>/last.pt`` records the profile, the model (``arch``), the stage's
settings (``spec``: learning rate, length, loss, ...) and the batch size it was trained with.
Resuming it with anything else is refused, naming each difference -- the setting, the
checkpoint's value and the new one:

* another profile or model: always (:func:`check_identity`); the command line checks every
  checkpoint in the folder before it builds a dataset or writes a file (:func:`check_run_folder`);
* another learning rate, length (steps, epochs), loss, anchor weight or batch size (:func:`settings_changes`):
  unless the run says to continue with the new settings (``--resume-with-new-settings``,
  ``new_settings=True``); then the optimiser and the cosine schedule are set to them from the
  step reached (:meth:`lowlight.training.Trainer.resume`) and the checkpoint records them, and
  the change, truthfully.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from ..io import CheckpointError, load_checkpoint
from .stages import BASELINE, StageSpec

__all__ = ["SETTINGS", "settings_changes", "describe_changes", "check_identity", "check_settings",
           "check_run_folder", "existing_checkpoint", "read_checkpoint_meta"]

#: the settings compared on resume, each with what sets it on the command line
SETTINGS = {"lr": "--lr", "steps": "--steps", "epochs": "--epochs", "batch_size": "--batch-size",
            "loss": "--use-dynamic-loss/--dynamic-mode", "train": "the stage's trained groups",
            "data_mode": "the stage's data", "freeze_llie": "the stage's LLIE freezing",
            "anchor": "--anchor"}


def _plain(v):
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def settings_changes(ck: dict, spec: StageSpec, batch_size: int) -> list[tuple[str, object, object]]:
    """``(setting, checkpoint's value, new value)`` for each of :data:`SETTINGS` that differs
    between checkpoint ``ck`` and a run of ``spec`` with ``batch_size`` (settings the checkpoint
    does not record are not compared)."""
    old = dict(ck.get("spec") or {})
    if "batch_size" in ck:
        old["batch_size"] = ck["batch_size"]
    new = {**asdict(spec), "batch_size": batch_size}
    return [(k, old[k], new[k]) for k in SETTINGS if k in old and _plain(old[k]) != _plain(new[k])]


def _show(v) -> str:
    return f"{v:g}" if isinstance(v, float) else repr(v) if isinstance(v, (str, dict)) else str(v)


def describe_changes(path: Path, changes) -> str:
    """The refusal of resuming ``path`` with ``changes`` (of :func:`settings_changes`)."""
    each = "; ".join(f"{SETTINGS[k]}: the checkpoint has {_show(old)}, this run {_show(new)}"
                     for k, old, new in changes)
    return (f"checkpoint {path}: this run's settings differ from the ones it was trained with -- {each}. Resume with "
            "the checkpoint's settings, or pass --resume-with-new-settings (Python: new_settings=True) to continue "
            "with the new ones from the step reached")


def check_identity(ck: dict, path: Path, profile: str, arch: dict | None, matting_only: bool = False) -> None:
    """Refuse (:class:`CheckpointError`) a checkpoint of another profile or model (``matting_only``:
    compare the matting network only, not the LLIE in front of it)."""
    if ck.get("profile") not in (None, profile):
        raise CheckpointError(f"checkpoint {path}: written with profile {ck.get('profile')!r}, not "
                              f"{profile!r}; resume with the same --profile or use another --out")
    held = ck.get("arch")
    keys = ("model",) if matting_only else ("model", "llie")
    if held is not None and arch is not None and any(dict(held).get(k) != dict(arch).get(k) for k in keys):
        raise CheckpointError(f"checkpoint {path}: holds model {held}, not {arch}; "
                              "resume with the same --model/--llie or use another --out")


def read_checkpoint_meta(path: Path) -> dict:
    """A checkpoint's entries with its tensors memory-mapped, not read (cheap for a large file);
    an unreadable file raises :func:`lowlight.io.load_checkpoint`'s :class:`CheckpointError`."""
    import torch

    try:
        ck = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - let the one loader word the refusal
        ck = None
    return ck if isinstance(ck, dict) and "model" in ck else load_checkpoint(path)


def check_run_folder(out: str | Path, stages: Sequence[StageSpec], start: int, stop: int, profile: str,
                     arch: dict | None, batch_size: int, resume: bool, new_settings: bool = False) -> None:
    """Everything :meth:`~lowlight.training.Trainer.resume` would refuse, checked before any work:
    every checkpoint in ``out`` belongs to ``profile`` and ``arch`` (CV-UNet's original to its matting
    network: the stages with an LLIE in front start from an original trained without one); each stage of
    ``stages[start:stop]`` that has a checkpoint is resumed (``resume``, else
    :class:`FileExistsError`) with its settings, or ``new_settings`` is given."""
    out = Path(out)
    for path in sorted(out.glob("*/last.pt")):
        check_identity(read_checkpoint_meta(path), path, profile, arch, matting_only=path.parent.name == BASELINE)
    for spec in stages[start:stop]:
        path = out / spec.name / "last.pt"
        if not path.is_file():
            continue
        if not resume:
            raise existing_checkpoint(path)
        check_settings(read_checkpoint_meta(path), path, spec, batch_size, new_settings)


def existing_checkpoint(path: Path) -> FileExistsError:
    """The refusal of a run without ``resume`` whose stage already has checkpoint ``path``."""
    return FileExistsError(f"{path} exists: pass resume=True (--resume) to continue that run, "
                           "or choose another output folder (--out)")


def check_settings(ck: dict, path: Path, spec: StageSpec, batch_size: int, new_settings: bool) -> list:
    """The changes of :func:`settings_changes`; refused unless ``new_settings``, and even then
    when the checkpoint has already taken more steps than the new length allows."""
    changes = settings_changes(ck, spec, batch_size)
    if changes and not new_settings:
        raise CheckpointError(describe_changes(path, changes))
    done, epochs = int(ck.get("step", 0)), int(ck.get("epoch", 0))
    if spec.steps is not None and done > spec.steps:
        raise CheckpointError(f"checkpoint {path}: has taken {done} steps already, more than the {spec.steps} of "
                              "this run (--steps); resume with at least as many steps")
    if changes and spec.steps is not None and done < spec.steps and epochs >= spec.n_epochs:
        raise CheckpointError(f"checkpoint {path}: the stage finished its {epochs} epoch(s) at step {done}; to train "
                              f"it to {spec.steps} steps give it more epochs too (--epochs)")
    return changes

