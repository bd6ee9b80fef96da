"""The training guard: what stops a stage, or warns, instead of letting it train on silently
(notebook 06). One :class:`StageGuard` per stage run; the trainer feeds it every batch and asks
it at the end of every epoch, *before* that epoch's checkpoint is written -- a stage that a
collapse or broken data stopped leaves no checkpoint that looks finished.

**Non-finite loss** -- stops at that step (:class:`CollapseError`).

**Collapse** -- judged against the model's own starting behaviour, not against a fixed spread.
Before the stage's first step the guard keeps a *probe*: the first batch's images whose target
matte varies (up to :attr:`StageGuard.PROBE_IMAGES`), each dark one also brightened to a mean of
0.4 (an auto-exposure: a model that is blind in the dark still answers on it), and the prediction
spread (standard deviation over each image) the model gives on them before training. At the end
of each epoch the model runs on the probe again (eval mode, no gradient: nothing in the training
changes). The stage stops when **every** probe image whose starting spread was measurable now
gets a constant matte -- spread below :attr:`~StageGuard.COLLAPSE_STD` *and* below
:attr:`~StageGuard.COLLAPSE_DROP` times its starting spread -- **and** the weights moved (their
relative change exceeds :attr:`~StageGuard.STILL`). Why relative: MODNet as shipped gives an
almost constant matte on very dark or tiny inputs (spreads of 1e-5 to 1e-3 on the ``smoke``
profile's 64-pixel images), and a model that learns may lower such a spread ten- or a hundredfold
for a few steps; a learning rate that destroys the model saturates it to spreads of 1e-9 or 0. A
collapse in the last step of a stage is caught at the end of that stage, however short.

**No learning** -- weights that did not move (relative change at most :attr:`~StageGuard.STILL`,
e.g. a learning rate of 1e-12) are not a collapse: a warning (:class:`TrainingWarning`) says so,
once per stage.

**Constant targets** -- a batch whose every target matte is constant (each one a single value:
all-zero alpha files, say) teaches nothing about mattes. Such batches are counted; when every
batch a stage has trained on so far is one of them, the stage stops at the end of that epoch
(:class:`ConstantTargetsError`, the data is broken); when only some are, the stage ends with one
warning giving the count.

Under ``torchrun`` each process judges its own probe and counts its own batches; the trainer sums
the verdicts over the processes, so that all of them stop (or warn) together.
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["CollapseError", "ConstantTargetsError", "TrainingWarning", "StageGuard"]


class CollapseError(FloatingPointError):
    """Training diverged: a non-finite loss, or predictions collapsed to a constant."""


class ConstantTargetsError(ValueError):
    """Every training batch of a stage had constant target mattes (e.g. all-zero alpha)."""


class TrainingWarning(UserWarning):
    """Training ran, but something in it deserves a look (no learning, constant targets)."""


def _spread(p: torch.Tensor) -> torch.Tensor:
    """Standard deviation of each image's prediction, float64 on the CPU."""
    return p.detach().float().flatten(1).std(1).double().cpu()


