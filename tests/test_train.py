"""lowlight.train: stage freezing, kill-and-resume, checkpoints, NaN guard, CLI, torchrun/gloo."""
import os
import re
import subprocess
import sys

import pytest
import torch

from lowlight import config, train
from lowlight.models import CVUNet


class _Toy(torch.utils.data.Dataset):
    """Fixed random samples with the dataset dict layout."""

    def __init__(self, n=12, size=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 3, size, size, generator=g)
        self.a = (torch.rand(n, 1, size, size, generator=g) > 0.5).float()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"image": self.x[i], "alpha": self.a[i], "valid": torch.ones_like(self.a[i])}


def _model():
    torch.manual_seed(0)
    return CVUNet("mobilenetv2", pretrained=False)


def _groups_trainable(model):
    return {g: all(p.requires_grad for p in ps) for g, ps in model.param_groups().items()}


def test_freezing_matches_the_article_table():
    m = _model()
    s1, s2, s3 = train.article_stages("full")
    assert (s1.lr, s1.epochs, s2.lr, s2.epochs, s3.lr, s3.epochs) == (1e-4, 10, 5e-5, 20, 1e-5, 30)
    frozen = train.apply_stage_freezing(m, s1)
    g = _groups_trainable(m)
    assert g["head"] and not any(v for k, v in g.items() if k != "head")
    assert train.trainable_summary(m)["trainable"] == sum(p.numel() for p in m.param_groups()["head"])
    assert "encoder.stage1" in frozen and "decoder" in frozen
    train.apply_stage_freezing(m, s2)
    g = _groups_trainable(m)
    assert not g["encoder.stage1"] and not g["encoder.stage2"] and not g["encoder.stage3"]
    assert g["encoder.stage4"] and g["decoder"] and g["head"]
    n_first3 = sum(p.numel() for k in ("encoder.stage1", "encoder.stage2", "encoder.stage3") for p in m.param_groups()[k])
    assert train.trainable_summary(m)["trainable"] == train.trainable_summary(m)["total"] - n_first3
    train.apply_stage_freezing(m, s3)
    assert all(_groups_trainable(m).values())


def _run(out, on_step=None, resume=True):
    tr = train.Trainer(_model(), out, "smoke", device="cpu", amp="off", dynamic="sample", batch_size=4,
                       num_workers=0, seed=3, progress=False, log=lambda *_: None)
    spec = train.StageSpec("stage2", "all-but:encoder.stage1,encoder.stage2,encoder.stage3", 1e-3, 3)
    tr.run_stage(spec, _Toy(), _Toy(4, seed=1), stage_index=2, resume=resume, on_step=on_step)
    return tr.model


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    ref = _run(tmp_path / "a")

    def kill(epoch, step):
        if epoch == 1 and step == 3:  # in the middle of the second epoch (2 steps per epoch on smoke)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", on_step=kill)
    st = train.load_checkpoint(tmp_path / "b" / "stage2" / "last.pt")
    assert st["epoch"] == 1 and st["stage"] == "stage2"
    resumed = _run(tmp_path / "b")
    assert train.weights_digest(resumed) == train.weights_digest(ref)   # bit-identical on CPU
    hist = train.load_checkpoint(tmp_path / "b" / "stage2" / "last.pt")["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert (tmp_path / "b" / "stage2" / "log.csv").read_text().count("\n") == 4
    # a finished stage is skipped on resume
    again = _run(tmp_path / "b")
    assert train.weights_digest(again) == train.weights_digest(ref)


def test_corrupt_and_missing_checkpoints_are_clear(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(train.CheckpointError, match="bad.pt"):
        train.load_checkpoint(bad)
    with pytest.raises(train.CheckpointError, match="no such file"):
        train.load_checkpoint(tmp_path / "missing.pt")
    wrong = tmp_path / "wrong.pt"
    train.save_checkpoint(wrong, {"model": {"x": torch.zeros(1)}})
    with pytest.raises(train.CheckpointError, match="does not fit"):
        train.load_model_weights(_model(), wrong)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary file


class _NaNModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = _model()

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
    tr = train.Trainer(_NaNModel(), tmp_path, "smoke", device="cpu", amp="off", batch_size=4, num_workers=0,
                       progress=False, log=lambda *_: None)
    with pytest.raises(FloatingPointError, match=r"stage stage1, epoch 1, step 1"):
        tr.run_stage(train.StageSpec("stage1", "head", 1e-4, 1), _Toy(), None)


def test_bf16_autocast_step_on_cpu(tmp_path):
    tr = train.Trainer(_model(), tmp_path, "smoke", device="cpu", amp="bf16", batch_size=4, num_workers=0,
                       progress=False, log=lambda *_: None)
    res = tr.run_stage(train.StageSpec("stage1", "head", 1e-4, 1), _Toy(), _Toy(4))
    assert res.epochs_run == 1 and torch.isfinite(torch.tensor(res.history[-1]["train_total"]))
    with pytest.raises(ValueError, match="fp16"):
        train.Trainer(_model(), tmp_path, "smoke", device="cpu", amp="fp16")


def _cli(*args, extra_env=None):
    env = dict(os.environ, LOWLIGHT_PROFILE="smoke", **(extra_env or {}))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=config.ROOT, timeout=900)


@pytest.mark.slow
def test_cli_runs_a_smoke_stage_with_the_article_flags(tmp_path):
    r = _cli("-m", "lowlight.train", "--model", "cvunet", "--batch-size", "4", "--lr", "1e-4", "--epochs", "1",
             "--stage", "baseline", "--use-dynamic-loss", "--profile", "smoke", "--pretrained", "none",
             "--out", str(tmp_path), "--workers", "0")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "baseline" / "last.pt").is_file()
    r1 = _cli("-m", "lowlight.train", "--stage", "1", "--profile", "smoke", "--pretrained", "none",
              "--out", str(tmp_path), "--workers", "0", "--use-dynamic-loss")
    assert r1.returncode == 0, r1.stderr[-2000:]
    assert (tmp_path / "stage1" / "last.pt").is_file()
    r3 = _cli("-m", "lowlight.train", "--stage", "3", "--profile", "smoke", "--out", str(tmp_path / "empty"))
    assert r3.returncode == 2 and "previous stage's checkpoint" in r3.stderr


@pytest.mark.slow
def test_torchrun_two_process_gloo_ranks_agree(tmp_path):
    r = _cli("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "lowlight.train",
             "--stage", "baseline", "--profile", "smoke", "--pretrained", "none", "--out", str(tmp_path),
             "--workers", "0", "--batch-size", "2", extra_env={"OMP_NUM_THREADS": "1"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    digests = dict(re.findall(r"rank (\d) final weights sha256 ([0-9a-f]{64})", out))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], out[-2000:]
    assert (tmp_path / "baseline" / "last.pt").is_file()
