"""The article's recipe end to end, for MODNet (the course's original) and for CV-UNet (notebook 06).

* :func:`finetune_modnet` -- MODNet as shipped, fine-tuned for low light: the article's three
  stages (``recipe="staged"``), or the control at the same sample budget, one stage with nothing
  frozen (``recipe="onestage"``), optionally with Zero-DCE++ in front (``recipe="staged_llie"``).
* :func:`train_cvunet` -- the article's own architecture from scratch: the "original" CV-UNet on
  normal light (MODNet's encoder as its start), then the three stages. Meant for the ``full``
  profile on a GPU.

Checkpoints and summaries land where :class:`lowlight.config.RunLayout` says.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .. import config
from ..io import atomic_write_json, load_model_weights, weights_digest
from .stages import article_stages, baseline_stage, one_stage
from .trainer import Trainer, dist_info

__all__ = ["MODNET_RECIPES", "INPUTS", "finetune_modnet", "train_cvunet", "BASELINE_LAMBDAS"]

MODNET_RECIPES = ("staged", "onestage", "staged_llie")
#: the low-light inputs of the MODNet fine-tune: raw sensor frames and phone-processed photos
#: (``profile.ft_processed`` of the draws), or raw frames only (the control)
INPUTS = ("raw+processed", "raw")

#: CV-UNet's original is trained with MSE + L1 (the article does not say how CV-UNet was trained;
#: these two converge fastest on a short budget); fine-tuning then uses the article's loss
BASELINE_LAMBDAS = {"mse": 1.0, "l1": 1.0}


def _llie_path(prof: config.Profile, llie_checkpoint) -> Path:
    path = Path(llie_checkpoint) if llie_checkpoint else config.RunLayout.of(prof).llie_checkpoint
    if not path.is_file():
        raise FileNotFoundError(f"LLIE checkpoint {path} not found: notebook 04 writes it "
                                f"(python -m lowlight.reproduce --only 04 --profile {prof.name})")
    return path


def finetune_modnet(profile: config.Profile | str | None = None, recipe: str = "staged", seed: int = 0,
                    signal: str = "alpha+distill", inputs: str = "raw+processed", train_set=None, val_set=None,
                    out: str | Path | None = None,
                    device=None, amp: str = "auto", dynamic: str | None = "sample", resume: bool = False,
                    llie_checkpoint: str | Path | None = None, log: Callable[[str], None] = print) -> dict:
    """Fine-tune MODNet for low light; returns a summary (also ``summary.json`` in the run folder).

    ``train_set``: a :class:`~lowlight.training.data.FinetuneSet` (built when ``None``; pass one to
    share the teacher's targets between runs), used with ``seed``, ``signal`` and ``inputs``
    (``"raw+processed"``: ``profile.ft_processed`` of the low-light draws are phone-processed
    photos; ``"raw"``: sensor frames only -- the run folder then ends in ``_raw``).
    ``val_set``: validation samples with true alpha (default: the fine-tuning LL-Matte's
    validation split, low light). The loss is the article's (MSE + SSIM + edge) with per-sample
    brightness weights (``dynamic="sample"``); batch-norm statistics stay as shipped.
    """
    from ..data import LLMatteDataset
    from ..models import create_model
    from ..data import finetune_llmatte
    from .data import build_finetune_set

    prof = config.as_profile(profile)
    if recipe not in MODNET_RECIPES:
        raise ValueError(f"recipe: expected one of {MODNET_RECIPES}, got {recipe!r}")
    if inputs not in INPUTS:
        raise ValueError(f"inputs: expected one of {INPUTS}, got {inputs!r}")
    config.seed_everything(seed)
    llie = "zerodce" if recipe == "staged_llie" else None
    model = create_model("modnet", pretrained=True, llie=llie,
                         llie_checkpoint=_llie_path(prof, llie_checkpoint) if llie else None)
    if train_set is None:
        train_set = build_finetune_set(prof, signal=signal, seed=seed)
    train_set = train_set.with_seed(seed).with_signal(signal).with_processed(
        prof.ft_processed if inputs == "raw+processed" else 0.0)
    if val_set is None:
        val_set = LLMatteDataset("val", prof, mode="low", path=finetune_llmatte(prof))
    tag = (recipe + ("" if signal == "alpha+distill" else f"_{signal}")
           + ("" if inputs == "raw+processed" else f"_{inputs}"))
    run = Path(out) if out else config.RunLayout.of(prof).train_dir("modnet", tag, seed)
    tr = Trainer(model, run, prof, device=device, amp=amp, dynamic=dynamic, batch_size=prof.ft_batch,
                 num_workers=0, seed=seed, log=log)
    stages = article_stages(prof, "modnet") if recipe != "onestage" else [one_stage(prof)]
    summary = {"profile": prof.name, "model": "modnet", "recipe": recipe, "signal": signal, "inputs": inputs,
               "processed_fraction": train_set.processed_fraction, "seed": seed,
               "train_samples": len(train_set), "stages": []}
    for i, spec in enumerate(stages, start=1):
        r = tr.run_stage(spec, train_set, val_set, stage_index=i, resume=resume)
        summary["stages"].append({"name": spec.name, "train": spec.train, "lr": spec.lr, "steps": spec.steps,
                                  "seconds": r.seconds, "trainable": r.trainable, "frozen": r.frozen,
                                  "checkpoint": r.checkpoint, "history": r.history})
    summary["seconds"] = sum(s["seconds"] for s in summary["stages"])
    summary["weights_sha256"] = weights_digest(model)
    if dist_info()[0] == 0:
        atomic_write_json(run / "summary.json", summary)
    return summary


def train_cvunet(profile: config.Profile | str | None = None, model_name: str = "cvunet", variant: str = "plain",
                 seed: int | None = None, out: str | Path | None = None, device=None, amp: str = "auto",
                 dynamic: str | None = "sample", llie_checkpoint: str | Path | None = None, resume: bool = False,
                 data_path=None, log: Callable[[str], None] = print) -> dict:
    """CV-UNet from scratch: the original (normal light, MODNet-initialised encoder), then the
    article's three stages, ``variant="plain"`` or ``"llie"`` (the pretrained LLIE of notebook 04 in
    front, frozen in stage 3). Returns a summary (``summary.json`` beside the stage folders)."""
    from ..models import create_model
    from .data import make_datasets

    prof = config.as_profile(profile)
    seed = prof.seed if seed is None else seed
    if variant not in ("plain", "llie"):
        raise ValueError(f"variant: expected 'plain' or 'llie', got {variant!r}")
    layout = config.RunLayout.of(prof)
    root = Path(out) if out else layout.train_dir(model_name, "staged" if variant == "plain" else "staged_llie", seed)
    base_root = Path(out) / "original" if out else layout.train_dir(model_name, "original", seed)
    config.seed_everything(seed)
    summary = {"profile": prof.name, "model": model_name, "variant": variant, "seed": seed, "stages": []}
    base = create_model(model_name, pretrained=True)
    base_ckpt = base_root / "baseline" / "last.pt"
    if not base_ckpt.is_file() or resume:
        tr = Trainer(base, base_root, prof, device=device, amp=amp, dynamic=None, log=log, lambdas=BASELINE_LAMBDAS,
                     seed=seed)
        train_n, val = make_datasets(prof, data_path, mode="normal", seed=seed)
        res = tr.run_stage(baseline_stage(prof), train_n, val, stage_index=0, resume=resume)
        summary["baseline"] = {"checkpoint": str(base_ckpt), "seconds": res.seconds, "history": res.history}
    else:
        log(f"[baseline] using the trained original {base_ckpt}")
        summary["baseline"] = {"checkpoint": str(base_ckpt), "seconds": 0.0, "history": []}
    if variant == "llie":
        model = create_model(model_name, pretrained=False, llie="zerodce",
                             llie_checkpoint=_llie_path(prof, llie_checkpoint), bn_eval_encoder=True)
        load_model_weights(model.matting, base_ckpt)
    else:
        model = create_model(model_name, pretrained=False, bn_eval_encoder=True)
        load_model_weights(model, base_ckpt)
    tr = Trainer(model, root, prof, device=device, amp=amp, dynamic=dynamic, log=log, seed=seed)
    train_l, val = make_datasets(prof, data_path, mode="mixed", seed=seed)
    for i, spec in enumerate(article_stages(prof, "cvunet"), start=1):
        r = tr.run_stage(spec, train_l, val, stage_index=i, resume=resume)
        summary["stages"].append({"name": spec.name, "seconds": r.seconds, "trainable": r.trainable,
                                  "frozen": r.frozen, "checkpoint": r.checkpoint, "history": r.history})
    summary["weights_sha256"] = weights_digest(model)
    if dist_info()[0] == 0:
        atomic_write_json(root / "summary.json", summary)
    return summary