class StageGuard:
    """The guard of one stage run (see the module docstring). ``params``: the parameters the
    stage trains (their movement is measured from the first batch on)."""

    #: a probe image's matte counts as constant below this spread ...
    COLLAPSE_STD = 1e-3
    #: ... and below this fraction of the spread it started with
    COLLAPSE_DROP = 1e-3
    #: a target matte with a spread above this varies (the probe keeps only such images)
    TARGET_STD = 0.05
    #: the weights moved when their relative change (L2 over all trained parameters) exceeds this
    STILL = 1e-6
    #: probe images at most (the first batch's images whose targets vary)
    PROBE_IMAGES = 4
    #: images darker than this mean are also probed brightened to :attr:`EXPOSE_MEAN`
    DARK_MEAN = 0.2
    EXPOSE_MEAN = 0.4

    def __init__(self, name: str, lr: float, params: list):
        self.name, self.lr, self.params = name, float(lr), list(params)
        self.start_weights: list[torch.Tensor] | None = None
        self.probe: torch.Tensor | None = None
        self.start_spread: torch.Tensor | None = None
        self.flat_batches: torch.Tensor | None = None     # on the device: no host sync per step
        self.batches = 0
        self.warned: set[str] = set()

    def where(self, step: int) -> str:
        return f"stage {self.name} (learning rate {self.lr:g}), step {step}"

    # ------------------------------------------------------------------ every step
    def check_loss(self, total: torch.Tensor, terms: dict, step: int) -> None:
        """Stop on a non-finite loss (``step``: the step being taken, from 1)."""
        if not torch.isfinite(total):
            raise CollapseError(f"{self.where(step)}: non-finite loss ({float(total.detach())}); terms "
                                f"{ {k: float(v) for k, v in terms.items()} }. Lower the learning rate.")

    def observe(self, x: torch.Tensor, a: torch.Tensor, predict: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Before a step's update: count a batch of constant targets; on the first batch, keep
        the weights and (on the first batch whose targets vary) the probe with its starting spread."""
        flat = (a.amax(dim=(1, 2, 3)) == a.amin(dim=(1, 2, 3))).all().long()
        self.flat_batches = flat if self.flat_batches is None else self.flat_batches + flat
        self.batches += 1
        if self.start_weights is None:
            self.start_weights = [p.detach().clone() for p in self.params]
        if self.probe is None:
            varies = _spread(a) > self.TARGET_STD
            if bool(varies.any()):
                xs = x[varies.to(x.device)][: self.PROBE_IMAGES].detach()
                mean = xs.float().mean(dim=(1, 2, 3))
                dark = mean < self.DARK_MEAN
                bright = (xs[dark].float() * (self.EXPOSE_MEAN / mean[dark].clamp_min(1e-4)).view(-1, 1, 1, 1))
                self.probe = torch.cat([xs, bright.clamp(0, 1).to(xs.dtype)]).clone()
                self.start_spread = _spread(predict(self.probe))

    # ------------------------------------------------------------------ every epoch
    def moved(self) -> float:
        """Relative change of the trained weights since the first batch (L2 over all of them)."""
        if self.start_weights is None:
            return 0.0
        pairs = zip(self.params, self.start_weights)
        diff = sum(float((p.detach().double() - w.double()).pow(2).sum()) for p, w in pairs)
        base = sum(float(w.double().pow(2).sum()) for w in self.start_weights)
        return (diff / max(base, 1e-30)) ** 0.5

    def _collapse(self, predict) -> tuple[bool, str]:
        """Whether this process's probe shows a collapse, and its numbers for the message."""
        if self.probe is None:
            return False, ""
        judged = self.start_spread > 1e-9
        if not bool(judged.any()):
            return False, ""
        now = _spread(predict(self.probe))
        flat = (now < self.COLLAPSE_STD) & (now <= self.start_spread * self.COLLAPSE_DROP)
        lo, hi = (f"{float(f(self.start_spread[judged])):.1e}" for f in (torch.min, torch.max))
        return bool(flat[judged].all()), (f"matte spread {float(now[judged].max()):.1e} on {int(judged.sum())} probe "
                                          f"image(s) of the stage's first batch, where the model started at "
                                          f"{lo if lo == hi else lo + ' to ' + hi}, while their targets vary")

    def end_epoch(self, predict, step: int, last: bool,
                  reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t) -> list[str]:
        """The epoch's verdict: raises :class:`ConstantTargetsError` or :class:`CollapseError`;
        returns the warnings to give (each once per stage). ``reduce`` sums a tensor over the
        processes (the identity in one process)."""
        collapsed, numbers = self._collapse(predict)
        flat = int(self.flat_batches.item()) if self.flat_batches is not None else 0
        total = reduce(torch.tensor([float(collapsed), flat, self.batches, float(self.probe is not None)],
                                    dtype=torch.float64))
        n_collapsed, flat, batches, probed = (int(v) for v in total.tolist())
        if batches and flat == batches:
            raise ConstantTargetsError(
                f"stage {self.name}: all {batches} training batches so far had constant target mattes (every "
                "target a single value, e.g. all-zero alpha); the model could only learn that constant. Check "
                "the training data's alpha mattes (--data-path)")
        moved = self.moved()
        if n_collapsed and moved > self.STILL:
            what = numbers or "on another process's probe"
            raise CollapseError(
                f"{self.where(step)}: the predictions collapsed to a constant ({what}); the weights moved "
                f"(relative change {moved:.1e}), so the training did it: the learning rate {self.lr:g} is too "
                "large for this model -- lower it (MODNet: 2e-5 or less for all parameters)")
        warnings = []
        if moved <= self.STILL and batches:
            warnings.append(("still", f"stage {self.name} (learning rate {self.lr:g}): the weights did not move "
                                      f"in {self.batches} steps (relative change {moved:.1e}): nothing is being "
                                      "learnt; is the learning rate too small?"))
        if last and flat:
            warnings.append(("flat", f"stage {self.name}: {flat} of {batches} training batches had constant target "
                                     "mattes (every target a single value, e.g. all-zero alpha): they teach "
                                     "nothing about mattes; check the training data"))
        if last and not probed and batches:
            warnings.append(("blind", f"stage {self.name}: no training batch had a target matte that varies; the "
                                      "collapse guard could not judge this stage"))
        out = [msg for key, msg in warnings if key not in self.warned]
        self.warned.update(key for key, _ in warnings)
        return out
