"""Staged fine-tuning (notebook 06): the baseline, the article's three stages, AMP, clipping,
atomic checkpoints and resume, the article's command line, and DDP through ``torchrun``.

The article's §5.1 table, as data (:func:`article_stages`):

=======  ===============================  ======  ======  =============================
stage    frozen                           lr      epochs  purpose
=======  ===============================  ======  ======  =============================
1        everything but the head          1e-4    10      feature transfer
2        encoder stages 1-3               5e-5    20      mid-level adaptation
3        nothing                          1e-5    30      end-to-end refinement
=======  ===============================  ======  ======  =============================

Epochs come from the profile (``full``: 10/20/30; ``quick``/``smoke``: scaled down, and their
learning rates multiplied by ``profile.lr_scale`` = 10, because 8 epochs at the article's
rates barely move the weights -- measured in notebook 06). The
"original" model all comparisons use is :func:`baseline_stage`: CV-UNet trained on
*normal-light* LL-Matte from the MODNet-initialised encoder. Fine-tuning data is low-light
LL-Matte mixed with 20 % normal-light samples (the article's guard against forgetting).

§5.2: mixed precision with ``torch.amp`` (fp16 + ``GradScaler`` on CUDA, or bf16; off on
CPU unless asked), gradients unscaled and clipped to norm 1.0, channels-last on GPU. The
deprecated ``torch.cuda.amp`` is not used.

Checkpoints hold model, optimiser, scaler, scheduler, RNG state, stage, epoch and step; they
are written to a temporary file and renamed (a crash never leaves half a checkpoint) and
loaded with ``weights_only=True``. ``resume`` continues a killed run from its last epoch;
with the per-epoch seeding below the resumed run ends with bit-identical weights on CPU.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn as nn

from . import config
from .viz import atomic_write_text

__all__ = [
    "StageSpec", "article_stages", "baseline_stage", "CheckpointError", "save_checkpoint",
    "load_checkpoint", "weights_digest", "build_model", "MODEL_NAMES", "apply_stage_freezing",
    "trainable_summary", "Trainer", "StageResult", "make_datasets", "run_recipe", "main",
]

# --------------------------------------------------------------------------- stages as data


@dataclass(frozen=True)
class StageSpec:
    """One training stage. ``train`` names the parameter groups that learn (``"all"``,
    ``"head"``, or ``"all-but:encoder.stage1,encoder.stage2,encoder.stage3"``)."""

    name: str
    train: str
    lr: float
    epochs: int
    data_mode: str = "mixed"      # "normal" (baseline), "low" or "mixed" (low + normal_fraction)
    freeze_llie: bool = False     # only meaningful with an LLIE in front
    description: str = ""


def article_stages(profile: config.Profile | str | None = None) -> list[StageSpec]:
    """The article's three stages with the profile's epoch counts."""
    p = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    e1, e2, e3 = p.stage_epochs
    k = p.lr_scale
    return [
        StageSpec("stage1", "head", 1e-4 * k, e1, description="freeze everything but the head (feature transfer)"),
        StageSpec("stage2", "all-but:encoder.stage1,encoder.stage2,encoder.stage3", 5e-5 * k, e2,
                  description="freeze encoder stages 1-3 (mid-level adaptation)"),
        StageSpec("stage3", "all", 1e-5 * k, e3, freeze_llie=True,
                  description="nothing frozen but a pretrained LLIE (end-to-end refinement)"),
    ]


def baseline_stage(profile: config.Profile | str | None = None, lr: float = 3e-4) -> StageSpec:
    """Training of the "original" model on normal-light data only (lr x ``profile.lr_scale``)."""
    p = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    return StageSpec("baseline", "all", lr * p.lr_scale, p.baseline_epochs, data_mode="normal",
                     description="the original CV-UNet: normal-light data only")


# --------------------------------------------------------------------------- checkpoints


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, or of the wrong model."""


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` with ``torch.save`` to a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint weights-only; a clear :class:`CheckpointError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise CheckpointError(f"checkpoint {path}: cannot be read as a weights-only torch checkpoint "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"checkpoint {path}: expected a dict with a 'model' state dict")
    return state


