"""Stages as data, and what each one freezes (notebook 06).

The article's §5.1 table (:func:`article_stages`):

=======  ===============================  ======  ======  =============================
stage    frozen                           lr      epochs  purpose
=======  ===============================  ======  ======  =============================
1        everything but the head          1e-4    10      feature transfer
2        encoder stages 1-3               5e-5    20      mid-level adaptation
3        nothing                          1e-5    30      end-to-end refinement
=======  ===============================  ======  ======  =============================

The table speaks of CV-UNet. On MODNet the same intent maps onto its parameter groups
(:data:`STAGE_TRAIN`): the "head" is the fusion branch, the one that writes the final matte;
"encoder stages 1-3" are the MobileNetV2 backbone's first three stages (strides 2, 4, 8); stage 3
trains everything. On U²-Netp (the second shipped model) the "head" is its six side-output
convolutions and the fusion convolution, "encoder stages 1-3" its first three RSU blocks. Stage
lengths are counted in optimisation steps on the shipped models (their fine-tune runs on a laptop in
minutes, see the profiles) and in epochs on CV-UNet (the article's units).

Each stage also names its loss (:class:`LossSpec`): the article's MSE + SSIM + edge, with the
edge weight from the brightness rule (``dynamic``) or fixed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from .. import config
from ..losses import DYNAMIC_MODES, MattingLoss

__all__ = ["LossSpec", "StageSpec", "STAGE_TRAIN", "PRETRAINED_FAMILIES", "ARTICLE_LRS", "BASELINE", "article_stages", "one_stage",
           "baseline_stage", "apply_stage_freezing", "trainable_summary", "family_of"]

#: the article's learning rates for stages 1-3
ARTICLE_LRS = (1e-4, 5e-5, 1e-5)

#: which parameter groups train in each stage, per model family (``all-but:`` lists frozen ones)
STAGE_TRAIN = {
    "cvunet": {"stage1": "head", "stage2": "all-but:encoder.stage1,encoder.stage2,encoder.stage3",
               "stage3": "all"},
    "modnet": {"stage1": "fusion", "stage2": "all-but:backbone.stage1,backbone.stage2,backbone.stage3",
               "stage3": "all"},
    "u2netp": {"stage1": "head", "stage2": "all-but:encoder.stage1,encoder.stage2,encoder.stage3",
               "stage3": "all"},
}
#: families fine-tuned from shipped weights (no original to train first; stage lengths in steps)
PRETRAINED_FAMILIES = ("modnet", "u2netp")


#: the name of CV-UNet's from-scratch stage (numbered 0; the stages after it count from 1)
BASELINE = "baseline"


@dataclass(frozen=True)
class LossSpec:
    """Which :class:`lowlight.losses.MattingLoss` a stage trains with.

    ``lambdas``: the terms and their weights, as ``(term, weight)`` pairs in summation order (a
    dict is accepted); ``None`` is the article's MSE + SSIM + 2 x edge. ``dynamic``: the
    brightness rule for the edge weight, one of :data:`lowlight.losses.DYNAMIC_MODES` (``"batch"``
    is the article's per-batch rule, ``"sample"`` the same rule per sample), or ``None`` for the
    fixed edge weight of ``lambdas``."""

    lambdas: tuple[tuple[str, float], ...] | None = None
    dynamic: str | None = "sample"

    def __post_init__(self):
        if isinstance(self.lambdas, dict):
            object.__setattr__(self, "lambdas", tuple(self.lambdas.items()))
        if self.dynamic not in DYNAMIC_MODES:
            raise ValueError(f"LossSpec.dynamic: expected one of {DYNAMIC_MODES}, got {self.dynamic!r}")
        self.build()                  # the loss checks the terms and weights

    def build(self) -> MattingLoss:
        """A new loss module of this configuration."""
        return MattingLoss(lambdas=None if self.lambdas is None else dict(self.lambdas), dynamic=self.dynamic)


@dataclass(frozen=True)
class StageSpec:
    """One training stage. ``train`` names the parameter groups that learn (``"all"``, a comma list
    such as ``"head"``, or ``"all-but:<groups>"``). Its length is ``epochs`` or, when ``steps`` is
    set, that many optimisation steps (epochs then only pace validation and checkpoints). ``loss``:
    what it minimises (default: the article's loss with per-sample brightness weights). ``anchor``:
    the weight of an L2-SP penalty, ``anchor x sum((w - w0)^2)`` over the trainable weights, where
    ``w0`` are the weights the run started from (the original, for a pretrained model): it keeps the
    fine-tune near what the original does in daylight (0: no penalty, the article's recipe)."""

    name: str
    train: str
    lr: float
    epochs: int
    steps: int | None = None
    data_mode: str = "mixed"      # "normal" (CV-UNet baseline), "low" or "mixed" (low + normal_fraction)
    freeze_llie: bool = False     # only meaningful with an LLIE in front
    description: str = ""
    loss: LossSpec = LossSpec()
    anchor: float = 0.0

    def __post_init__(self):
        if not (isinstance(self.anchor, (int, float)) and 0 <= self.anchor < float("inf")):
            raise ValueError(f"stage {self.name}: anchor must be a finite number >= 0, got {self.anchor!r}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"stage {self.name}: epochs must be an integer >= 1, got {self.epochs!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ValueError(f"stage {self.name}: steps must be None or an integer >= 1, got {self.steps!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < float("inf")):
            raise ValueError(f"stage {self.name}: lr must be a finite number > 0, got {self.lr!r}")
        if not isinstance(self.loss, LossSpec):
            raise TypeError(f"stage {self.name}: loss must be a LossSpec, got {type(self.loss).__name__}")

    @property
    def n_epochs(self) -> int:
        """Epochs that hold at least one step: ``epochs``, at most ``steps``."""
        return self.epochs if self.steps is None else min(self.epochs, self.steps)


def family_of(model_name: str) -> str:
    """``"modnet"``, ``"u2netp"`` or ``"cvunet"`` for a :data:`lowlight.models.MODELS` name."""
    from ..models import MODELS

    if model_name not in MODELS:
        raise ValueError(f"model {model_name!r}: expected one of {', '.join(MODELS)}")
    return MODELS[model_name][0]


def _split_steps(total: int, parts: int) -> list[int]:
    base = [total // parts] * parts
    for i in range(total % parts):
        base[i] += 1
    return [max(1, b) for b in base]


def article_stages(profile: config.Profile, family: str = "modnet", loss: LossSpec = LossSpec()) -> list[StageSpec]:
    """The article's three stages for ``family`` with the profile's lengths and learning rates,
    each minimising ``loss``.

    MODNet: the article's rates as they are (a pretrained network; 10x larger rates collapse it,
    notebook 06), ``profile.finetune.steps`` steps per stage. CV-UNet: the article's rates times
    ``profile.training.lr_scale``, ``profile.training.stage_epochs`` epochs."""
    p = config.require_profile(profile, where="article_stages")
    if family not in STAGE_TRAIN:
        raise ValueError(f"family: expected one of {', '.join(STAGE_TRAIN)}, got {family!r}")
    names = ("stage1", "stage2", "stage3")
    why = ("freeze everything but the head (feature transfer)", "freeze encoder stages 1-3 (mid-level adaptation)",
           "nothing frozen but a pretrained LLIE (end-to-end refinement)")
    out = []
    for i, name in enumerate(names):
        if family in PRETRAINED_FAMILIES:
            spec = StageSpec(name, STAGE_TRAIN[family][name], ARTICLE_LRS[i], p.finetune.epochs[i],
                             steps=p.finetune.steps[i], freeze_llie=(i == 2), description=why[i], loss=loss)
        else:
            spec = StageSpec(name, STAGE_TRAIN[family][name], ARTICLE_LRS[i] * p.training.lr_scale,
                             p.training.stage_epochs[i], freeze_llie=(i == 2), description=why[i], loss=loss)
        out.append(spec)
    return out


def one_stage(profile: config.Profile, lr: float = 2e-5, loss: LossSpec = LossSpec()) -> StageSpec:
    """The control: MODNet fine-tuned in one stage, nothing frozen, for as many steps as the three
    stages together (the same sample budget) at a constant-scale rate between the article's stage 2
    and stage 3 rates."""
    p = config.require_profile(profile, where="one_stage")
    return StageSpec("full", "all", lr, sum(p.finetune.epochs), steps=sum(p.finetune.steps),
                     description="one stage, nothing frozen (control at the same sample budget)", loss=loss)


def baseline_stage(profile: config.Profile, lr: float = 3e-4, loss: LossSpec = LossSpec()) -> StageSpec:
    """CV-UNet's from-scratch path: the "original" CV-UNet trained on normal-light LL-Matte
    (lr x ``profile.training.lr_scale``, ``profile.training.baseline_epochs`` epochs)."""
    p = config.require_profile(profile, where="baseline_stage")
    return StageSpec(BASELINE, "all", lr * p.training.lr_scale, p.training.baseline_epochs, data_mode="normal",
                     description="the original CV-UNet: normal-light data only", loss=loss)


def _matting(model: nn.Module) -> nn.Module:
    m = getattr(model, "module", model)       # DistributedDataParallel
    return m.matting if hasattr(m, "matting") else m


def _check_groups(spec: StageSpec, names, groups) -> None:
    unknown = [g for g in names if g not in groups and not any(k.startswith(g + ".") for k in groups)]
    if unknown:
        raise ValueError(f"stage {spec.name}: unknown parameter groups {unknown}; the model has {list(groups)}")


def apply_stage_freezing(model: nn.Module, spec: StageSpec) -> list[str]:
    """Set ``requires_grad`` for a stage; returns the names of the frozen groups."""
    net = _matting(model)
    groups = net.param_groups()
    if spec.train == "all":
        net.unfreeze("all")
    elif spec.train.startswith("all-but:"):
        names = [g for g in spec.train[len("all-but:"):].split(",") if g]
        _check_groups(spec, names, groups)
        net.unfreeze("all")
        net.freeze(names)
    else:
        names = [g for g in spec.train.split(",") if g]
        _check_groups(spec, names, groups)
        net.freeze("all")
        net.unfreeze(names)
    frozen = [g for g, ps in net.param_groups().items() if not any(p.requires_grad for p in ps)]
    m = getattr(model, "module", model)
    if hasattr(m, "freeze_llie"):
        m.freeze_llie(spec.freeze_llie)
        if spec.freeze_llie:
            frozen.append("llie")
    return frozen


def trainable_summary(model: nn.Module) -> dict:
    """Trainable / total parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": train, "total": total, "fraction": train / max(total, 1)}
