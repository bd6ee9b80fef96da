"""lowlight.training, nothing silent (issue 23): the training guard judged against the model's own
start (a collapse caught within a two-step stage; a frozen or dark-blind model not blamed on its
learning rate; batches of constant targets), one writer per run folder, and ``--resume``
refusing changed settings, another profile or another model before any work."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from lowlight import config
from lowlight.io import CheckpointError, load_checkpoint
from lowlight.training import (CollapseError, ConstantTargetsError, RunFolderLocked, StageSpec, Trainer,
                               TrainingWarning, cli, run_lock)
from lowlight.training.guard import StageGuard
from lowlight.training import cli
from lowlight.training import lock as lockmod
from lowlight.training.lock import LOCK_NAME, lock_owner
from _toys import ToySet

pytestmark = pytest.mark.usefixtures("one_thread")

SMOKE = config.PROFILES["smoke"]


class _Gain(nn.Module):
    """``sigmoid(b + w * (grey - 0.5))``: a matte that follows the image on bright inputs and is
    almost constant on very dark ones (spread about 8e-4 at 2 % brightness) -- a two-parameter
    stand-in for MODNet as shipped on smoke's dark 64-pixel inputs."""

    def __init__(self):
        super().__init__()
        self.w, self.b = nn.Parameter(torch.ones(1)), nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.sigmoid(self.b + self.w * (x.mean(1, keepdim=True) - 0.5))

    def param_groups(self):
        return {"all": [self.w, self.b]}

    def freeze(self, names="all"):
        for p in self.parameters():
            p.requires_grad_(False)

    def unfreeze(self, names="all"):
        for p in self.parameters():
            p.requires_grad_(True)


def _dark(n=12) -> ToySet:
    """Toy samples at 2 % brightness; their targets vary (random binary mattes)."""
    ds = ToySet(n)
    ds.x *= 0.02
    return ds


def _quiet(model, out, **kw):
    kw = {"device": "cpu", "amp": "off", "batch_size": 4, "num_workers": 0, "log": lambda *_: None, **kw}
    return Trainer(model, out, SMOKE, **kw)


def _stage(lr, steps, epochs=1):
    return StageSpec("stage1", "all", lr, epochs, steps=steps)


def _guard_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, TrainingWarning)]


def _env(**extra):
    return dict(os.environ, LOWLIGHT_PROFILE="smoke", OMP_NUM_THREADS="1", **extra)


# =========================================================================== the collapse guard
def test_a_collapse_in_a_two_step_stage_is_caught_at_its_end(tmp_path):
    """lr 1000 saturates the matte to a constant after one step; the stage has two steps (as
    every smoke stage) and stops at its end, before its checkpoint is written."""
    tr = _quiet(_Gain(), tmp_path)
    with pytest.raises(CollapseError, match=r"stage stage1 \(learning rate 1000\), step 2: the predictions collapsed "
                                            r"to a constant .*the weights moved .*learning rate 1000 is too large"):
        tr.run_stage(_stage(1e3, 2), _dark(), None)
    assert not (tmp_path / "stage1").exists()


def test_a_frozen_model_is_not_called_collapsed(tmp_path, recwarn):
    """At lr 1e-12 nothing moves: an almost constant matte on dark inputs is the model's own, not
    a collapse, and the stage ends with one warning that nothing was learnt."""
    res = _quiet(_Gain(), tmp_path).run_stage(_stage(1e-12, 4), _dark(), None)
    assert res.history[-1]["step"] == 4 and (tmp_path / "stage1" / "last.pt").is_file()
    said = _guard_warnings(recwarn)
    assert len(said) == 1 and re.match(r"stage stage1 \(learning rate 1e-12\): the weights did not move in 4 steps "
                                       r"\(relative change .*\): nothing is being learnt", said[0]), said


def test_a_dark_blind_model_that_learns_is_not_stopped(tmp_path, recwarn):
    res = _quiet(_Gain(), tmp_path).run_stage(_stage(1e-2, 6, epochs=3), _dark(), None)
    assert [h["step"] for h in res.history] == [2, 4, 6]
    assert _guard_warnings(recwarn) == []


@pytest.mark.parametrize("seed", [1, 2])
def test_the_one_stage_control_trains_through_on_smoke(tmp_path, seed, recwarn):
    """Seeds 1 and 2 of the one-stage control (6 steps at 2e-5) were stopped at steps 3-4 on smoke:
    MODNet as shipped gives an almost constant matte on smoke's inputs, which three flat steps
    took for a collapse."""
    from lowlight.training import finetune_modnet

    s = finetune_modnet(SMOKE, "onestage", seed=seed, out=tmp_path, log=lambda *_: None)
    assert s["stages"][0]["history"][-1]["step"] == sum(SMOKE.finetune.steps)
    assert _guard_warnings(recwarn) == []