def load_model_weights(model: nn.Module, path: str | Path) -> dict:
    """Load a checkpoint's model weights into ``model`` (strict); returns the checkpoint."""
    state = load_checkpoint(path)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: does not fit this model ({str(exc).splitlines()[0][:300]} ...)") from exc
    return state


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of the model's state dict (names, shapes and bytes), for equality checks."""
    h = hashlib.sha256()
    for k, v in sorted(_unwrap(model).state_dict().items()):
        h.update(k.encode())
        t = v.detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- models

BASELINE_LAMBDAS = {"mse": 1.0, "l1": 1.0}

MODEL_NAMES = {
    "cvunet": "mobilenetv2", "cvunet_mobilenetv2": "mobilenetv2",
    "cvunet_convnext": "convnext_t", "cvunet_swin": "swin_t",
}


def build_model(name: str = "cvunet", pretrained="modnet", llie: str | None = None,
                llie_checkpoint: str | Path | None = None, bn_eval_encoder: bool | None = None) -> nn.Module:
    """A CV-UNet by the article's model names (``cvunet``, ``cvunet_swin``, ...), optionally
    with an LLIE in front (``llie="zerodce"``, weights from ``llie_checkpoint``).
    ``pretrained="modnet"`` only applies to MobileNetV2; other encoders start from scratch
    (offline: no hub weights) unless a weights file is given. ``bn_eval_encoder`` (default: when
    pretrained) keeps the encoder's batch-norm statistics fixed while it trains -- with CPU
    batches of 8 the batch statistics would overwrite the pretrained ones."""
    from .llie import TwoStageModel, ZeroDCEpp
    from .models import CVUNet

    if name not in MODEL_NAMES:
        raise ValueError(f"--model {name!r}: expected one of {', '.join(MODEL_NAMES)}")
    enc = MODEL_NAMES[name]
    if pretrained == "modnet" and enc != "mobilenetv2":
        pretrained = False
    net = CVUNet(enc, pretrained=pretrained or False)
    if bn_eval_encoder or (bn_eval_encoder is None and pretrained):
        net.keep_bn_eval("encoder")
    if llie is None:
        return net
    if llie != "zerodce":
        raise ValueError(f"llie: expected None or 'zerodce', got {llie!r}")
    module = ZeroDCEpp()
    if llie_checkpoint is not None:
        load_model_weights(module, llie_checkpoint)
    return TwoStageModel(module, net)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _matting(model: nn.Module) -> nn.Module:
    m = _unwrap(model)
    return m.matting if hasattr(m, "matting") else m


def apply_stage_freezing(model: nn.Module, spec: StageSpec) -> list[str]:
    """Set ``requires_grad`` for a stage; returns the names of the frozen groups."""
    net = _matting(model)
    if spec.train == "all":
        net.unfreeze("all")
    elif spec.train.startswith("all-but:"):
        net.unfreeze("all")
        net.freeze([g for g in spec.train[len("all-but:"):].split(",") if g])
    else:
        net.freeze_all_but([g for g in spec.train.split(",") if g])
    m = _unwrap(model)
    frozen = [g for g, ps in net.param_groups().items() if not any(p.requires_grad for p in ps)]
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


# --------------------------------------------------------------------------- data


def make_datasets(profile: config.Profile, data_path: str | Path | None = None, mode: str = "mixed",
                  augment: bool = True, seed: int | None = None, progress: bool = False):
    """``(train, val)`` datasets: LL-Matte for the profile (generated on first use), or the
    real-data folder at ``data_path`` (Composition-1k ``fg/alpha/bg`` or ``image/alpha``
    pairs; an LL-Matte folder with a manifest). Validation is always low-light."""
    from . import augment as aug
    from . import data as D

    seed = profile.seed if seed is None else seed
    tf = aug.train_transform(profile.image_size) if augment else None
    if data_path is None:
        train = D.LLMatteDataset("train", profile, mode=mode, transform=tf, seed=seed, progress=progress)
        val = D.LLMatteDataset("val", profile, mode="low", seed=seed, progress=progress)
        return train, val
    root = Path(data_path)
    if not root.is_dir():
        raise FileNotFoundError(f"--data-path {root}: not a folder")
    if (root / "manifest.json").is_file():
        return (D.LLMatteDataset("train", profile, mode=mode, transform=tf, seed=seed, path=root),
                D.LLMatteDataset("val", profile, mode="low", seed=seed, path=root))
    if (root / "fg").is_dir() and (root / "bg").is_dir():
        cls, kw = D.Composition1kFolder, {}
    elif (root / "image").is_dir() or (root / "images").is_dir():
        cls, kw = D.ImageAlphaFolder, ({"image_dir": "images"} if (root / "images").is_dir() else {})
    else:
        raise FileNotFoundError(
            f"--data-path {root}: expected an LL-Matte folder (manifest.json), a Composition-1k layout "
            "(fg/ alpha/ bg/) or image/alpha pairs (image/ alpha/); see data/README.md")
    full = cls(root, mode=mode, transform=tf, seed=seed, size=profile.image_size, **kw)
    n_val = max(1, len(full) // 10)
    idx = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed)).tolist()
    val_full = cls(root, mode="low", seed=seed, size=profile.eval_size, **kw)
    return torch.utils.data.Subset(full, idx[n_val:]), torch.utils.data.Subset(val_full, idx[:n_val])


