"""The article's recipe, in one place: (model, data, stages, seed, profile) -> a training run
(notebook 06 and ``python -m lowlight.training``).

* :func:`build_model` -- the network, created under the run's seed;
* :func:`recipe_stages` -- the stage list of a family and recipe, each stage with its loss:
  CV-UNet's original (:data:`~lowlight.training.stages.BASELINE`, normal light) then the
  article's three stages; MODNet (shipped pretrained) the three stages (``"staged"``,
  ``"staged_llie"``) or the control, one stage with nothing frozen (``"onestage"``);
* the data of each stage -- :class:`~lowlight.training.data.LLMatteData` (CV-UNet, or any
  model given a data folder) or :class:`~lowlight.training.data.FinetuneData` (MODNet);
* :func:`train` -- runs a contiguous part of a stage list on one model, each stage from the one
  before, with checkpoints in ``out/<stage>/``; it holds the folder's lock
  (:func:`~lowlight.training.lock.run_lock`) and checks every checkpoint there against the run
  (:func:`~lowlight.training.resume.check_run_folder`) before it trains;
* :func:`finetune_modnet` -- the MODNet fine-tune of notebook 06, all of the above with the
  run folders of :class:`lowlight.config.RunLayout` and a ``summary.json``.

The command line only turns its arguments into these objects (:mod:`lowlight.training.cli`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import torch.nn as nn

from .. import config
from ..io import atomic_write_json, weights_digest
from ..models.weights import load_model_weights
from .data import INPUTS, FinetuneData, LLMatteData
from .lock import run_lock
from .resume import check_run_folder
from .stages import PRETRAINED_FAMILIES, BASELINE, LossSpec, StageSpec, article_stages, baseline_stage, one_stage
from .trainer import StageResult, Trainer, dist_info

__all__ = ["MODNET_RECIPES", "NIGHT", "INPUTS", "PreviousStageMissing", "build_model", "recipe_stages", "loader_settings",
           "train", "finetune_modnet", "LLMatteData", "FinetuneData"]

MODNET_RECIPES = ("staged", "onestage", "onestage_peak", "staged_llie", "night", "night_clean")

#: the night recipe (issue 20): the article's three stages trained by self-distillation only (the
#: original's daylight mattes are the targets, never the procedural portraits' true alpha), half of
#: the draws in daylight, and an L2-SP penalty towards the original's weights -- so that daylight
#: mattes stay what they were. ``night_clean`` is its control: the same in every respect but the
#: inputs, all of them in daylight (it isolates what training on *dark* inputs does).
NIGHT = {"signal": "distill", "normal_fraction": 0.5, "anchor": 1.0}


class PreviousStageMissing(FileNotFoundError):
    """A stage that continues from the one before it was asked for, and that one's checkpoint is
    not there. ``stage``: the stage asked for; ``previous``: the stage before; ``path``: its
    checkpoint."""

    def __init__(self, stage: str, previous: str, path: Path):
        super().__init__(f"stage {stage} starts from stage {previous}'s checkpoint {path}, which does not exist")
        self.stage, self.previous, self.path = stage, previous, Path(path)


def build_model(name: str, seed: int, pretrained=True, llie: str | None = None,
                llie_checkpoint: str | Path | None = None) -> nn.Module:
    """:func:`lowlight.models.create_model` after seeding everything with ``seed`` (what is not
    pretrained starts from the same random weights for the same seed); whenever ``pretrained`` is
    asked for, the encoder's batch-norm statistics stay fixed while training."""
    from ..models import create_model

    config.seed_everything(seed)
    return create_model(name, pretrained=pretrained, llie=llie, llie_checkpoint=llie_checkpoint,
                        bn_eval_encoder=bool(pretrained))


def recipe_stages(profile: config.Profile, family: str, recipe: str = "staged",
                  loss: LossSpec = LossSpec()) -> list[StageSpec]:
    """The stages of a run, in order, each minimising ``loss``: CV-UNet -- its original
    (:func:`baseline_stage`) then :func:`article_stages`; MODNet -- ``recipe`` ``"staged"`` or
    ``"staged_llie"``: :func:`article_stages`, ``"onestage"``: :func:`one_stage` at its own rate,
    ``"onestage_peak"``: :func:`one_stage` at the stages' peak rate (the first stage's), so that
    staged vs one stage is compared at a matched peak learning rate as well."""
    config.require_profile(profile, where="recipe_stages")
    if family == "cvunet":
        return [baseline_stage(profile, loss=loss)] + article_stages(profile, "cvunet", loss=loss)
    if recipe not in MODNET_RECIPES:
        raise ValueError(f"recipe: expected one of {MODNET_RECIPES}, got {recipe!r}")
    if recipe == "onestage":
        return [one_stage(profile, loss=loss)]
    if recipe == "onestage_peak":
        return [one_stage(profile, lr=max(st.lr for st in article_stages(profile, family)), loss=loss)]
    if recipe in ("night", "night_clean"):
        return [replace(s, anchor=NIGHT["anchor"]) for s in article_stages(profile, family, loss=loss)]
    return article_stages(profile, family, loss=loss)


