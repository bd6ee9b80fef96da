"""The trainer: one :class:`~lowlight.training.stages.StageSpec` at a time, with the article's §5.2
(mixed precision, gradient clipping), atomic checkpoints, bit-identical resume, the training guard
(:mod:`lowlight.training.guard`), per-epoch validation and logs, and DDP under ``torchrun``
(notebook 06).

A stage runs as: :meth:`Trainer.prepare` (freeze, optimiser, schedule) -> :meth:`Trainer.resume`
(from ``out/<stage>/last.pt`` if asked) -> for each epoch :meth:`Trainer.train_epoch` (which calls
:meth:`Trainer.step` per batch) -> :meth:`Trainer.end_epoch` (the guard's verdict, validation,
log, checkpoint, rank sync).

Under ``torchrun`` the parameters that a stage trains but the model's forward never uses (MODNet's
training-time semantic and detail heads, which the shipped forward does not run) are frozen for
that stage before the model is handed to DistributedDataParallel: they would never receive a
gradient, so freezing them changes no number, while DDP's reducer would wait for their gradients
and fail. They are found once per stage by one backward pass of a small input
(:func:`unused_parameters`); ``find_unused_parameters=True`` would instead walk the autograd
graph at every step and would also hide a part of a model that is wrongly cut off.
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from .. import config
from ..io import CheckpointError, atomic_write_json, atomic_write_text, csv_text, load_checkpoint, save_checkpoint
from .guard import CollapseError, StageGuard, TrainingWarning
from .resume import check_identity, check_settings, existing_checkpoint
from .stages import LossSpec, StageSpec, apply_stage_freezing, trainable_summary

__all__ = ["Trainer", "StageResult", "CollapseError", "amp_setup", "dist_info", "unused_parameters"]

#: the cosine schedule ends at this fraction of a stage's learning rate
LR_FLOOR = 0.05


@dataclass
class StageResult:
    name: str
    epochs_run: int
    seconds: float
    history: list = field(default_factory=list)
    trainable: dict = field(default_factory=dict)
    frozen: list = field(default_factory=list)
    checkpoint: str = ""
    resumed_from_epoch: int = 0


def amp_setup(device: torch.device, amp: str):
    """``(autocast dtype or None, GradScaler or None)`` for ``amp`` in auto/off/fp16/bf16."""
    if amp not in ("auto", "off", "fp16", "bf16"):
        raise ValueError(f"amp: expected auto, off, fp16 or bf16, got {amp!r}")
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None, None
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("--amp fp16 needs a CUDA device (on CPU use --amp bf16 or off)")
        return torch.float16, torch.amp.GradScaler("cuda")
    return torch.bfloat16, None


def dist_info() -> tuple[int, int]:
    """``(rank, world size)``; ``(0, 1)`` without torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def unused_parameters(model: nn.Module, size: int = 64) -> list[str]:
    """Names of the parameters that require a gradient and that ``model``'s forward never
    reaches, found by one forward and backward pass (eval mode: no batch-norm statistics change)
    of a grey ``size`` x ``size`` image; the model's mode is restored."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        return []
    device = named[0][1].device
    was = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = model(torch.full((1, 3, size, size), 0.5, device=device))
            grads = torch.autograd.grad(out.float().sum(), [p for _, p in named], allow_unused=True)
    finally:
        model.train(was)
    return [n for (n, _), g in zip(named, grads) if g is None]


@dataclass
class _StageState:
    """What one running stage needs between its methods."""

    spec: StageSpec
    index: int
    dir: Path
    params: list
    model: nn.Module              # the module that runs forward (DDP-wrapped when distributed)
    opt: torch.optim.Optimizer
    sched: object
    steps_per_epoch: int
    total_steps: int
    frozen: list
    guard: StageGuard
    step: int = 0
    start_epoch: int = 0
    history: list = field(default_factory=list)
    changes: list = field(default_factory=list)    # settings changed on resume: [{"step", setting: [old, new]}]


class Trainer:
    """Runs stages on one model (see the module docstring); logs and checkpoints under
    ``out/<stage>/``. Each stage trains with the loss its :class:`StageSpec` names (``spec.loss``);
    :attr:`loss` is the current stage's, before the first stage the default :class:`LossSpec`'s
    (the article's MSE + SSIM + edge with per-sample brightness weights), which :meth:`validate`
    also reports. ``profile`` (a :class:`lowlight.config.Profile`) gives the defaults of
    ``batch_size``, ``num_workers`` and ``seed`` (``profile.training``, ``profile.data``) and the
    epoch length of epoch-counted stages."""

    def __init__(self, model: nn.Module, out: str | Path, profile: config.Profile, device=None, amp: str = "auto",
                 batch_size: int | None = None, num_workers: int | None = None, seed: int | None = None,
                 grad_clip: float = 1.0, progress: bool = False, log: Callable[[str], None] = print,
                 anchor_weights: dict | None = None):
        self.profile = config.require_profile(profile, where="Trainer")
        self.device = config.get_device(device) if not isinstance(device, torch.device) else device
        self.rank, self.world = dist_info()
        self.model = model.to(self.device)
        # the weights a stage's L2-SP penalty (StageSpec.anchor) pulls towards: given, or as now
        start = anchor_weights if anchor_weights is not None else dict(self.model.named_parameters())
        self.anchor_weights = {k: v.detach().to(self.device, copy=True) for k, v in start.items()}
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.out = Path(out)
        self.autocast_dtype, self.scaler = amp_setup(self.device, amp)
        self.loss = LossSpec().build()
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        self.batch_size = batch_size or self.profile.training.batch_size
        self.num_workers = self.profile.data.num_workers if num_workers is None else num_workers
        self.seed = self.profile.seed if seed is None else seed
        self.grad_clip = grad_clip
        self.progress = progress and self.rank == 0
        self.log = log if self.rank == 0 else (lambda *_: None)

    # ------------------------------------------------------------------ helpers
    def _loader(self, ds, epoch: int, stage_index: int, train: bool, samples: int | None = None):
        from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

        from ..data import worker_init_fn

        target = ds.dataset if hasattr(ds, "dataset") and not hasattr(ds, "set_epoch") else ds
        if hasattr(target, "set_epoch"):
            target.set_epoch(epoch)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + stage_index * 10_007 + epoch)
        if train and self.world > 1:
            sampler = DistributedSampler(ds, shuffle=True, seed=self.seed * 1000 + stage_index, drop_last=True)
            sampler.set_epoch(epoch)
        elif train:
            sampler = RandomSampler(ds, generator=gen, num_samples=samples)
        else:
            sampler = SequentialSampler(ds)
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          worker_init_fn=worker_init_fn, drop_last=train, pin_memory=self.device.type == "cuda",
                          persistent_workers=False)

    def _to(self, x):
        x = x.to(self.device, non_blocking=True)
        return x.to(memory_format=torch.channels_last) if (self.device.type == "cuda" and x.ndim == 4) else x

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    @torch.no_grad()
    def _predict(self, x):
        """The model's mattes of ``x`` in eval mode, as float (the guard's probe); the mode is restored."""
        was = self.model.training
        self.model.eval()
        try:
            with self._autocast():
                return self.model(x).float()
        finally:
            self.model.train(was)

    def _sum(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over the processes (itself in one process)."""
        if self.world == 1:
            return t
        t = t.to(self.device)
        torch.distributed.all_reduce(t)
        return t.cpu()

    def warn(self, message: str) -> None:
        """A :class:`~lowlight.training.guard.TrainingWarning` (rank 0 only)."""
        if self.rank == 0:
            warnings.warn(message, TrainingWarning, stacklevel=2)

    @torch.no_grad()
    def validate(self, ds) -> dict:
        """Mean loss, MSE and SAD (whole image, SAD in thousands) on a dataset."""
        model = self.model
        was = model.training
        model.eval()
        n, sums = 0, {"val_loss": 0.0, "val_mse": 0.0, "val_sad": 0.0}
        for batch in self._loader(ds, 0, 0, train=False):
            x, a = self._to(batch["image"]), self._to(batch["alpha"])
            with self._autocast():
                p = model(x)
            p = p.float()
            total, _ = self.loss(p, a, image=x, valid=self._to(batch["valid"]) if "valid" in batch else None)
            b = x.shape[0]
            sums["val_loss"] += float(total) * b
            sums["val_mse"] += float(((p - a) ** 2).mean((1, 2, 3)).sum())
            sums["val_sad"] += float((p - a).abs().sum((1, 2, 3)).sum() / 1000)
            n += b
        model.train(was)
        return {k: v / max(n, 1) for k, v in sums.items()}

    # ------------------------------------------------------------------ a stage, in parts
    def prepare(self, spec: StageSpec, train_ds, stage_index: int) -> _StageState:
        """Freeze per the stage, build its loss, the optimiser (AdamW) and the cosine schedule."""
        frozen = apply_stage_freezing(self.model, spec)
        self.loss = spec.loss.build()
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"stage {spec.name}: no trainable parameters (train={spec.train!r})")
        opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=1e-4)
        model = self._ddp(spec) if self.world > 1 else self.model
        n_batches = len(train_ds) // (self.batch_size * self.world)
        if n_batches < 1:
            raise ValueError(f"stage {spec.name}: training set of {len(train_ds)} samples is smaller than one batch "
                             f"({self.batch_size} x {self.world} processes)")
        if spec.steps is not None:
            per_epoch = math.ceil(spec.steps / spec.n_epochs)
            if self.world > 1:
                per_epoch = min(per_epoch, n_batches)
            total = spec.steps
        else:
            cap = self.profile.training.steps_per_epoch
            per_epoch = n_batches if cap is None else min(n_batches, cap)
            total = per_epoch * spec.epochs
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total), eta_min=spec.lr * LR_FLOOR)
        return _StageState(spec, stage_index, self.out / spec.name, params, model, opt, sched, per_epoch, total, frozen,
                           StageGuard(spec.name, spec.lr, params))

    def _ddp(self, spec: StageSpec) -> nn.Module:
        """The model wrapped in DistributedDataParallel, with the trained parameters that its
        forward never uses frozen first (see the module docstring)."""
        unused = unused_parameters(self.model)
        if unused:
            named = dict(self.model.named_parameters())
            for name in unused:
                named[name].requires_grad_(False)
            self.log(f"[{spec.name}] frozen under DistributedDataParallel: {len(unused)} parameter tensors the "
                     f"forward never uses ({', '.join(unused[:4])}{', ...' if len(unused) > 4 else ''})")
        return nn.parallel.DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def resume(self, st: _StageState, new_settings: bool = False) -> None:
        """Continue from ``out/<stage>/last.pt`` (model, optimiser, schedule, scaler, RNG, history).
        A checkpoint of another stage, profile or model is refused; one trained with other settings
        (learning rate, length, loss, batch size) too, unless ``new_settings``: then the optimiser
        and the schedule continue with the new ones (:mod:`lowlight.training.resume`)."""
        path = st.dir / "last.pt"
        if not path.is_file():
            return
        ck = load_checkpoint(path, map_location=self.device)
        if ck.get("stage") != st.spec.name:
            raise CheckpointError(f"checkpoint {path}: belongs to stage {ck.get('stage')!r}, not {st.spec.name!r}")
        check_identity(ck, path, self.profile.name, getattr(getattr(self.model, "module", self.model), "arch", None))
        changes = check_settings(ck, path, st.spec, self.batch_size, new_settings)
        getattr(self.model, "module", self.model).load_state_dict(ck["model"])
        st.opt.load_state_dict(ck["optimizer"])
        st.sched.load_state_dict(ck["scheduler"])
        if self.scaler is not None and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        torch.set_rng_state(ck["rng_cpu"])
        st.start_epoch, st.step, st.history = int(ck["epoch"]), int(ck["step"]), list(ck["history"])
        st.changes = list(ck.get("setting_changes", []))
        self.log(f"[{st.spec.name}] resumed from {path} at epoch {st.start_epoch}/{st.spec.n_epochs}")
        if changes:
            self._reschedule(st, changes)

    def _reschedule(self, st: _StageState, changes: list) -> None:
        """Set the optimiser and the cosine schedule to ``st.spec``'s rate and length from the step reached."""
        lr, total = st.spec.lr, max(1, st.total_steps)
        floor = lr * LR_FLOOR
        now = floor + (lr - floor) * (1 + math.cos(math.pi * min(st.step, total) / total)) / 2
        for g in st.opt.param_groups:
            g["initial_lr"], g["lr"] = lr, now
        st.sched.base_lrs = [lr] * len(st.opt.param_groups)
        st.sched.T_max, st.sched.eta_min = total, floor
        left = st.spec.n_epochs - st.start_epoch
        if st.spec.steps is not None and self.world == 1 and left > 0:   # the steps left over the epochs left
            st.steps_per_epoch = math.ceil((st.total_steps - st.step) / left)
        st.changes.append({"step": st.step, **{k: [old, new] for k, old, new in changes}})
        self.log(f"[{st.spec.name}] continuing with new settings from step {st.step}: "
                 + ", ".join(f"{k} {old} -> {new}" for k, old, new in changes) + f"; learning rate now {now:.3g}")

    def step(self, st: _StageState, batch: dict) -> dict:
        """One optimisation step: autocast forward, loss, checks, backward (scaled), unscale, clip, step."""
        x, a = self._to(batch["image"]), self._to(batch["alpha"])
        valid = self._to(batch["valid"]) if "valid" in batch else None
        st.guard.observe(x, a, self._predict)
        with self._autocast():
            p = st.model(x)
        total, terms = self.loss(p.float(), a, image=x, valid=valid)
        if st.spec.anchor > 0:
            penalty = self.anchor_penalty()
            total = total + st.spec.anchor * penalty
            terms = {**terms, "anchor": penalty.detach()}
        st.guard.check_loss(total, terms, st.step + 1)
        st.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            self.scaler.unscale_(st.opt)
            torch.nn.utils.clip_grad_norm_(st.params, self.grad_clip)
            self.scaler.step(st.opt)
            self.scaler.update()
        else:
            total.backward()
            torch.nn.utils.clip_grad_norm_(st.params, self.grad_clip)
            st.opt.step()
        st.sched.step()
        st.step += 1
        return terms

    def anchor_penalty(self) -> torch.Tensor:
        """``sum((w - w0)^2)`` over the trainable weights, ``w0`` from :attr:`anchor_weights` (L2-SP)."""
        named = getattr(self.model, "module", self.model).named_parameters()
        terms = [((p - self.anchor_weights[n]) ** 2).sum() for n, p in named if p.requires_grad]
        return torch.stack(terms).sum() if terms else torch.zeros((), device=self.device)

    def train_epoch(self, st: _StageState, train_ds, epoch: int, on_step=None) -> dict:
        """One epoch of :meth:`step`; returns the sample-weighted mean of each loss term."""
        samples = st.steps_per_epoch * self.batch_size if st.spec.steps is not None and self.world == 1 else None
        loader = self._loader(train_ds, epoch, st.index, train=True, samples=samples)
        n_steps = min(st.steps_per_epoch, st.total_steps - st.step)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_steps, desc=f"{st.spec.name} {epoch + 1}/{st.spec.n_epochs}", leave=False)
        sums, count, it = {}, 0, iter(loader)
        for _ in range(n_steps):
            batch = next(it)
            terms = self.step(st, batch)
            b = batch["image"].shape[0]
            count += b
            for k, v in terms.items():  # 0-d tensors: no host sync per term per step
                sums[k] = sums.get(k, 0.0) + v.detach() * b
            if bar is not None:
                bar.update(1)
            if on_step is not None:
                on_step(epoch, st.step)
        if bar is not None:
            bar.close()
        return {f"train_{k}": float(v) / max(count, 1) for k, v in sums.items()} | {"_count": count}

    def end_epoch(self, st: _StageState, epoch: int, row: dict, val_ds, seconds: float) -> None:
        """The guard's verdict (:mod:`lowlight.training.guard`: raises before anything is written),
        validation, the history row, the log line, the checkpoint (rank 0) and the rank sync."""
        for message in st.guard.end_epoch(self._predict, st.step, last=epoch + 1 >= st.spec.n_epochs, reduce=self._sum):
            self.warn(message)
        if self.world > 1:
            # batch-norm running statistics are updated locally by each rank's forward;
            # rank 0's are the ones checkpointed, so every rank adopts them
            for buf in getattr(self.model, "module", self.model).buffers():
                torch.distributed.broadcast(buf, src=0)
        count = row.pop("_count")
        row = {"stage": st.spec.name, "epoch": epoch + 1, "step": st.step, "lr": st.sched.get_last_lr()[0], **row,
               "seconds": seconds, "samples_per_s": count * self.world / max(seconds, 1e-9)}
        if val_ds is not None:
            row.update(self.validate(val_ds))
        st.history.append(row)
        self.log(f"[{st.spec.name}] epoch {epoch + 1}/{st.spec.n_epochs}  step {st.step}  "
                 f"loss {row.get('train_total', float('nan')):.4f}"
                 + (f"  val SAD {row['val_sad']:.3f}  val MSE {row['val_mse']:.4f}" if val_ds is not None else "")
                 + f"  {row['samples_per_s']:.1f} samples/s")
        if self.rank == 0:
            m = getattr(self.model, "module", self.model)
            state = {"model": m.state_dict(), "optimizer": st.opt.state_dict(), "scheduler": st.sched.state_dict(),
                     "scaler": self.scaler.state_dict() if self.scaler else {}, "rng_cpu": torch.get_rng_state(),
                     "stage": st.spec.name, "epoch": epoch + 1, "step": st.step, "spec": asdict(st.spec),
                     "profile": self.profile.name, "arch": getattr(m, "arch", None), "history": st.history,
                     "batch_size": self.batch_size, "setting_changes": st.changes}
            save_checkpoint(st.dir / "last.pt", state)
            atomic_write_json(st.dir / "history.json", st.history)
            atomic_write_text(st.dir / "log.csv", csv_text(st.history))
        if self.world > 1:
            torch.distributed.barrier()

    def run_stage(self, spec: StageSpec, train_ds, val_ds=None, stage_index: int = 0, resume: bool = False,
                  on_step: Callable[[int, int], None] | None = None, new_settings: bool = False) -> StageResult:
        """Train one stage (see the module docstring). ``resume`` continues from
        ``out/<stage>/last.pt`` (``new_settings``: see :meth:`resume`); without it an existing
        checkpoint there is an error (nothing is overwritten silently). ``on_step(epoch, step)``
        runs after every step (the tests use it to simulate a kill)."""
        path = self.out / spec.name / "last.pt"
        if not resume and path.exists():
            raise existing_checkpoint(path)
        st = self.prepare(spec, train_ds, stage_index)
        if resume:
            self.resume(st, new_settings)
        result = StageResult(spec.name, 0, 0.0, st.history, trainable_summary(self.model), st.frozen, str(path),
                             st.start_epoch)
        if st.start_epoch >= spec.n_epochs:
            self.log(f"[{spec.name}] already complete ({spec.n_epochs} epochs) -- skipped")
            return result
        t_stage = time.perf_counter()
        st.model.train()
        for epoch in range(st.start_epoch, spec.n_epochs):
            t0 = time.perf_counter()
            row = self.train_epoch(st, train_ds, epoch, on_step)
            self.end_epoch(st, epoch, row, val_ds, time.perf_counter() - t0)
            result.epochs_run += 1
        result.seconds = time.perf_counter() - t_stage
        result.history = st.history
        return result