# --------------------------------------------------------------------------- the trainer


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


def _amp_setup(device: torch.device, amp: str):
    """(autocast dtype or None, GradScaler or None)."""
    if amp not in ("auto", "off", "fp16", "bf16"):
        raise ValueError(f"amp: expected auto, off, fp16 or bf16, got {amp!r}")
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None, None
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("amp='fp16' needs CUDA (use bf16 on CPU)")
        return torch.float16, torch.amp.GradScaler("cuda")
    return torch.bfloat16, None


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class Trainer:
    """Runs :class:`StageSpec` stages on one model with AMP, clipping, checkpoints, resume,
    per-epoch validation and CSV/JSON logs (under ``out/<stage>/``)."""

    def __init__(self, model: nn.Module, out: str | Path, profile: config.Profile | str | None = None,
                 device=None, amp: str = "auto", dynamic: str | None = "sample", batch_size: int | None = None,
                 num_workers: int | None = None, seed: int | None = None, grad_clip: float = 1.0,
                 lambdas: dict | None = None, progress: bool = True, log: Callable[[str], None] = print):
        from .losses import MattingLoss

        self.profile = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
        self.device = config.get_device(device) if not isinstance(device, torch.device) else device
        self.rank, self.world = _dist()
        self.model = model.to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.out = Path(out)
        self.autocast_dtype, self.scaler = _amp_setup(self.device, amp)
        self.loss = MattingLoss(lambdas=lambdas, dynamic=dynamic)
        self.batch_size = batch_size or self.profile.batch_size
        self.num_workers = self.profile.num_workers if num_workers is None else num_workers
        self.seed = self.profile.seed if seed is None else seed
        self.grad_clip = grad_clip
        self.progress = progress and self.rank == 0
        self.log = log if self.rank == 0 else (lambda *_: None)

    # ------------------------------------------------------------ helpers
    def _loader(self, ds, epoch: int, stage_index: int, train: bool):
        from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

        from .data import worker_init_fn

        if hasattr(ds, "set_epoch"):
            ds.set_epoch(epoch)
        elif hasattr(ds, "dataset") and hasattr(ds.dataset, "set_epoch"):
            ds.dataset.set_epoch(epoch)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + stage_index * 10_007 + epoch)
        if train and self.world > 1:
            sampler = DistributedSampler(ds, shuffle=True, seed=self.seed * 1000 + stage_index, drop_last=True)
            sampler.set_epoch(epoch)
        elif train:
            sampler = RandomSampler(ds, generator=gen)
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
    def validate(self, ds) -> dict:
        """Mean loss, MSE and SAD (whole image, SAD in thousands) on a dataset."""
        model = self.model
        was = model.training
        model.eval()
        loader = self._loader(ds, 0, 0, train=False)
        n, sums = 0, {"val_loss": 0.0, "val_mse": 0.0, "val_sad": 0.0}
        for batch in loader:
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

    # ------------------------------------------------------------ one stage
    def run_stage(self, spec: StageSpec, train_ds, val_ds=None, stage_index: int = 0, resume: bool = True,
                  on_step: Callable[[int, int], None] | None = None) -> StageResult:
        """Train one stage. ``resume`` continues from ``out/<stage>/last.pt`` if present (a
        finished stage is skipped). ``on_step(epoch, step)`` is called after every step (the
        tests use it to simulate a kill)."""
        stage_dir = self.out / spec.name
        ckpt_path = stage_dir / "last.pt"
        frozen = apply_stage_freezing(self.model, spec)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"stage {spec.name}: no trainable parameters (train={spec.train!r})")
        model = self.model
        if self.world > 1:
            model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=1e-4)
        n_batches = len(train_ds) // (self.batch_size * self.world)
        steps_per_epoch = n_batches if self.profile.steps_per_epoch is None else min(n_batches, self.profile.steps_per_epoch)
        if steps_per_epoch < 1:
            raise ValueError(f"stage {spec.name}: training set of {len(train_ds)} samples is smaller than one batch "
                             f"({self.batch_size} x {self.world} processes)")
        total_steps = max(1, steps_per_epoch * spec.epochs)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps, eta_min=spec.lr * 0.05)
        start_epoch, history, step = 0, [], 0
        if resume and ckpt_path.is_file():
            st = load_checkpoint(ckpt_path, map_location=self.device)
            if st.get("stage") != spec.name:
                raise CheckpointError(f"checkpoint {ckpt_path}: belongs to stage {st.get('stage')!r}, not {spec.name!r}")
            _unwrap(self.model).load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            sched.load_state_dict(st["scheduler"])
            if self.scaler is not None and st.get("scaler"):
                self.scaler.load_state_dict(st["scaler"])
            torch.set_rng_state(st["rng_cpu"])
            start_epoch, step, history = int(st["epoch"]), int(st["step"]), list(st["history"])
            self.log(f"[{spec.name}] resumed from {ckpt_path} at epoch {start_epoch}/{spec.epochs}")
        result = StageResult(spec.name, 0, 0.0, history, trainable_summary(self.model), frozen, str(ckpt_path), start_epoch)
        if start_epoch >= spec.epochs:
            self.log(f"[{spec.name}] already complete ({spec.epochs} epochs) -- skipped")
            return result
        t_stage = time.perf_counter()
        model.train()
        for epoch in range(start_epoch, spec.epochs):
            t0 = time.perf_counter()
            loader = self._loader(train_ds, epoch, stage_index, train=True)
            sums, count = {}, 0
            it = iter(loader)
            bar = None
            if self.progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=steps_per_epoch, desc=f"{spec.name} {epoch + 1}/{spec.epochs}", leave=False)
            for _ in range(steps_per_epoch):
                batch = next(it)
                x, a = self._to(batch["image"]), self._to(batch["alpha"])
                valid = self._to(batch["valid"]) if "valid" in batch else None
                with self._autocast():
                    p = model(x)
                total, terms = self.loss(p.float(), a, image=x, valid=valid)
                if not torch.isfinite(total):
                    raise FloatingPointError(
                        f"non-finite loss ({float(total.detach())}) in stage {spec.name}, epoch {epoch + 1}, step {step + 1}; "
                        f"terms: { {k: float(v) for k, v in terms.items()} }")
                opt.zero_grad(set_to_none=True)
                if self.scaler is not None:
                    self.scaler.scale(total).backward()
                    self.scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                    self.scaler.step(opt)
                    self.scaler.update()
                else:
                    total.backward()
                    torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                    opt.step()
                sched.step()
                step += 1
                b = x.shape[0]
                count += b
                for k, v in terms.items():  # 0-d tensors: no host sync per step
                    sums[k] = sums.get(k, 0.0) + v.detach() * b
                if bar is not None:
                    bar.update(1)
                if on_step is not None:
                    on_step(epoch, step)
            if bar is not None:
                bar.close()
            del it, loader
            if self.world > 1:
                # batch-norm running statistics are updated locally by each rank's forward;
                # rank 0's are the ones checkpointed, so every rank adopts them
                for buf in _unwrap(self.model).buffers():
                    torch.distributed.broadcast(buf, src=0)
            secs = time.perf_counter() - t0
            row = {"stage": spec.name, "epoch": epoch + 1, "step": step, "lr": sched.get_last_lr()[0],
                   **{f"train_{k}": float(v) / max(count, 1) for k, v in sums.items()},
                   "seconds": secs, "samples_per_s": count * self.world / secs}
            if val_ds is not None:
                row.update(self.validate(val_ds))
            history.append(row)
            self.log(f"[{spec.name}] epoch {epoch + 1}/{spec.epochs}  loss {row.get('train_total', float('nan')):.4f}"
                     + (f"  val SAD {row['val_sad']:.3f}  val MSE {row['val_mse']:.4f}" if val_ds is not None else "")
                     + f"  {row['samples_per_s']:.1f} samples/s")
            if self.rank == 0:
                state = {"model": _unwrap(self.model).state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "scaler": self.scaler.state_dict() if self.scaler else {},
                         "rng_cpu": torch.get_rng_state(), "stage": spec.name, "epoch": epoch + 1, "step": step,
                         "spec": asdict(spec), "profile": self.profile.name, "history": history}
                save_checkpoint(ckpt_path, state)
                self._write_logs(stage_dir, history)
            if self.world > 1:
                torch.distributed.barrier()
            result.epochs_run += 1
        result.seconds = time.perf_counter() - t_stage
        result.history = history
        return result

    def _write_logs(self, stage_dir: Path, history: list[dict]) -> None:
        atomic_write_text(stage_dir / "history.json", json.dumps(history, indent=1) + "\n")
        keys = list(dict.fromkeys(k for row in history for k in row))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
        atomic_write_text(stage_dir / "log.csv", buf.getvalue())