def loader_settings(profile: config.Profile, family: str) -> tuple[int, int]:
    """``(batch size, loader workers)`` of a family's training: MODNet's fine-tune
    (``profile.finetune.batch_size``, 0 -- its set lives in memory), CV-UNet's
    (``profile.training.batch_size``, ``profile.data.num_workers``)."""
    p = config.require_profile(profile, where="loader_settings")
    if family in PRETRAINED_FAMILIES:
        return p.finetune.batch_size, 0
    return p.training.batch_size, p.data.num_workers


def _continue_from_previous(model: nn.Module, stages: Sequence[StageSpec], start: int, out: Path,
                            resume: bool) -> None:
    """Before running ``stages[start:]`` on its own: load the checkpoint of ``stages[start - 1]``
    from ``out`` (into the matting network when that stage is CV-UNet's original), unless the run
    resumes ``stages[start]`` from its own checkpoint."""
    if start == 0 or (resume and (out / stages[start].name / "last.pt").is_file()):
        return
    prev = stages[start - 1]
    path = out / prev.name / "last.pt"
    if not path.is_file():
        raise PreviousStageMissing(stages[start].name, prev.name, path)
    target = getattr(model, "matting", model) if prev.name == BASELINE else model
    load_model_weights(target, path)


def train(model: nn.Module, stages: Sequence[StageSpec], data: Callable[[StageSpec], tuple], profile: config.Profile,
          out: str | Path, seed: int, start: int = 0, stop: int | None = None, device=None, amp: str = "auto",
          batch_size: int | None = None, num_workers: int | None = None, resume: bool = False,
          progress: bool = False, log: Callable[[str], None] = print, new_settings: bool = False,
          on_step: Callable[[int, int], None] | None = None) -> list[StageResult]:
    """Train ``model`` through ``stages[start:stop]`` (a stage list of :func:`recipe_stages`, or
    your own), each stage from the one before, with checkpoints, logs and histories in
    ``out/<stage>/``; returns one :class:`StageResult` per stage.

    ``data(spec)`` gives each stage's ``(train, val)`` datasets (:class:`LLMatteData`,
    :class:`FinetuneData`). A run that starts after the first stage continues from the previous
    stage's checkpoint in ``out`` (:class:`PreviousStageMissing` when it is not there). Stages are
    numbered from 0 when the list starts with CV-UNet's original, else from 1: the number seeds
    the stage's sampling. ``batch_size``/``num_workers``: ``None`` takes
    ``profile.training.batch_size`` / ``profile.data.num_workers``. ``resume`` continues each
    stage from its own checkpoint (a finished stage is skipped); a checkpoint trained with other
    settings is refused unless ``new_settings`` (see :mod:`lowlight.training.resume`). The run
    holds ``out``'s lock throughout (:class:`~lowlight.training.lock.RunFolderLocked` when another
    run writes there). ``on_step(epoch, step)`` is called after each optimisation step (the command
    line stops there after a SIGTERM)."""
    config.require_profile(profile, where="train")
    if not stages:
        raise ValueError("train: no stages to run")
    out = Path(out)
    stop = len(stages) if stop is None else stop
    results = []
    with run_lock(out, log=log):
        check_run_folder(out, stages, start, stop, profile.name, getattr(getattr(model, "module", model), "arch", None),
                         batch_size or profile.training.batch_size, resume, new_settings)
        start_weights = {k: v.detach().clone() for k, v in getattr(model, "module", model).named_parameters()}
        _continue_from_previous(model, stages, start, out, resume)
        tr = Trainer(model, out, profile, device=device, amp=amp, batch_size=batch_size, num_workers=num_workers,
                     seed=seed, progress=progress, log=log, anchor_weights=start_weights)
        first = 0 if stages[0].name == BASELINE else 1
        for i in range(start, stop):
            spec = stages[i]
            train_set, val_set = data(spec)
            res = tr.run_stage(spec, train_set, val_set, stage_index=first + i, resume=resume,
                               new_settings=new_settings, on_step=on_step)
            tr.log(f"[{spec.name}] done: {res.epochs_run} epoch(s) in {res.seconds:.1f} s; trainable "
                   f"{res.trainable['trainable']:,} of {res.trainable['total']:,}; checkpoint {res.checkpoint}")
            results.append(res)
    return results


def _llie_path(prof: config.Profile, llie_checkpoint) -> Path:
    path = Path(llie_checkpoint) if llie_checkpoint else config.RunLayout.of(prof).llie_checkpoint
    if not path.is_file():
        raise FileNotFoundError(f"LLIE checkpoint {path} not found: notebook 04 writes it "
                                f"(python -m lowlight.reproduce --only 04 --profile {prof.name})")
    return path


