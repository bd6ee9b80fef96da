"""lowlight.models.modnet (+ its loader in lowlight.models.weights): native MODNet equals the ONNX
export, trains, groups, frozen BN."""
from __future__ import annotations

import copy

import pytest
import torch

from _toys import check_group_partition
from lowlight import models as M
from lowlight.models import modnet as MM
from lowlight.models import weights as W

pytestmark = pytest.mark.usefixtures("one_thread")

GROUPS = ["backbone.stage1", "backbone.stage2", "backbone.stage3", "backbone.stage4",
          "backbone.stage5", "lr_branch", "hr_branch", "fusion"]


@pytest.fixture(scope="module")
def model(modnet_path) -> MM.MODNet:
    """The pretrained model, shared by read-only tests (tests that change it take a deepcopy)."""
    return M.create_modnet(onnx_path=modnet_path)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("size", [(512, 512), (384, 640)])
def test_equals_onnxruntime(model, modnet_path, size):
    res = W.verify_modnet(size=size, model=model, onnx_path=modnet_path, threads=1)
    assert res["size"] == size
    assert res["max_abs_diff"] <= 1e-4, res


def test_builder_loads_everything_and_all_trainable(model):
    assert isinstance(model, MM.MODNet)
    assert model.pretrained_from == "modnet"
    assert not model.training
    params = list(model.parameters())
    assert params and all(p.requires_grad for p in params)
    n = sum(p.numel() for p in params)
    assert 6_400_000 < n < 6_600_000      # MODNet's published size: 6.5 M parameters
    # the backbone's batch-norms are the folded identities, the IBNorm ones carry real statistics
    assert torch.all(model.backbone.bn1.running_mean == 0)
    ibn = model.lr_branch.conv_lr16x.norm.bn
    assert ibn.num_features == 48 and not torch.all(ibn.running_var == 1)
    se = model.lr_branch.se
    assert tuple(se.fc1.weight.shape) == (320, 1280) and tuple(se.fc2.weight.shape) == (1280, 320)


def test_param_groups_partition_and_freeze_counts(model):
    m = copy.deepcopy(model)
    check_group_partition(m, GROUPS)
    assert m.freeze("backbone") == GROUPS[:5]
    assert m.trainable_groups() == GROUPS[5:]
    assert m.freeze_all_but(["fusion"]) == ["fusion"]
    assert m.trainable_groups() == ["fusion"]
    with pytest.raises(ValueError, match="unknown parameter group"):
        m.freeze("decoder")


@pytest.mark.parametrize("hw", [(97, 75), (33, 200)])
def test_any_size_returns_input_size(model, hw):
    x = _rand(2, 3, *hw)
    with torch.inference_mode():
        y = model(x)
        outs = model.forward_all(x)
    assert y.shape == (2, 1, *hw)
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert outs["matte"].shape == (2, 1, *hw) and outs["detail"].shape == (2, 1, *hw)
    assert outs["semantic"].shape == (2, 1, -(-hw[0] // 16), -(-hw[1] // 16))
    assert torch.allclose(outs["matte"], y)


def test_rejects_bad_input(model):
    with pytest.raises(ValueError, match="RGB batch"):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="float RGB"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def _bn_stats(m):
    return [t.clone() for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)
            for t in (mod.running_mean, mod.running_var)]


def test_frozen_bn_keeps_running_stats(model):
    m = copy.deepcopy(model)
    assert m.frozen_bn
    before = _bn_stats(m)
    m.train()
    assert m.training
    assert all(not b.training for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d))
    with torch.no_grad():
        m(_rand(2, 3, 64, 64))
    assert all(torch.equal(a, b) for a, b in zip(before, _bn_stats(m)))
    # the same forward without frozen_bn does update them (the check above is not vacuous)
    m.frozen_bn = False
    m.train()
    with torch.no_grad():
        m(_rand(2, 3, 64, 64))
    assert not all(torch.equal(a, b) for a, b in zip(before, _bn_stats(m)))
    # ... except in frozen groups
    m2 = copy.deepcopy(model)
    m2.frozen_bn = False
    m2.freeze("backbone")
    m2.train()
    bns = [b for b in m2.backbone.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    assert bns and all(not b.training for b in bns)
    assert m2.lr_branch.conv_lr16x.norm.bn.training


def test_one_step_lowers_mse(model):
    m = copy.deepcopy(model).train()
    x = _rand(2, 3, 96, 96, seed=1)
    target = torch.full((2, 1, 96, 96), 0.5)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-5)
    loss0 = torch.nn.functional.mse_loss(m(x), target)
    opt.zero_grad()
    loss0.backward()
    assert all(p.grad is not None for p in m.fusion.parameters())
    opt.step()
    with torch.no_grad():
        loss1 = torch.nn.functional.mse_loss(m(x), target)
    assert loss1.item() < 0.995 * loss0.item(), (loss0.item(), loss1.item())