def test_cli_a_rate_that_destroys_modnet_exits_1_without_a_checkpoint(tmp_path, capsys):
    rc = cli.main(["--profile", "smoke", "--lr", "1e3", "--out", str(tmp_path), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 1, err[-2000:]
    assert "error: stage stage1 (learning rate 1000), step 2: the predictions collapsed to a constant" in err
    assert "the learning rate 1000 is too large" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*/last.pt")) and not (tmp_path / LOCK_NAME).exists()


def test_cli_a_rate_too_small_to_learn_warns_and_exits_0(tmp_path, capsys):
    rc = cli.main(["--profile", "smoke", "--lr", "1e-12", "--out", str(tmp_path), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0, err[-2000:]
    for k in (1, 2, 3):
        assert f"warning: stage stage{k} (learning rate 1e-12): the weights did not move in 2 steps" in err, err
    assert "too large" not in err and "collapsed" not in err


# =========================================================================== constant targets
def test_all_zero_target_mattes_stop_the_stage_before_its_checkpoint(tmp_path):
    ds = ToySet()
    ds.a.zero_()
    with pytest.raises(ConstantTargetsError, match=r"stage stage1: all 2 training batches so far had constant "
                                                   r"target mattes .*all-zero alpha"):
        _quiet(_Gain(), tmp_path).run_stage(_stage(1e-3, 2), ds, None)
    assert not (tmp_path / "stage1").exists()


def test_some_batches_of_constant_targets_give_one_warning_with_the_count():
    w = nn.Parameter(torch.ones(1))
    guard = StageGuard("stage2", 1e-3, [w])
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    vary, flat = (x[:, :1] > 0.5).float(), torch.zeros(2, 1, 16, 16)
    predict = lambda t: t.mean(1, keepdim=True) * w.detach()    # noqa: E731 - the model of this test
    for a in (flat, vary, flat, vary):
        guard.observe(x, a, predict)
        with torch.no_grad():
            w += 0.1                                               # a step that learns
    said = guard.end_epoch(predict, 4, last=True)
    assert said == ["stage stage2: 2 of 4 training batches had constant target mattes (every target a single "
                    "value, e.g. all-zero alpha): they teach nothing about mattes; check the training data"]
    assert guard.end_epoch(predict, 4, last=True) == []             # once per stage


# =========================================================================== one writer per run folder
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _write_lock(folder, **owner):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "since": "earlier", **owner}))


def test_a_stale_lock_is_reported_taken_over_and_removed(tmp_path):
    dead = _dead_pid()
    _write_lock(tmp_path, pid=dead)
    said = []
    with run_lock(tmp_path, log=said.append):
        assert lock_owner(tmp_path)["pid"] == os.getpid()
    assert len(said) == 1 and f"taking over the stale lock {tmp_path / LOCK_NAME} (PID {dead} on" in said[0]
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_lock_is_reentrant_and_removed_when_the_run_fails(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with run_lock(tmp_path):
            with run_lock(tmp_path):                                # the CLI holds it, train() takes it again
                pass
            assert lock_owner(tmp_path)["pid"] == os.getpid()
            raise RuntimeError("boom")
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_live_or_foreign_lock_is_refused_naming_folder_and_pid(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _write_lock(tmp_path, pid=child.pid)
        with pytest.raises(RunFolderLocked, match=rf"run folder {re.escape(str(tmp_path))} is in use by another "
                                                  rf"training run: PID {child.pid} on host "):
            with run_lock(tmp_path):
                pass
        assert lock_owner(tmp_path)["pid"] == child.pid                  # left as it was
    finally:
        child.kill()
        child.wait()
    _write_lock(tmp_path, pid=_dead_pid(), host="elsewhere.invalid")  # cannot be checked from here
    with pytest.raises(RunFolderLocked, match=r"on host elsewhere\.invalid.*another machine"):
        with run_lock(tmp_path):
            pass


def test_two_runs_into_one_folder_the_second_stops_at_once(tmp_path):
    from lowlight.training import finetune_llmatte

    finetune_llmatte(SMOKE)
    cmd = [sys.executable, "-m", "lowlight.training", "--profile", "smoke", "--stage", "1", "--out", str(tmp_path),
           "--device", "cpu"]
    first = subprocess.Popen(cmd + ["--steps", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(), cwd=config.ROOT)
    try:
        t0 = time.monotonic()
        while not (tmp_path / LOCK_NAME).exists() and first.poll() is None and time.monotonic() - t0 < 300:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()[1][-2000:]
        second = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=config.ROOT, timeout=300)
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 1, second.stderr[-2000:]
    assert f"error: run folder {tmp_path} is in use by another training run: PID {first.pid} on host" \
        in second.stderr, second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    assert load_checkpoint(tmp_path / "stage1" / "last.pt")["step"] == 30     # the first run's, alone
    assert not (tmp_path / LOCK_NAME).exists()


def _sigterm_as_default():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def test_a_terminated_run_lets_go_of_its_folder(tmp_path):
    """SIGTERM (``kill``, torchrun stopping its workers) ends the CLI like an exception: exit 143,
    the lock removed."""
    run = subprocess.Popen([sys.executable, "-m", "lowlight.training", "--profile", "smoke", "--stage", "1",
                            "--steps", "400", "--epochs", "2", "--out", str(tmp_path), "--device", "cpu"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(), cwd=config.ROOT,
                           # the run must start with SIGTERM's default disposition and unblocked, whatever an
                           # earlier test or the CI's supervisor left in this process (an ignored signal and the
                           # blocked-signal mask are inherited; the CLI then leaves an ignored signal ignored)
                           preexec_fn=_sigterm_as_default)
    try:
        t0 = time.monotonic()
        while not (tmp_path / LOCK_NAME).exists() and run.poll() is None and time.monotonic() - t0 < 300:
            time.sleep(0.05)
        assert run.poll() is None, run.communicate()[1][-2000:]
        run.send_signal(signal.SIGTERM)
        err = run.communicate(timeout=120)[1]
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 128 + signal.SIGTERM, (run.returncode, err[-2000:])
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.fixture
def sigterm_default():
    """SIGTERM at its default disposition for the test (the CLI's handler is installed only then),
    and whatever this process had restored afterwards."""
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, before)


def test_a_sigterm_while_the_lock_file_is_written_waits_for_the_lock_then_releases_it(tmp_path, monkeypatch,
                                                                                      sigterm_default):
    """The race the subprocess test above hits under load: SIGTERM arrives the instant the lock file
    exists, while its owner is still being written. Raising there would leave the file behind; the
    handler records it instead, and the run stops as soon as it holds the lock, which it releases."""
    real_dump = json.dump

    def dump_killed_midway(obj, fh, **kw):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)                            # the handler runs here, the file half made
        real_dump(obj, fh, **kw)

    monkeypatch.setattr(json, "dump", dump_killed_midway)
    with pytest.raises(SystemExit) as stopped:
        with cli._sigterm_exits():
            with lockmod.run_lock(tmp_path, log=lambda *_: None):
                monkeypatch.setattr(json, "dump", real_dump)
                assert lock_owner(tmp_path)["pid"] == os.getpid()     # written in full
                assert not lockmod.lock_busy()
                cli._terminated()                   # what the CLI asks first inside the lock
    assert stopped.value.code == 128 + signal.SIGTERM
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")    # the lost SystemExit, on purpose
def test_a_sigterm_lost_in_a_finalizer_still_ends_the_run(sigterm_default):
    """Python drops an exception raised inside ``__del__``: a SIGTERM whose handler ran there must
    still end the run, at the next step (``_terminated``) or when the run's block is left (status 143)."""
    class Finalizer:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)            # the handler runs here, inside the finalizer: its SystemExit is lost

    with pytest.raises(SystemExit) as left:
        with cli._sigterm_exits():
            Finalizer()             # made and finalized at once
            with pytest.raises(SystemExit) as at_step:
                cli._terminated(0, 1)
            assert at_step.value.code == 128 + signal.SIGTERM
    assert left.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# =========================================================================== resume: settings, profile, model
def _killed_at_step_3(out, spec):
    """A run of ``spec`` (2 steps per epoch) killed in its second epoch: checkpoint at step 2."""
    def kill(epoch, step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _quiet(_Gain(), out).run_stage(spec, ToySet(), None, on_step=kill)
    assert load_checkpoint(out / spec.name / "last.pt")["step"] == 2


def test_resume_refuses_changed_settings_naming_each(tmp_path):
    spec = _stage(1e-3, 4, epochs=2)
    _killed_at_step_3(tmp_path, spec)
    with pytest.raises(CheckpointError, match=r"--lr: the checkpoint has 0\.001, this run 0\.002; --steps: the "
                                              r"checkpoint has 4, this run 6\. .*--resume-with-new-settings"):
        _quiet(_Gain(), tmp_path).run_stage(replace(spec, lr=2e-3, steps=6), ToySet(), None, resume=True)
    with pytest.raises(CheckpointError, match=r"--batch-size: the checkpoint has 4, this run 2"):
        _quiet(_Gain(), tmp_path, batch_size=2).run_stage(spec, ToySet(), None, resume=True)


def test_resume_with_new_settings_trains_with_them_and_records_them(tmp_path):
    spec = _stage(1e-3, 4, epochs=2)
    _killed_at_step_3(tmp_path, spec)
    new = replace(spec, lr=2e-3, steps=6)
    tr = _quiet(_Gain(), tmp_path)
    st = tr.prepare(new, ToySet(), 1)
    tr.resume(st, new_settings=True)
    floor = 2e-3 * 0.05                         # the new cosine schedule, at the step reached
    assert st.step == 2 and st.opt.param_groups[0]["lr"] == pytest.approx(
        floor + (2e-3 - floor) * (1 + math.cos(math.pi * 2 / 6)) / 2)
    res = _quiet(_Gain(), tmp_path).run_stage(new, ToySet(), None, resume=True, new_settings=True)
    ck = load_checkpoint(tmp_path / "stage1" / "last.pt")
    assert ck["step"] == 6 and [h["step"] for h in res.history] == [2, 6]
    assert ck["spec"]["lr"] == 2e-3 and ck["spec"]["steps"] == 6
    assert ck["optimizer"]["param_groups"][0]["initial_lr"] == 2e-3
    assert res.history[-1]["lr"] == pytest.approx(floor)       # the new schedule's end
    assert ck["setting_changes"] == [{"step": 2, "lr": [1e-3, 2e-3], "steps": [4, 6]}]


@pytest.fixture(scope="module")
def stage1_run(tmp_path_factory):
    """``python -m lowlight.training --profile smoke --stage 1`` (MODNet, 2 steps at 1e-4), once."""
    out = tmp_path_factory.mktemp("guard_cli") / "modnet"
    argv = ["--profile", "smoke", "--model", "modnet", "--stage", "1", "--out", str(out), "--device", "cpu"]
    assert cli.main(argv) == 0
    return out


def _nothing_built(monkeypatch):
    def boom(*_a, **_k):
        raise AssertionError("a model or a dataset was built before the run folder was checked")

    for name in ("build_model", "FinetuneData", "LLMatteData"):
        monkeypatch.setattr(cli, name, boom)


def _files(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


_BASE = ["--model", "modnet", "--stage", "1", "--resume", "--device", "cpu"]


@pytest.mark.parametrize("argv, texts", [
    (["--steps", "3"], ["--steps: the checkpoint has 2, this run 3"]),
    (["--lr", "1e-3"], ["--lr: the checkpoint has 0.0001, this run 0.001"]),
    (["--steps", "4", "--epochs", "2"], ["--steps: the checkpoint has 2, this run 4; --epochs: the checkpoint has 1, "
                                         "this run 2"]),
    (["--batch-size", "3"], ["--batch-size: the checkpoint has 2, this run 3"]),
    (["--use-dynamic-loss"], ["--use-dynamic-loss/--dynamic-mode: the checkpoint has {'lambdas': None, 'dynamic': "
                              "None}, this run {'lambdas': None, 'dynamic': 'sample'}"]),
])
def test_cli_resume_refuses_changed_settings_before_any_work(stage1_run, monkeypatch, capsys, argv, texts):
    before = _files(stage1_run)
    _nothing_built(monkeypatch)
    rc = cli.main(["--profile", "smoke", *_BASE, "--out", str(stage1_run), *argv])
    err = capsys.readouterr().err
    assert rc == 1, err[-2000:]
    assert f"error: checkpoint {stage1_run / 'stage1' / 'last.pt'}: this run's settings differ" in err
    assert all(t in err for t in texts) and "--resume-with-new-settings" in err, err
    assert _files(stage1_run) == before


def test_cli_resume_with_another_profile_or_model_fails_before_any_work(stage1_run, monkeypatch, capsys):
    before = _files(stage1_run)
    assert LOCK_NAME not in before                         # the run that wrote them let go of the folder
    _nothing_built(monkeypatch)
    rc = cli.main(["--profile", "quick", *_BASE, "--out", str(stage1_run)])
    err = capsys.readouterr().err
    assert rc == 1 and f"checkpoint {stage1_run / 'stage1' / 'last.pt'}: written with profile 'smoke', not 'quick'" \
        in err, err[-2000:]
    rc = cli.main(["--profile", "smoke", "--model", "cvunet", "--pretrained", "none", "--stage", "all", "--resume",
                   "--device", "cpu", "--out", str(stage1_run)])
    err = capsys.readouterr().err
    assert rc == 1 and "holds model {'model': 'modnet', 'llie': None}, not {'model': 'cvunet'" in err, err[-2000:]
    assert "--model" in err
    rc = cli.main(["--profile", "smoke", "--model", "modnet", "--stage", "all", "--device", "cpu",
                   "--out", str(stage1_run)])                   # no --resume: the stage's checkpoint exists
    err = capsys.readouterr().err
    assert rc == 1 and f"{stage1_run / 'stage1' / 'last.pt'} exists: pass resume=True (--resume)" in err
    assert _files(stage1_run) == before and not (stage1_run / "baseline").exists()


def test_cli_resume_with_new_settings_continues_with_them(stage1_run, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(stage1_run, out)
    rc = cli.main(["--profile", "smoke", *_BASE, "--out", str(out), "--resume-with-new-settings", "--steps", "4"])
    err = capsys.readouterr().err
    assert rc == 1 and "the stage finished its 1 epoch(s) at step 2; to train it to 4 steps give it more epochs" in err
    rc = cli.main(["--profile", "smoke", *_BASE, "--out", str(out), "--resume-with-new-settings",
                   "--lr", "2e-4", "--steps", "4", "--epochs", "2"])
    assert rc == 0, capsys.readouterr().err[-2000:]
    ck = load_checkpoint(out / "stage1" / "last.pt")
    assert ck["step"] == 4 and [h["epoch"] for h in ck["history"]] == [1, 2]
    assert (ck["spec"]["lr"], ck["spec"]["steps"], ck["spec"]["epochs"]) == (2e-4, 4, 2)
    assert ck["setting_changes"] == [{"step": 2, "lr": [1e-4, 2e-4], "steps": [2, 4], "epochs": [1, 2]}]
    assert ck["optimizer"]["param_groups"][0]["initial_lr"] == 2e-4
    assert ck["history"][-1]["lr"] == pytest.approx(2e-4 * 0.05)


def test_cli_resume_refuses_a_pickle_with_code_before_any_work(tmp_path, monkeypatch, capsys):
    """The run-folder check reads checkpoints weights-only too: a pickle that would run code is
    refused, and the code does not run."""
    from _toys import Evil

    marker = tmp_path / "ran"
    (tmp_path / "run" / "stage1").mkdir(parents=True)
    torch.save({"model": {}, "x": Evil(str(marker))}, tmp_path / "run" / "stage1" / "last.pt")
    _nothing_built(monkeypatch)
    rc = cli.main(["--profile", "smoke", *_BASE, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 1 and "not a course checkpoint" in err and str(tmp_path / "run" / "stage1" / "last.pt") in err, err
    assert not marker.exists()


def test_the_folder_check_lets_the_llie_stages_start_from_an_original_without_one(tmp_path):
    """CV-UNet's original is trained without an LLIE; stages with one in front start from it in the
    same folder. Any other checkpoint there must be of the same model, LLIE included."""
    from lowlight.io import save_checkpoint
    from lowlight.training import recipe_stages
    from lowlight.training.resume import check_run_folder

    stages = recipe_stages(SMOKE, "cvunet")
    plain, with_llie = {"model": "cvunet", "llie": None}, {"model": "cvunet", "llie": "zerodce"}
    save_checkpoint(tmp_path / "baseline" / "last.pt", {"model": {}, "arch": plain, "profile": "smoke"})
    check_run_folder(tmp_path, stages, 1, 4, "smoke", with_llie, 4, resume=False)
    with pytest.raises(CheckpointError, match=r"baseline.last\.pt: holds model .*'cvunet_swin'"):
        check_run_folder(tmp_path, stages, 1, 4, "smoke", {"model": "cvunet_swin", "llie": "zerodce"}, 4, resume=False)
    save_checkpoint(tmp_path / "stage1" / "last.pt", {"model": {}, "arch": plain, "profile": "smoke"})
    with pytest.raises(CheckpointError, match=r"stage1.last\.pt: holds model \{'model': 'cvunet', 'llie': None\}"):
        check_run_folder(tmp_path, stages, 2, 4, "smoke", with_llie, 4, resume=False)