def finetune_modnet(profile: config.Profile, recipe: str = "staged", seed: int = 0,
                    signal: str = "alpha+distill", inputs: str = "raw+processed", train_set=None, val_set=None,
                    out: str | Path | None = None,
                    device=None, amp: str = "auto", dynamic: str | None = "sample", resume: bool = False,
                    llie_checkpoint: str | Path | None = None, log: Callable[[str], None] = print,
                    new_settings: bool = False, model: str = "modnet") -> dict:
    """Fine-tune MODNet (or ``model``, another shipped model of :data:`PRETRAINED_FAMILIES`, e.g.
    ``"u2netp"``: the same recipe, its own daylight mattes as the teacher's) for low light; returns a
    summary (also ``summary.json`` in the run folder).

    ``recipe``: one of :data:`MODNET_RECIPES` (``"staged_llie"`` puts notebook 04's Zero-DCE++ in
    front, ``llie_checkpoint`` or the profile's; ``"night"`` and its control ``"night_clean"``: see
    :data:`NIGHT` -- they set the signal, the daylight share and the L2-SP weight themselves). ``train_set``, ``val_set``, ``signal`` and
    ``inputs``: see :class:`FinetuneData` (pass a built ``train_set`` to share the teacher's
    targets between runs); with ``inputs="raw"`` the run folder ends in ``_raw``. The loss is the
    article's (MSE + SSIM + edge) with brightness weights per ``dynamic`` (per sample by default);
    batch-norm statistics stay as shipped. ``resume``/``new_settings``: see :func:`train`; the run
    folder is locked and its checkpoints checked before anything is built.
    """
    prof = config.require_profile(profile, where="finetune_modnet")
    if recipe not in MODNET_RECIPES:
        raise ValueError(f"recipe: expected one of {MODNET_RECIPES}, got {recipe!r}")
    if inputs not in INPUTS:
        raise ValueError(f"inputs: expected one of {INPUTS}, got {inputs!r}")
    if model not in PRETRAINED_FAMILIES:
        raise ValueError(f"model: expected one of the shipped models {PRETRAINED_FAMILIES}, got {model!r}")
    llie = "zerodce" if recipe == "staged_llie" else None
    night = recipe in ("night", "night_clean")
    if night:
        signal = NIGHT["signal"]
    tag = (recipe + ("" if signal == "alpha+distill" or night else f"_{signal}")
           + ("" if inputs == "raw+processed" else f"_{inputs}"))
    run = Path(out) if out else config.RunLayout.of(prof).train_dir(model, tag, seed)
    stages = recipe_stages(prof, model, recipe, loss=LossSpec(dynamic=dynamic))
    batch, workers = loader_settings(prof, model)
    with run_lock(run, log=log):
        check_run_folder(run, stages, 0, len(stages), prof.name, {"model": model, "llie": llie}, batch, resume,
                         new_settings)
        net = build_model(model, seed, pretrained=True, llie=llie,
                            llie_checkpoint=_llie_path(prof, llie_checkpoint) if llie else None)
        data = FinetuneData(prof, seed, signal=signal, inputs=inputs, train_set=train_set, val_set=val_set,
                            normal_fraction={"night": NIGHT["normal_fraction"], "night_clean": 1.0}.get(recipe),
                            teacher=model)
        train_set, _ = data.sets()
        results = train(net, stages, data, prof, run, seed, device=device, amp=amp, batch_size=batch,
                        num_workers=workers, resume=resume, log=log, new_settings=new_settings)
        summary = _summary(prof, model, recipe, signal, inputs, seed, train_set, stages, results, net)
        if dist_info()[0] == 0:
            atomic_write_json(run / "summary.json", summary)
    return summary


def _summary(prof, name, recipe, signal, inputs, seed, train_set, stages, results, model) -> dict:
    """The summary of a :func:`finetune_modnet` run (``summary.json``)."""
    summary = {"profile": prof.name, "model": name, "recipe": recipe, "signal": signal, "inputs": inputs,
               "processed_fraction": train_set.processed_fraction, "normal_fraction": train_set.normal_fraction,
               "seed": seed,
               "train_samples": len(train_set), "stages": []}
    for spec, r in zip(stages, results):
        summary["stages"].append({"name": spec.name, "train": spec.train, "lr": spec.lr, "steps": spec.steps,
                                  "anchor": spec.anchor,
                                  "seconds": r.seconds, "trainable": r.trainable, "frozen": r.frozen,
                                  "checkpoint": r.checkpoint, "history": r.history})
    summary["seconds"] = sum(s["seconds"] for s in summary["stages"])
    summary["weights_sha256"] = weights_digest(model)
    return summary