# --------------------------------------------------------------------------- the whole recipe


def run_recipe(profile: config.Profile | str | None = None, model_name: str = "cvunet", variant: str = "plain",
               out: str | Path | None = None, device=None, amp: str = "auto", dynamic: str | None = "sample",
               llie_checkpoint: str | Path | None = None, resume: bool = True, data_path=None,
               log: Callable[[str], None] = print) -> dict:
    """Baseline (if missing) and the three stages, for ``variant="plain"`` or ``"llie"``
    (the pretrained LLIE of notebook 04 in front, frozen in stage 3). Returns a summary dict
    and writes ``summary.json`` beside the stage folders."""
    prof = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    root = Path(out) if out else config.run_dir(prof) / "train"
    config.seed_everything(prof.seed)
    base_dir = root / "baseline"
    base_ckpt = base_dir / "baseline" / "last.pt"
    summary = {"profile": prof.name, "model": model_name, "variant": variant, "stages": []}
    # 1. the original model
    base = build_model(model_name, pretrained="modnet")
    # the original model is trained with MSE + L1 (the article does not say how CV-UNet was trained;
    # these two converge fastest on a short budget); fine-tuning then uses the article's loss
    tr = Trainer(base, base_dir, prof, device=device, amp=amp, dynamic=None, log=log, lambdas=BASELINE_LAMBDAS)
    train_n, val = make_datasets(prof, data_path, mode="normal")
    res = tr.run_stage(baseline_stage(prof), train_n, val, stage_index=0, resume=resume)
    summary["baseline"] = {"checkpoint": str(base_ckpt), "seconds": res.seconds, "history": res.history}
    # 2. fine-tuning
    if variant not in ("plain", "llie"):
        raise ValueError(f"variant: expected 'plain' or 'llie', got {variant!r}")
    if variant == "llie":
        if llie_checkpoint is None:
            llie_checkpoint = config.run_dir(prof) / "llie" / "zerodce.pt"
        if not Path(llie_checkpoint).is_file():
            raise FileNotFoundError(f"LLIE checkpoint {llie_checkpoint} not found: run notebook 04 first "
                                    f"(python -m lowlight.reproduce --only 04 --profile {prof.name})")
        model = build_model(model_name, pretrained=False, llie="zerodce", llie_checkpoint=llie_checkpoint,
                            bn_eval_encoder=True)
        load_model_weights(model.matting, base_ckpt)
    else:
        model = build_model(model_name, pretrained=False, bn_eval_encoder=True)
        load_model_weights(model, base_ckpt)
    ft_dir = root / ("finetune" if variant == "plain" else "finetune_llie")
    tr = Trainer(model, ft_dir, prof, device=device, amp=amp, dynamic=dynamic, log=log)
    train_l, val = make_datasets(prof, data_path, mode="mixed")
    for i, spec in enumerate(article_stages(prof), start=1):
        r = tr.run_stage(spec, train_l, val, stage_index=i, resume=resume)
        summary["stages"].append({"name": spec.name, "seconds": r.seconds, "trainable": r.trainable,
                                  "frozen": r.frozen, "checkpoint": r.checkpoint, "history": r.history})
    summary["weights_sha256"] = weights_digest(model)
    if _dist()[0] == 0:
        atomic_write_text(ft_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


# --------------------------------------------------------------------------- command line


def _parse(argv):
    ap = argparse.ArgumentParser(
        prog="python -m lowlight.train",
        description="Staged fine-tuning of CV-UNet for low light (the article's train.py, working). "
                    "Under torchrun --nproc_per_node=N it trains with DistributedDataParallel.")
    ap.add_argument("--model", default="cvunet", choices=sorted(MODEL_NAMES))
    ap.add_argument("--data-path", default=None, help="LL-Matte folder, Composition-1k fg/alpha/bg, or image/alpha pairs "
                                                      "(default: LL-Matte generated for the profile)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None, help="override the stage's learning rate")
    ap.add_argument("--epochs", type=int, default=None, help="override the stage's epochs")
    ap.add_argument("--stage", default="all", choices=["baseline", "1", "2", "3", "all"],
                    help="which stage to run; 1-3 start from the previous stage's checkpoint in --out")
    ap.add_argument("--use-dynamic-loss", action="store_true", help="brightness-dependent edge weight")
    ap.add_argument("--dynamic-mode", default="sample", choices=["batch", "sample", "smooth"],
                    help="with --use-dynamic-loss: the article's per-batch rule, or per sample")
    ap.add_argument("--llie", default=None, choices=["zerodce"], help="put a (pretrained) LLIE in front")
    ap.add_argument("--llie-checkpoint", default=None)
    ap.add_argument("--pretrained", default="modnet", help="'modnet', 'none' or a weights file for the encoder")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    ap.add_argument("--out", default=None, help="output folder (default runs/<profile>/cli)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--amp", default="auto", choices=["auto", "off", "fp16", "bf16"])
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    try:
        prof = config.get_profile(args.profile)
    except ValueError as exc:
        print(f"--profile: {exc}", file=sys.stderr)
        return 2
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = args.device
    if world > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        else:
            device = "cpu"
    rank = _dist()[0]
    out = Path(args.out) if args.out else config.run_dir(prof) / "cli"
    seed = prof.seed if args.seed is None else args.seed
    config.seed_everything(seed)
    pretrained = None if args.pretrained == "none" else args.pretrained
    model = build_model(args.model, pretrained=pretrained, llie=args.llie, llie_checkpoint=args.llie_checkpoint,
                        bn_eval_encoder=pretrained is not None)
    dynamic = args.dynamic_mode if args.use_dynamic_loss else None
    stages = [baseline_stage(prof)] + article_stages(prof)
    chosen = stages if args.stage == "all" else [stages[0 if args.stage == "baseline" else int(args.stage)]]
    if args.lr is not None or args.epochs is not None:
        chosen = [replace(s, lr=args.lr if args.lr is not None else s.lr,
                          epochs=args.epochs if args.epochs is not None else s.epochs) for s in chosen]
    index = {s.name: i for i, s in enumerate(stages)}
    first = index[chosen[0].name]
    if first > 0 and not (args.resume and (out / chosen[0].name / "last.pt").is_file()):
        prev = out / stages[first - 1].name / "last.pt"
        if not prev.is_file():
            print(f"--stage {args.stage}: needs the previous stage's checkpoint {prev} "
                  f"(run --stage {stages[first - 1].name.replace('stage', '')} first, same --out)", file=sys.stderr)
            return 2
        load_model_weights(_matting(model) if stages[first - 1].name == "baseline" else model, prev)
    tr = Trainer(model, out, prof, device=device, amp=args.amp, dynamic=dynamic, batch_size=args.batch_size,
                 num_workers=args.workers, seed=seed)
    try:
        for spec in chosen:
            train_ds, val_ds = make_datasets(prof, args.data_path, mode=spec.data_mode, seed=seed)
            res = tr.run_stage(spec, train_ds, val_ds, stage_index=index[spec.name], resume=args.resume)
            tr.log(f"[{spec.name}] done: {res.epochs_run} epoch(s) in {res.seconds:.1f} s; "
                   f"trainable {res.trainable['trainable']:,} of {res.trainable['total']:,}; checkpoint {res.checkpoint}")
    except (FloatingPointError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    digest = weights_digest(model)
    print(f"rank {rank} final weights sha256 {digest}", flush=True)
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
